"""Saved views (a name for filters, sort, selection, map and colouring) and the selections
(sets of sample ids under a token) they and the UI name."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from visor.store.db import Store

KEEP_SELECTIONS = 200  # per dataset, besides those a view names


def add_selection(store: Store, dataset_id: int, token: str, ids: np.ndarray) -> None:
    table = pa.table(
        {
            "dataset_id": pa.array([dataset_id], pa.int32()),
            "token": pa.array([token]),
            "ids": pa.array([ids.astype(np.int32)], pa.list_(pa.int32())),
        }
    )
    with store.transaction() as cur:
        store.insert_arrow(cur, "selections", table)
        cur.execute(
            "DELETE FROM selections WHERE dataset_id = ? AND token NOT IN (SELECT token FROM "
            "selections WHERE dataset_id = ? ORDER BY created_at DESC LIMIT ?) AND token NOT IN "
            "(SELECT state->>'selection' FROM views WHERE dataset_id = ? AND "
            "state->>'selection' IS NOT NULL)",
            [dataset_id, dataset_id, KEEP_SELECTIONS, dataset_id],
        )


def selection(store: Store, dataset_id: int, token: str) -> np.ndarray | None:
    table = store.query_arrow(
        "SELECT ids FROM selections WHERE dataset_id = ? AND token = ?", [dataset_id, token]
    )
    if not table.num_rows:
        return None
    return table.column("ids").combine_chunks().values.to_numpy().astype(np.int64)


def save_view(store: Store, dataset_id: int, name: str, state: dict[str, Any]) -> None:
    with store.transaction() as cur:
        cur.execute("DELETE FROM views WHERE dataset_id = ? AND name = ?", [dataset_id, name])
        cur.execute(
            "INSERT INTO views (dataset_id, name, state) VALUES (?, ?, ?)",
            [dataset_id, name, json.dumps(state)],
        )


def view(store: Store, dataset_id: int, name: str) -> dict[str, Any] | None:
    found = store.query_one(
        "SELECT name, state, updated_at FROM views WHERE dataset_id = ? AND name = ?",
        [dataset_id, name],
    )
    if not found:
        return None
    return {"name": found[0], **json.loads(found[1]), "updated_at": found[2].isoformat()}


def views(store: Store, dataset_id: int) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT name, state, updated_at FROM views WHERE dataset_id = ? ORDER BY name",
        [dataset_id],
    )
    return [{"name": n, **json.loads(s), "updated_at": u.isoformat()} for n, s, u in rows]


def delete_view(store: Store, dataset_id: int, name: str) -> bool:
    found = store.query_one(
        "SELECT count(*) FROM views WHERE dataset_id = ? AND name = ?", [dataset_id, name]
    )
    store.cursor().execute(
        "DELETE FROM views WHERE dataset_id = ? AND name = ?", [dataset_id, name]
    )
    return bool(found and found[0])
