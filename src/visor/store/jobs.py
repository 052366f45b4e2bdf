"""Job rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from visor.store.db import Store

_COLUMNS = (
    "id",
    "kind",
    "dataset",
    "params",
    "state",
    "done",
    "total",
    "message",
    "error",
    "result",
    "created_at",
    "started_at",
    "finished_at",
)


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value).astimezone() if value is not None else None


def insert(store: Store, job: dict[str, Any]) -> None:
    store.cursor().execute(
        "INSERT INTO jobs (id, kind, dataset, params, state, done, total, message, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            job["id"],
            job["kind"],
            job["dataset"],
            json.dumps(job["params"]),
            job["state"],
            job["done"],
            job["total"],
            job["message"],
            _ts(job["created_at"]),
        ],
    )


def update(store: Store, job: dict[str, Any]) -> None:
    store.cursor().execute(
        "UPDATE jobs SET state = ?, done = ?, total = ?, message = ?, error = ?, result = ?, "
        "started_at = ?, finished_at = ? WHERE id = ?",
        [
            job["state"],
            job["done"],
            job["total"],
            job["message"],
            job["error"],
            json.dumps(job["result"], default=str) if job["result"] is not None else None,
            _ts(job["started_at"]),
            _ts(job["finished_at"]),
            job["id"],
        ],
    )


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(_COLUMNS, values, strict=True))
    for key in ("params", "result"):
        row[key] = json.loads(row[key]) if row[key] is not None else None
    for key in ("created_at", "started_at", "finished_at"):
        row[key] = row[key].timestamp() if row[key] is not None else None
    row["rate"] = None
    row["eta"] = None
    return row


def get(store: Store, job_id: str) -> dict[str, Any] | None:
    found = store.query_one(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", [job_id])
    return _row(found) if found else None


def list_jobs(
    store: Store, dataset: str | None = None, kind: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    where, params = ["true"], []
    if dataset is not None:
        where.append("dataset = ?")
        params.append(dataset)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    rows = store.query(
        f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC LIMIT {int(limit)}",
        params,
    )
    return [_row(r) for r in rows]


def mark_interrupted(store: Store) -> list[str]:
    """Jobs a dead process left queued or running become `interrupted`; returns their ids."""
    rows = store.query("SELECT id FROM jobs WHERE state IN ('queued', 'running')")
    if rows:
        store.cursor().execute(
            "UPDATE jobs SET state = 'interrupted', finished_at = now(), "
            "message = 'interrupted: the process running it stopped; start it again to resume' "
            "WHERE state IN ('queued', 'running')"
        )
    return [r[0] for r in rows]
