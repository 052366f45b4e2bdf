"""What an export reads: the chosen samples in chunks with their labels, and the samples a
deduplicated export leaves out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa

from visor.store.db import Store


@contextmanager
def _chunk(store: Store, ids: np.ndarray, **tables: pa.Table) -> Iterator[Any]:
    """A cursor that sees the chunk's sample ids as `_export_ids` (and `tables`)."""
    cur = store.cursor()
    with store.registered(cur, {"_export_ids": pa.table({"id": ids.astype(np.int32)}), **tables}):
        yield cur


def samples_chunk(store: Store, dataset_id: int, ids: np.ndarray) -> list[dict[str, Any]]:
    """id, path, split, width, height of the given samples (ids ascending), in id order."""
    with _chunk(store, ids) as cur:
        return [
            {"id": int(i), "path": p, "split": s, "width": w, "height": h}
            for i, p, s, w, h in cur.execute(
                "SELECT id, path, split, width, height FROM samples WHERE dataset_id = ? "
                "AND id BETWEEN ? AND ? AND id IN (SELECT id FROM _export_ids) ORDER BY id",
                [dataset_id, int(ids[0]), int(ids[-1])],
            ).fetchall()
        ]


def labels_chunk(
    store: Store,
    dataset_id: int,
    ids: np.ndarray,
    kind: str,
    source: str | None,
    min_score: float | None,
) -> list[tuple[int, str, Any, Any, Any, Any, Any]]:
    """(sample id, class, x, y, w, h, score) of the labels of `kind` (and `source`, score at
    least `min_score`) of the given samples; x is None for an image-level label."""
    where, params = _label_filter(kind, source, min_score, alias="")
    with _chunk(store, ids) as cur:
        rows = cur.execute(
            "SELECT sample_id, class, x, y, w, h, score FROM labels WHERE dataset_id = ? "
            "AND sample_id BETWEEN ? AND ? AND sample_id IN (SELECT id FROM _export_ids) "
            f"AND {where} ORDER BY sample_id, id",
            [dataset_id, int(ids[0]), int(ids[-1]), *params],
        ).fetchall()
    return [(int(r[0]), str(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]


def label_texts_chunk(
    store: Store,
    dataset_id: int,
    ids: np.ndarray,
    kind: str,
    source: str | None,
    min_score: float | None,
    box_sql: str,
    classes: dict[str, list[Any]],
) -> dict[int, tuple[str, int, list[str]]]:
    """Per sample with labels of `kind` among the given ones: its boxes written by `box_sql`
    (an expression over the label `l`, its sample `s` and its class `c`: a row of `classes`,
    columns `name` and whatever else the format needs), joined in label order, NULLs left
    out; its number of boxes; its image-level classes in label order."""
    where, params = _label_filter(kind, source, min_score)
    with _chunk(store, ids, _export_classes=pa.table(classes)) as cur:
        rows = cur.execute(
            f"SELECT l.sample_id, coalesce(string_agg(CASE WHEN l.x IS NOT NULL THEN {box_sql} "
            "END, '' ORDER BY l.id), ''), count(l.x), list(l.class ORDER BY l.id) FILTER "
            "(WHERE l.x IS NULL) FROM labels l JOIN samples s ON s.dataset_id = l.dataset_id "
            "AND s.id = l.sample_id JOIN _export_classes c ON c.name = l.class "
            "WHERE l.dataset_id = ? AND l.sample_id BETWEEN ? AND ? AND l.sample_id IN "
            f"(SELECT id FROM _export_ids) AND {where} GROUP BY l.sample_id",
            [dataset_id, int(ids[0]), int(ids[-1]), *params],
        ).fetchall()
    return {int(r[0]): (r[1], int(r[2]), list(dict.fromkeys(r[3] or []))) for r in rows}


def _label_filter(
    kind: str, source: str | None, min_score: float | None, alias: str = "l."
) -> tuple[str, list[Any]]:
    where = f"{alias}kind = ? AND {alias}class IS NOT NULL"
    params: list[Any] = [kind]
    if source is not None:
        where += f" AND {alias}source = ?"
        params.append(source)
    if min_score is not None:
        where += f" AND coalesce({alias}score, 1.0) >= ?"
        params.append(min_score)
    return where, params


def duplicates_to_drop(store: Store, dataset_id: int) -> np.ndarray:
    """Every member of a duplicate group but the one worth keeping (most pixels, then largest
    file, then lowest id), ascending."""
    rows = store.query(
        "SELECT id FROM samples WHERE dataset_id = ? AND duplicate_group IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY duplicate_group ORDER BY "
        "coalesce(width::BIGINT * height, 0) DESC, coalesce(size_bytes, 0) DESC, id) > 1 "
        "ORDER BY id",
        [dataset_id],
    )
    return np.asarray([int(r[0]) for r in rows], dtype=np.int64)


def with_tags(store: Store, dataset_id: int, tags: list[str]) -> np.ndarray:
    rows = store.query(
        "SELECT id FROM samples WHERE dataset_id = ? AND len(list_intersect(tags, ?)) > 0",
        [dataset_id, tags],
    )
    return np.asarray([int(r[0]) for r in rows], dtype=np.int64)


def with_flag(store: Store, dataset_id: int, flag: str) -> np.ndarray:
    rows = store.query(
        "SELECT id FROM samples WHERE dataset_id = ? AND list_contains(flags, ?)",
        [dataset_id, flag],
    )
    return np.asarray([int(r[0]) for r in rows], dtype=np.int64)


def copy_parquet(
    store: Store, dataset_id: int, ids: np.ndarray, query: str, params: list[Any], path: str
) -> int:
    """Write `query` (reading `_export_ids` for the chosen samples) as a Parquet file; the
    number of rows written."""
    cur = store.cursor()
    with store.registered(cur, {"_export_ids": pa.table({"id": ids.astype(np.int32)})}):
        cur.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)", params).fetchall()
        found = cur.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()
    return int(found[0][0]) if found else 0
