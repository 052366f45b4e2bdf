"""Object ("patch") vectors: one per box, keyed by label id, in `object_embeddings_<d>` (a
`FLOAT[d]` column has one d); the boxes that gave none and why; per-box outlier and
duplicate results.

Vectors of labels that no longer exist (replaced predictions) are never read back: every
reader joins the labels table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from visor.errors import InvalidInput
from visor.store.db import Store
from visor.store.embeddings import model_dim, present_in

KINDS = ("gt", "prediction")


def table_name(dim: int) -> str:
    return f"object_embeddings_{int(dim)}"


@dataclass(frozen=True)
class ObjectVectors:
    label_ids: np.ndarray  # int64, ascending
    sample_ids: np.ndarray  # int64, the image of each box
    vectors: np.ndarray  # (n, d) float32

    def __len__(self) -> int:
        return len(self.label_ids)


def ensure_table(store: Store, dim: int) -> None:
    store.cursor().execute(
        f"CREATE TABLE IF NOT EXISTS {table_name(dim)} (dataset_id INTEGER NOT NULL, "
        "label_id BIGINT NOT NULL, sample_id INTEGER NOT NULL, model VARCHAR NOT NULL, "
        f"vector FLOAT[{int(dim)}] NOT NULL)"
    )


def _box_filter(kind: str, source: str | None) -> tuple[str, list[Any]]:
    where = "l.kind = ? AND l.x IS NOT NULL"
    params: list[Any] = [kind]
    if source is not None:
        where += " AND l.source = ?"
        params.append(source)
    return where, params


def missing(
    store: Store, dataset_id: int, model: str, dim: int, kind: str, source: str | None
) -> list[tuple[int, int, str, float, float, float, float]]:
    """(label id, sample id, path, x, y, w, h) of every box of `kind` (and `source`) without a
    vector from `model`, by sample then label."""
    where, params = _box_filter(kind, source)
    rows = store.query(
        "SELECT l.id, l.sample_id, s.path, l.x, l.y, l.w, l.h FROM labels l "
        "JOIN samples s ON s.dataset_id = l.dataset_id AND s.id = l.sample_id "
        f"ANTI JOIN {table_name(dim)} e ON e.dataset_id = l.dataset_id AND e.label_id = l.id "
        f"AND e.model = ? WHERE l.dataset_id = ? AND {where} ORDER BY l.sample_id, l.id",
        [model, dataset_id, *params],
    )
    return [(int(a), int(b), str(c), d, e, f, g) for a, b, c, d, e, f, g in rows]


def present(
    store: Store, dataset_id: int, model: str, dim: int, label_ids: np.ndarray
) -> np.ndarray:
    """Which of `label_ids` have a vector from `model` (a bool per id)."""
    return present_in(store, table_name(dim), "label_id", dataset_id, model, label_ids)


def count_boxes(store: Store, dataset_id: int, kind: str, source: str | None) -> int:
    where, params = _box_filter(kind, source)
    found = store.query_one(
        f"SELECT count(*) FROM labels l WHERE l.dataset_id = ? AND {where}", [dataset_id, *params]
    )
    return int(found[0]) if found else 0


def clear_errors(store: Store, dataset_id: int, model: str, label_ids: list[int]) -> None:
    store.cursor().execute(
        "DELETE FROM object_embedding_errors WHERE dataset_id = ? AND model = ? "
        "AND list_contains(?, label_id)",
        [dataset_id, model, label_ids],
    )


def write_batch(
    store: Store,
    dataset_id: int,
    model: str,
    label_ids: np.ndarray,
    sample_ids: np.ndarray,
    vectors: np.ndarray,
    failed: list[tuple[int, int, str]],
    *,
    job_id: str | None,
) -> None:
    """Commit one batch: its vectors and its failures ((label id, sample id, reason))."""
    n, dim = vectors.shape
    if not np.isfinite(vectors).all():
        raise InvalidInput("refusing to store object vectors with NaN or infinite values")
    with store.transaction() as cur:
        if n:
            flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
            batch = pa.table(
                {
                    "dataset_id": pa.array(np.full(n, dataset_id, dtype=np.int32)),
                    "label_id": pa.array(label_ids.astype(np.int64)),
                    "sample_id": pa.array(sample_ids.astype(np.int32)),
                    "model": pa.array([model] * n, pa.string()),
                    "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
                }
            )
            store.insert_arrow(cur, table_name(dim), batch)
        if failed:
            errors = pa.table(
                {
                    "dataset_id": pa.array([dataset_id] * len(failed), pa.int32()),
                    "label_id": pa.array([k for k, _, _ in failed], pa.int64()),
                    "sample_id": pa.array([s for _, s, _ in failed], pa.int32()),
                    "model": pa.array([model] * len(failed), pa.string()),
                    "job_id": pa.array([job_id] * len(failed), pa.string()),
                    "reason": pa.array([r for _, _, r in failed], pa.string()),
                }
            )
            store.insert_arrow(cur, "object_embedding_errors", errors)


def vectors(store: Store, dataset_id: int, model: str, kind: str | None = None) -> ObjectVectors:
    """The boxes with a vector from `model` (of `kind`, or all), by label id."""
    dim = model_dim(store, model)
    if dim is None or not store.has_table(table_name(dim)):
        return ObjectVectors(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), "f4"))
    kind_filter = "AND l.kind = ?" if kind else ""
    table = store.query_arrow(
        f"SELECT e.label_id, e.sample_id, e.vector FROM {table_name(dim)} e "
        "SEMI JOIN labels l ON l.dataset_id = e.dataset_id AND l.id = e.label_id "
        f"{kind_filter} WHERE e.dataset_id = ? AND e.model = ? ORDER BY e.label_id",
        [*([kind] if kind else []), dataset_id, model],
    )
    ids = table.column("label_id").to_numpy().astype(np.int64)
    column = table.column("vector").combine_chunks()
    matrix = column.values.to_numpy(zero_copy_only=False).reshape(len(ids), dim)
    return ObjectVectors(
        ids, table.column("sample_id").to_numpy().astype(np.int64), matrix.astype("f4")
    )


def status(store: Store, dataset_id: int) -> list[dict[str, Any]]:
    """Per model with object vectors or skipped boxes here: dim, vectors by kind, skipped."""
    rows: list[dict[str, Any]] = []
    for name, dim in store.query("SELECT name, dim FROM embedding_models ORDER BY name"):
        by_kind: dict[str, int] = {}
        if store.has_table(table_name(dim)):
            for kind, n in store.query(
                f"SELECT l.kind, count(*) FROM {table_name(dim)} e JOIN labels l "
                "ON l.dataset_id = e.dataset_id AND l.id = e.label_id "
                "WHERE e.dataset_id = ? AND e.model = ? GROUP BY 1 ORDER BY 1",
                [dataset_id, name],
            ):
                by_kind[str(kind)] = int(n)
        skipped = store.query_one(
            "SELECT count(*) FROM object_embedding_errors WHERE dataset_id = ? AND model = ?",
            [dataset_id, name],
        )
        n_skipped = int(skipped[0]) if skipped else 0
        if by_kind or n_skipped:
            rows.append(
                {
                    "model": name,
                    "dim": int(dim),
                    "vectors": sum(by_kind.values()),
                    "by_kind": by_kind,
                    "skipped": n_skipped,
                }
            )
    return rows


def skipped(store: Store, dataset_id: int, model: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The boxes that gave no vector, with the reason and their image's path."""
    return store.query_dicts(
        "SELECT e.label_id, e.sample_id, s.path, e.reason FROM object_embedding_errors e "
        "JOIN samples s ON s.dataset_id = e.dataset_id AND s.id = e.sample_id "
        "WHERE e.dataset_id = ? AND e.model = ? ORDER BY e.label_id LIMIT ?",
        [dataset_id, model, limit],
    )


def boxes(store: Store, dataset_id: int, label_ids: list[int]) -> dict[int, dict[str, Any]]:
    """By label id: its sample, class, kind, source and box."""
    rows = store.query(
        "SELECT id, sample_id, class, kind, source, x, y, w, h FROM labels "
        "WHERE dataset_id = ? AND list_contains(?, id)",
        [dataset_id, label_ids],
    )
    return {
        int(i): {
            "label_id": int(i),
            "sample_id": int(s),
            "class": c,
            "kind": k,
            "source": src,
            "box": [x, y, w, h],
        }
        for i, s, c, k, src, x, y, w, h in rows
    }


def save_scores(store: Store, dataset_id: int, model: str, rows: pa.Table) -> None:
    """Replace the dataset's per-box outlier and duplicate results."""
    n = rows.num_rows
    table = rows.append_column("dataset_id", pa.repeat(pa.scalar(dataset_id, pa.int32()), n))
    table = table.append_column("model", pa.repeat(pa.scalar(model), n))
    with store.transaction() as cur:
        cur.execute("DELETE FROM object_scores WHERE dataset_id = ?", [dataset_id])
        store.insert_arrow(cur, "object_scores", table)


def scores_summary(store: Store, dataset_id: int, examples: int) -> dict[str, Any] | None:
    """Boxes scored, outliers and duplicate groups, and the most unusual boxes."""
    found = store.query_one(
        "SELECT count(*), count(*) FILTER (WHERE outlier), count(DISTINCT duplicate_group), "
        "count(duplicate_group), any_value(model) FROM object_scores WHERE dataset_id = ?",
        [dataset_id],
    )
    if not found or not found[0]:
        return None
    worst = store.query(
        "SELECT label_id, sample_id, uniqueness FROM object_scores WHERE dataset_id = ? "
        f"AND outlier ORDER BY uniqueness DESC, label_id LIMIT {int(examples)}",
        [dataset_id],
    )
    return {
        "scored": int(found[0]),
        "outliers": int(found[1]),
        "duplicate_groups": int(found[2]),
        "boxes_in_duplicate_groups": int(found[3]),
        "model": found[4],
        "examples": [
            {"label_id": int(a), "sample_id": int(b), "uniqueness": round(float(c), 4)}
            for a, b, c in worst
        ],
    }


def samples_with(store: Store, dataset_id: int, issue: str, limit: int) -> list[int]:
    """Samples holding a box that is an outlier (`issue` "outlier", most unusual first) or in a
    duplicate group ("duplicate_group")."""
    where = "outlier" if issue == "outlier" else "duplicate_group IS NOT NULL"
    rows = store.query(
        f"SELECT sample_id FROM object_scores WHERE dataset_id = ? AND {where} "
        f"GROUP BY sample_id ORDER BY max(uniqueness) DESC, sample_id LIMIT {int(limit)}",
        [dataset_id],
    )
    return [int(r[0]) for r in rows]


def scores_of_sample(store: Store, dataset_id: int, sample_id: int) -> dict[int, dict[str, Any]]:
    rows = store.query(
        "SELECT label_id, uniqueness, outlier, duplicate_group FROM object_scores "
        "WHERE dataset_id = ? AND sample_id = ?",
        [dataset_id, sample_id],
    )
    return {
        int(i): {
            "uniqueness": round(float(u), 4),
            "outlier": bool(o),
            "duplicate_group": None if g is None else int(g),
        }
        for i, u, o, g in rows
    }


def version(store: Store, dataset_id: int, model: str) -> tuple[int, int]:
    """Changes whenever the model's box vectors in the dataset change (count, newest row)."""
    dim = model_dim(store, model)
    if dim is None or not store.has_table(table_name(dim)):
        return (0, -1)
    found = store.query_one(
        f"SELECT count(*), coalesce(max(rowid), -1) FROM {table_name(dim)} "
        "WHERE dataset_id = ? AND model = ?",
        [dataset_id, model],
    )
    return (int(found[0]), int(found[1])) if found else (0, -1)
