"""Dataset rows, and writing a whole dataset in one transaction."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from visor.store.db import Store

_COLUMNS = "id, name, root, format, created_at, num_samples, num_labels, categories, report"


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip([c.strip() for c in _COLUMNS.split(",")], values, strict=True))
    row["report"] = json.loads(row["report"]) if row["report"] else None
    row["created_at"] = row["created_at"].isoformat() if row["created_at"] else None
    return row


def list_datasets(store: Store) -> list[dict[str, Any]]:
    return [_row(r) for r in store.query(f"SELECT {_COLUMNS} FROM datasets ORDER BY name")]


def get_by_name(store: Store, name: str) -> dict[str, Any] | None:
    found = store.query_one(f"SELECT {_COLUMNS} FROM datasets WHERE name = ?", [name])
    return _row(found) if found else None


def next_id(store: Store) -> int:
    found = store.query_one("SELECT nextval('dataset_ids')")
    assert found is not None
    return int(found[0])


def delete_rows(cur: duckdb.DuckDBPyConnection, dataset_id: int) -> None:
    """Remove a dataset and everything that belongs to it (call inside a transaction)."""
    for table in ("evaluation_boxes", "evaluation_samples"):
        cur.execute(
            f"DELETE FROM {table} WHERE evaluation_id IN "
            "(SELECT id FROM evaluations WHERE dataset_id = ?)",
            [dataset_id],
        )
    tables = [
        r[0]
        for r in cur.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'dataset_id'"
        ).fetchall()
    ]
    for table in tables:
        cur.execute(f'DELETE FROM "{table}" WHERE dataset_id = ?', [dataset_id])
    cur.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])


def write_dataset(
    store: Store,
    dataset: dict[str, Any],
    samples: list[pa.Table],
    labels: list[pa.Table],
    *,
    replace_id: int | None = None,
) -> None:
    """Insert a dataset with its samples and labels atomically, replacing `replace_id` if given."""
    with store.transaction() as cur:
        if replace_id is not None:
            delete_rows(cur, replace_id)
        cur.execute(
            "INSERT INTO datasets (id, name, root, format, num_samples, num_labels, categories, "
            "report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                dataset["id"],
                dataset["name"],
                dataset["root"],
                dataset["format"],
                dataset["num_samples"],
                dataset["num_labels"],
                dataset["categories"],
                json.dumps(dataset["report"]),
            ],
        )
        for batch in samples:
            store.insert_arrow(cur, "samples", batch)
        for batch in labels:
            store.insert_arrow(cur, "labels", batch)


def delete_dataset(store: Store, dataset_id: int) -> None:
    with store.transaction() as cur:
        delete_rows(cur, dataset_id)
