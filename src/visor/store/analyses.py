"""Per-sample results of the neighbour analyses (duplicate groups, content hashes, uniqueness)
and the record of each run (model, parameters, summary)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from visor.store.db import Store


def splits(store: Store, dataset_id: int) -> dict[int, str | None]:
    """Each sample's split, by id."""
    found = store.query("SELECT id, split FROM samples WHERE dataset_id = ?", [dataset_id])
    return {int(i): s for i, s in found}


def sizes(store: Store, dataset_id: int) -> list[tuple[int, str, int | None, str | None]]:
    """(id, path, size in bytes, content hash so far) of every sample, in id order."""
    return [
        (int(i), str(p), None if n is None else int(n), h)
        for i, p, n, h in store.query(
            "SELECT id, path, size_bytes, content_hash FROM samples WHERE dataset_id = ? "
            "ORDER BY id",
            [dataset_id],
        )
    ]


def keep_order(store: Store, dataset_id: int) -> list[int]:
    """Every sample id, the copy worth keeping first: most pixels, then largest file, then
    lowest id."""
    return [
        int(i)
        for (i,) in store.query(
            "SELECT id FROM samples WHERE dataset_id = ? ORDER BY "
            "coalesce(width::BIGINT * height, 0) DESC, coalesce(size_bytes, 0) DESC, id",
            [dataset_id],
        )
    ]


def _update_column(
    cur: Any, dataset_id: int, column: str, ids: np.ndarray, values: pa.Array
) -> None:
    """Set `column` of the samples `ids` (others untouched), in one statement."""
    cur.register("_visor_update", pa.table({"id": pa.array(ids, pa.int32()), "value": values}))
    try:
        cur.execute(
            f"UPDATE samples SET {column} = u.value FROM _visor_update u "
            "WHERE samples.dataset_id = ? AND samples.id = u.id",
            [dataset_id],
        )
    finally:
        cur.unregister("_visor_update")


def _record(
    cur: Any,
    dataset_id: int,
    kind: str,
    model: str | None,
    params: dict[str, Any],
    summary: dict[str, Any],
    job_id: str | None,
) -> None:
    cur.execute("DELETE FROM analyses WHERE dataset_id = ? AND kind = ?", [dataset_id, kind])
    cur.execute(
        "INSERT INTO analyses (dataset_id, kind, model, params, summary, job_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [dataset_id, kind, model, json.dumps(params), json.dumps(summary), job_id],
    )


def record(
    store: Store,
    dataset_id: int,
    kind: str,
    model: str | None,
    params: dict[str, Any],
    summary: dict[str, Any],
    job_id: str | None,
) -> None:
    """Keep an analysis's run (the last of its kind replaces the one before)."""
    with store.transaction() as cur:
        _record(cur, dataset_id, kind, model, params, summary, job_id)


def save_duplicates(
    store: Store,
    dataset_id: int,
    *,
    hashed_ids: np.ndarray,
    hashes: list[str],
    group_ids: np.ndarray,
    groups: np.ndarray,
    model: str | None,
    params: dict[str, Any],
    summary: dict[str, Any],
    job_id: str | None,
) -> None:
    """Store new content hashes and replace every sample's duplicate group (NULL when it has
    no duplicate) in one transaction."""
    with store.transaction() as cur:
        if len(hashed_ids):
            _update_column(cur, dataset_id, "content_hash", hashed_ids, pa.array(hashes))
        cur.execute("UPDATE samples SET duplicate_group = NULL WHERE dataset_id = ?", [dataset_id])
        if len(group_ids):
            _update_column(
                cur, dataset_id, "duplicate_group", group_ids, pa.array(groups, pa.int32())
            )
        _record(cur, dataset_id, "duplicates", model, params, summary, job_id)


def save_uniqueness(
    store: Store,
    dataset_id: int,
    ids: np.ndarray,
    scores: np.ndarray,
    *,
    model: str,
    params: dict[str, Any],
    summary: dict[str, Any],
    job_id: str | None,
) -> None:
    """Replace every sample's uniqueness (NULL for samples without a vector)."""
    with store.transaction() as cur:
        cur.execute("UPDATE samples SET uniqueness = NULL WHERE dataset_id = ?", [dataset_id])
        _update_column(cur, dataset_id, "uniqueness", ids, pa.array(scores, pa.float32()))
        _record(cur, dataset_id, "uniqueness", model, params, summary, job_id)


def last_run(store: Store, dataset_id: int, kind: str) -> dict[str, Any] | None:
    rows = store.query_dicts(
        "SELECT kind, model, params, summary, job_id, created_at FROM analyses "
        "WHERE dataset_id = ? AND kind = ?",
        [dataset_id, kind],
    )
    if not rows:
        return None
    row = rows[0]
    row["params"] = json.loads(row["params"]) if row["params"] else {}
    row["summary"] = json.loads(row["summary"]) if row["summary"] else {}
    return row


def duplicate_groups(
    store: Store, dataset_id: int, *, offset: int = 0, limit: int = 100
) -> tuple[int, list[dict[str, Any]]]:
    """(number of groups, one page of groups, largest first), each with its samples."""
    found = store.query_one(
        "SELECT count(DISTINCT duplicate_group) FROM samples WHERE dataset_id = ?", [dataset_id]
    )
    rows = store.query(
        "WITH g AS (SELECT duplicate_group AS grp, count(*) AS n FROM samples "
        "WHERE dataset_id = ? AND duplicate_group IS NOT NULL GROUP BY 1 "
        "ORDER BY n DESC, grp LIMIT ? OFFSET ?) "
        "SELECT g.grp, g.n, list(s.id ORDER BY s.id), list(s.path ORDER BY s.id), "
        "list(s.content_hash ORDER BY s.id) FROM g JOIN samples s "
        "ON s.dataset_id = ? AND s.duplicate_group = g.grp GROUP BY g.grp, g.n "
        "ORDER BY g.n DESC, g.grp",
        [dataset_id, int(limit), int(offset), dataset_id],
    )
    groups = []
    for grp, n, ids, paths, hashes in rows:
        groups.append(
            {
                "group": int(grp),
                "size": int(n),
                "exact": hashes[0] is not None and len(set(hashes)) == 1,
                "samples": [
                    {"sample_id": int(i), "path": p, "content_hash": h}
                    for i, p, h in zip(ids, paths, hashes, strict=True)
                ],
            }
        )
    return (int(found[0]) if found else 0), groups


def cross_split_groups(store: Store, dataset_id: int) -> list[tuple[int, list[str], int]]:
    """(group, its splits, its size) of each duplicate group whose members sit in more than
    one split, largest first."""
    rows = store.query(
        "SELECT duplicate_group, list(DISTINCT coalesce(split, '(none)')), count(*) "
        "FROM samples WHERE dataset_id = ? AND duplicate_group IS NOT NULL GROUP BY 1 "
        "HAVING count(DISTINCT coalesce(split, '(none)')) > 1 ORDER BY 3 DESC, 1",
        [dataset_id],
    )
    return [(int(g), list(splits), int(n)) for g, splits, n in rows]


def group_members(store: Store, dataset_id: int, groups: list[int] | None, limit: int) -> list[int]:
    """Up to `limit` sample ids of the given duplicate groups (None: of any group), by group."""
    rows = store.query(
        "SELECT id FROM samples WHERE dataset_id = ? AND duplicate_group IS NOT NULL "
        + ("AND list_contains(?, duplicate_group) " if groups is not None else "")
        + f"ORDER BY duplicate_group, id LIMIT {int(limit)}",
        [dataset_id, *([groups] if groups is not None else [])],
    )
    return [int(r[0]) for r in rows]


def uniqueness_scores(store: Store, dataset_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids and uniqueness (float64) of the scored samples."""
    found = store.query_arrow(
        "SELECT id, uniqueness FROM samples WHERE dataset_id = ? AND uniqueness IS NOT NULL",
        [dataset_id],
    )
    return found["id"].to_numpy(), found["uniqueness"].to_numpy().astype(np.float64)
