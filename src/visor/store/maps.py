"""Maps (2D layouts of a dataset's vectors) and their points."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from visor.store.db import Store

_COLUMNS = (
    "id",
    "dataset_id",
    "model",
    "method",
    "params",
    "num_points",
    "is_default",
    "job_id",
    "seconds",
    "created_at",
    "objects",
)


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(_COLUMNS, values, strict=True))
    row["params"] = json.loads(row["params"]) if row["params"] else {}
    row["created_at"] = row["created_at"].isoformat() if row["created_at"] else None
    row["objects"] = bool(row["objects"])
    return row


def list_maps(store: Store, dataset_id: int) -> list[dict[str, Any]]:
    rows = store.query(
        f"SELECT {', '.join(_COLUMNS)} FROM maps WHERE dataset_id = ? ORDER BY id", [dataset_id]
    )
    return [_row(r) for r in rows]


def get(store: Store, dataset_id: int, map_id: int) -> dict[str, Any] | None:
    found = store.query_one(
        f"SELECT {', '.join(_COLUMNS)} FROM maps WHERE dataset_id = ? AND id = ?",
        [dataset_id, map_id],
    )
    return _row(found) if found else None


def save(
    store: Store,
    dataset_id: int,
    *,
    model: str,
    method: str,
    params: dict[str, Any],
    ids: np.ndarray,
    xy: np.ndarray,
    job_id: str | None,
    seconds: float,
    label_ids: np.ndarray | None = None,
) -> int:
    """Store a new map with its points, atomically; it becomes the dataset's default. A map
    of objects has a point per box: `label_ids` beside their `ids` (sample ids)."""
    with store.transaction() as cur:
        found = cur.execute("SELECT nextval('map_ids')").fetchall()
        map_id = int(found[0][0])
        cur.execute("UPDATE maps SET is_default = false WHERE dataset_id = ?", [dataset_id])
        cur.execute(
            "INSERT INTO maps (id, dataset_id, model, method, params, num_points, is_default, "
            "job_id, seconds, objects) VALUES (?, ?, ?, ?, ?, ?, true, ?, ?, ?)",
            [
                map_id,
                dataset_id,
                model,
                method,
                json.dumps(params),
                len(ids),
                job_id,
                seconds,
                label_ids is not None,
            ],
        )
        n = len(ids)
        points = pa.table(
            {
                "dataset_id": pa.array(np.full(n, dataset_id, dtype=np.int32)),
                "map_id": pa.array(np.full(n, map_id, dtype=np.int32)),
                "sample_id": pa.array(ids.astype(np.int32)),
                "x": pa.array(xy[:, 0].astype(np.float32)),
                "y": pa.array(xy[:, 1].astype(np.float32)),
                "label_id": pa.array(
                    label_ids.astype(np.int64) if label_ids is not None else [None] * n,
                    pa.int64(),
                ),
            }
        )
        store.insert_arrow(cur, "map_points", points)
    return map_id


def set_default(store: Store, dataset_id: int, map_id: int) -> None:
    with store.transaction() as cur:
        cur.execute("UPDATE maps SET is_default = false WHERE dataset_id = ?", [dataset_id])
        cur.execute(
            "UPDATE maps SET is_default = true WHERE dataset_id = ? AND id = ?",
            [dataset_id, map_id],
        )


def delete(store: Store, dataset_id: int, map_id: int) -> None:
    with store.transaction() as cur:
        for table in ("map_points", "clusters"):
            cur.execute(
                f"DELETE FROM {table} WHERE dataset_id = ? AND map_id = ?", [dataset_id, map_id]
            )
        cur.execute("DELETE FROM maps WHERE dataset_id = ? AND id = ?", [dataset_id, map_id])


def points(store: Store, dataset_id: int, map_id: int, *, objects: bool = False) -> pa.Table:
    """sample_id, x, y, the sample's split, its first class and first tag, by sample id; on a
    map of objects also label_id, and the class is the box's, by sample then label id."""
    if objects:
        return store.query_arrow(
            "SELECT p.sample_id, p.label_id, p.x, p.y, s.split, l.class, s.tags[1] AS tag "
            "FROM map_points p "
            "JOIN samples s ON s.dataset_id = p.dataset_id AND s.id = p.sample_id "
            "JOIN labels l ON l.dataset_id = p.dataset_id AND l.id = p.label_id "
            "WHERE p.dataset_id = ? AND p.map_id = ? ORDER BY p.sample_id, p.label_id",
            [dataset_id, map_id],
        )
    return store.query_arrow(
        "SELECT p.sample_id, p.x, p.y, s.split, s.classes[1] AS class, s.tags[1] AS tag "
        "FROM map_points p "
        "JOIN samples s ON s.dataset_id = p.dataset_id AND s.id = p.sample_id "
        "WHERE p.dataset_id = ? AND p.map_id = ? ORDER BY p.sample_id",
        [dataset_id, map_id],
    )


def point_tags(
    store: Store, dataset_id: int, map_id: int, *, objects: bool = False
) -> pa.ChunkedArray:
    """Each point's sample's first tag, in the order of `points`."""
    order = "p.sample_id, p.label_id" if objects else "p.sample_id"
    return store.query_arrow(
        "SELECT s.tags[1] AS tag FROM map_points p "
        "JOIN samples s ON s.dataset_id = p.dataset_id AND s.id = p.sample_id "
        f"WHERE p.dataset_id = ? AND p.map_id = ? ORDER BY {order}",
        [dataset_id, map_id],
    ).column("tag")
