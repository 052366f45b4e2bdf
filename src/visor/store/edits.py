"""The label edit log and the changes it makes: a batch of rows, each a label (or sample)
before and after; applying a row forwards or backwards is the same UPDATE/INSERT/DELETE."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from visor.store.db import Store
from visor.store.filters import _IDS, id_relation

LABEL_COLUMNS = ("id", "sample_id", "kind", "source", "class", "x", "y", "w", "h", "score",
                 "iscrowd", "flags")  # fmt: skip


def label_row(cur: duckdb.DuckDBPyConnection, dataset_id: int, label_id: int) -> dict | None:
    found = cur.execute(
        f"SELECT {', '.join(LABEL_COLUMNS)} FROM labels WHERE dataset_id = ? AND id = ?",
        [dataset_id, label_id],
    ).fetchall()
    return dict(zip(LABEL_COLUMNS, found[0], strict=True)) if found else None


def new_label_id(cur: duckdb.DuckDBPyConnection) -> int:
    return int(cur.execute("SELECT nextval('label_ids')").fetchall()[0][0])


def next_batch(cur: duckdb.DuckDBPyConnection, dataset_id: int) -> int:
    found = cur.execute(
        "SELECT coalesce(max(batch), 0) + 1 FROM label_edits WHERE dataset_id = ?", [dataset_id]
    ).fetchall()
    return int(found[0][0])


LABEL_TYPES = {"id": pa.int64(), "sample_id": pa.int32(), "kind": pa.string(),
               "source": pa.string(), "class": pa.string(), "x": pa.float64(),
               "y": pa.float64(), "w": pa.float64(), "h": pa.float64(), "score": pa.float64(),
               "iscrowd": pa.bool_(), "flags": pa.list_(pa.string())}  # fmt: skip


def label_rows(
    cur: duckdb.DuckDBPyConnection, dataset_id: int, label_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """The labels of `label_ids` that exist, by id: one read however many."""
    with Store.registered(cur, _label_ids(label_ids)):
        found = cur.execute(
            f"SELECT {', '.join(LABEL_COLUMNS)} FROM labels WHERE dataset_id = ? "
            "AND id IN (SELECT id FROM _visor_labels)",
            [dataset_id],
        ).fetchall()
    return {int(row[0]): dict(zip(LABEL_COLUMNS, row, strict=True)) for row in found}


def set_labels(
    cur: duckdb.DuckDBPyConnection, dataset_id: int, rows: dict[int, dict[str, Any] | None]
) -> None:
    """Make each label (by id) be its row (None: absent), in a few statements however many
    (a relabel of 100K boxes is one edit). A label whose class changed or that went loses its
    label-quality verdict: it no longer holds."""
    if not rows:
        return
    with Store.registered(cur, _label_ids(list(rows))):
        for table, column in (("labels", "id"), ("label_quality", "label_id")):
            cur.execute(
                f"DELETE FROM {table} WHERE dataset_id = ? AND {column} IN "
                "(SELECT id FROM _visor_labels)",
                [dataset_id],
            )
    kept = [row for row in rows.values() if row is not None]
    if not kept:
        return
    columns = {c: pa.array([row[c] for row in kept], t) for c, t in LABEL_TYPES.items()}
    with Store.registered(cur, {"_visor_labels_now": pa.table(columns)}):
        cur.execute(
            f"INSERT INTO labels (dataset_id, {', '.join(LABEL_COLUMNS)}) SELECT ?, "
            f"{', '.join(LABEL_COLUMNS)} FROM _visor_labels_now",
            [dataset_id],
        )


def _label_ids(label_ids: list[int]) -> dict[str, pa.Table]:
    """Label ids (BIGINT) as a table SQL reads as `_visor_labels`."""
    return {"_visor_labels": pa.table({"id": pa.array(label_ids, pa.int64())})}


def of_class(store: Store, dataset_id: int, cls: str, sample_ids: np.ndarray | None) -> list[int]:
    """Ids of the ground-truth labels of class `cls` (of the samples `sample_ids`, else all)."""
    where = "dataset_id = ? AND kind = 'gt' AND class = ?"
    relations = None
    if sample_ids is not None:
        where += f" AND sample_id IN (SELECT id FROM {_IDS})"
        relations = id_relation(sample_ids)
    found = store.query(f"SELECT id FROM labels WHERE {where} ORDER BY id", [dataset_id, cls],
                        relations)  # fmt: skip
    return [int(row[0]) for row in found]


def set_flag(
    cur: duckdb.DuckDBPyConnection, dataset_id: int, sample_id: int, flag: str, on: bool
) -> None:
    cur.execute(
        "UPDATE samples SET flags = CASE WHEN ? THEN list_distinct(list_append(coalesce(flags, "
        "[]), ?)) ELSE list_filter(coalesce(flags, []), lambda f: f != ?) END "
        "WHERE dataset_id = ? AND id = ?",
        [on, flag, flag, dataset_id, sample_id],
    )


def without_tag(
    cur: duckdb.DuckDBPyConnection, dataset_id: int, ids: np.ndarray, tag: str
) -> np.ndarray:
    """Those of the samples `ids` that don't have `tag` (ascending)."""
    with Store.registered(cur, id_relation(ids)):
        found = cur.execute(
            f"SELECT id FROM samples WHERE dataset_id = ? AND id IN (SELECT id FROM {_IDS}) "
            "AND NOT list_contains(coalesce(tags, []), ?) ORDER BY id",
            [dataset_id, tag],
        ).fetchall()
    return np.array([r[0] for r in found], dtype=np.int64)


def set_tag(
    cur: duckdb.DuckDBPyConnection, dataset_id: int, ids: np.ndarray, tag: str, on: bool
) -> None:
    """Add `tag` to the samples `ids` (on), or take it off, in one statement."""
    value = (
        "list_sort(list_distinct(list_append(coalesce(tags, []), ?)))"
        if on
        else "list_filter(coalesce(tags, []), lambda t: t != ?)"
    )
    with Store.registered(cur, id_relation(ids)):
        cur.execute(
            f"UPDATE samples SET tags = {value} WHERE dataset_id = ? "
            f"AND id IN (SELECT id FROM {_IDS})",
            [tag, dataset_id],
        )


def refresh_samples(cur: duckdb.DuckDBPyConnection, dataset_id: int, ids: list[int]) -> None:
    """Recompute the touched samples' classes and number of labels, and the dataset's classes."""
    with Store.registered(cur, id_relation(ids)):
        cur.execute(
            "UPDATE samples SET classes = coalesce((SELECT list(DISTINCT l.class ORDER BY "
            "l.class) FROM labels l WHERE l.dataset_id = samples.dataset_id AND l.sample_id = "
            "samples.id AND l.kind = 'gt' AND l.class IS NOT NULL), []), num_labels = (SELECT "
            "count(*) FROM labels l WHERE l.dataset_id = samples.dataset_id AND l.sample_id = "
            f"samples.id) WHERE dataset_id = ? AND id IN (SELECT id FROM {_IDS})",
            [dataset_id],
        )
    cur.execute(
        "UPDATE datasets SET categories = (SELECT list(DISTINCT class ORDER BY class) FROM labels "
        "WHERE dataset_id = ? AND kind = 'gt' AND class IS NOT NULL), num_labels = (SELECT "
        "count(*) FROM labels WHERE dataset_id = ?) WHERE id = ?",
        [dataset_id, dataset_id, dataset_id],
    )


def log(
    cur: duckdb.DuckDBPyConnection,
    dataset_id: int,
    batch: int,
    rows: list[dict[str, Any]],
    who: str | None,
) -> None:
    n = len(rows)
    table = pa.table(
        {
            "dataset_id": pa.array([dataset_id] * n, pa.int32()),
            "batch": pa.array([batch] * n, pa.int32()),
            "seq": pa.array(range(n), pa.int32()),
            "who": pa.array([who] * n, pa.string()),
            "action": pa.array([r["action"] for r in rows], pa.string()),
            "label_id": pa.array([r.get("label_id") for r in rows], pa.int64()),
            "sample_id": pa.array([r["sample_id"] for r in rows], pa.int32()),
            "before": pa.array([_json(r.get("before")) for r in rows], pa.string()),
            "after": pa.array([_json(r.get("after")) for r in rows], pa.string()),
            "state": pa.array(["done"] * n, pa.string()),
        }
    )
    with Store.registered(cur, {"_visor_edits": table}):  # one insert however many rows
        cur.execute(
            "INSERT INTO label_edits (dataset_id, batch, seq, who, action, label_id, sample_id, "
            "before, after, state) SELECT dataset_id, batch, seq, who, action, label_id, "
            "sample_id, before::JSON, after::JSON, state FROM _visor_edits"
        )
    # A new edit ends what could be redone.
    cur.execute(
        "UPDATE label_edits SET state = 'dropped' WHERE dataset_id = ? AND state = 'undone'",
        [dataset_id],
    )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def batch_rows(store: Store, dataset_id: int, batch: int) -> list[dict[str, Any]]:
    rows = store.query_dicts(
        "SELECT batch, seq, action, label_id, sample_id, before, after, state FROM label_edits "
        "WHERE dataset_id = ? AND batch = ? ORDER BY seq",
        [dataset_id, batch],
    )
    for row in rows:
        row["before"] = json.loads(row["before"]) if row["before"] else None
        row["after"] = json.loads(row["after"]) if row["after"] else None
    return rows


def last_batch(store: Store, dataset_id: int, state: str, newest: bool = True) -> int | None:
    order = "DESC" if newest else "ASC"
    found = store.query_one(
        f"SELECT batch FROM label_edits WHERE dataset_id = ? AND state = ? "
        f"GROUP BY batch ORDER BY batch {order} LIMIT 1",
        [dataset_id, state],
    )
    return int(found[0]) if found else None


def set_state(cur: duckdb.DuckDBPyConnection, dataset_id: int, batch: int, state: str) -> None:
    cur.execute(
        "UPDATE label_edits SET state = ? WHERE dataset_id = ? AND batch = ?",
        [state, dataset_id, batch],
    )


def later_touching(store: Store, dataset_id: int, batch: int, label_ids: list[int]) -> int | None:
    """A later batch still in force that changed one of these labels, if any."""
    found = store.query_one(
        "SELECT min(batch) FROM label_edits WHERE dataset_id = ? AND batch > ? AND state = 'done' "
        "AND list_contains(?, label_id)",
        [dataset_id, batch, label_ids],
    )
    return int(found[0]) if found and found[0] is not None else None


def deleted_by(store: Store, dataset_id: int, label_id: int) -> int | None:
    found = store.query_one(
        "SELECT max(batch) FROM label_edits WHERE dataset_id = ? AND label_id = ? "
        "AND action = 'delete' AND state = 'done'",
        [dataset_id, label_id],
    )
    return int(found[0]) if found and found[0] is not None else None


def history(store: Store, dataset_id: int, limit: int) -> list[dict[str, Any]]:
    """The batches, newest first: when, who, what, how many changes, state."""
    rows = store.query_dicts(
        "SELECT batch, min(made_at) AS at, any_value(who) AS who, "
        "list(DISTINCT action) AS actions, count(*) AS changes, any_value(state) AS state, "
        "list(DISTINCT sample_id) AS samples "
        "FROM label_edits WHERE dataset_id = ? GROUP BY batch ORDER BY batch DESC LIMIT ?",
        [dataset_id, limit],
    )
    for row in rows:
        row["at"] = row["at"].isoformat() if row["at"] else None
        row["samples"] = sorted(row["samples"])[:20]
    return rows
