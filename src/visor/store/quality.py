"""Image-quality rows: each sample's pixel statistics and issues."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from visor.store.db import Store


def missing(store: Store, dataset_id: int) -> list[tuple[int, str]]:
    """(sample id, path) of the samples without statistics yet, by id."""
    rows = store.query(
        "SELECT s.id, s.path FROM samples s ANTI JOIN "
        "(SELECT sample_id FROM image_quality WHERE dataset_id = ?) q ON q.sample_id = s.id "
        "WHERE s.dataset_id = ? ORDER BY s.id",
        [dataset_id, dataset_id],
    )
    return [(int(i), str(p)) for i, p in rows]


def measured_ids(store: Store, dataset_id: int) -> np.ndarray:
    """Ids (int64) of the samples with statistics."""
    cur = store.cursor()
    found = cur.execute(
        "SELECT sample_id FROM image_quality WHERE dataset_id = ?", [dataset_id]
    ).fetchnumpy()
    return np.asarray(found["sample_id"], dtype=np.int64)


def add_stats(
    store: Store, dataset_id: int, ids: list[int], columns: Mapping[str, Sequence[Any]]
) -> None:
    """Store the statistics of `ids` (a list per statistic, in `ids`' order), replacing any
    they had (issues are set afterwards)."""
    table = pa.table(
        {
            "dataset_id": pa.array(np.full(len(ids), dataset_id, np.int32)),
            "sample_id": pa.array(np.asarray(ids, np.int32)),
            **columns,
        }
    )
    with store.transaction() as cur, store.registered(cur, {"_visor_measured": table}):
        cur.execute(
            "DELETE FROM image_quality WHERE dataset_id = ? "
            "AND sample_id IN (SELECT sample_id FROM _visor_measured)",
            [dataset_id],
        )
        store.insert_arrow(cur, "image_quality", table)


def stats(store: Store, dataset_id: int) -> dict[str, np.ndarray]:
    """Every statistic as an array, with `sample_id`, in sample id order."""
    table = store.query_arrow(
        "SELECT * EXCLUDE (dataset_id, issues) FROM image_quality "
        "WHERE dataset_id = ? ORDER BY sample_id",
        [dataset_id],
    )
    return {c: table[c].to_numpy(zero_copy_only=False) for c in table.column_names}


def set_issues(store: Store, dataset_id: int, ids: np.ndarray, issues: list[list[str]]) -> None:
    table = pa.table(
        {
            "sample_id": pa.array(ids.astype(np.int32)),
            "issues": pa.array(issues, pa.list_(pa.string())),
        }
    )
    with store.transaction() as cur, store.registered(cur, {"_visor_issues": table}):
        cur.execute(
            "UPDATE image_quality SET issues = i.issues FROM _visor_issues i "
            "WHERE image_quality.dataset_id = ? AND image_quality.sample_id = i.sample_id",
            [dataset_id],
        )


def counts(store: Store, dataset_id: int) -> dict[str, Any]:
    """Samples measured, and per issue the samples that have it."""
    measured = store.query_one(
        "SELECT count(*) FROM image_quality WHERE dataset_id = ?", [dataset_id]
    )
    rows = store.query(
        "SELECT issue, count(*) FROM (SELECT unnest(issues) AS issue FROM image_quality "
        "WHERE dataset_id = ?) GROUP BY 1 ORDER BY 1",
        [dataset_id],
    )
    return {"measured": int(measured[0]) if measured else 0, "issues": {k: int(n) for k, n in rows}}


def examples(store: Store, dataset_id: int, issue: str, limit: int) -> list[int]:
    """Sample ids with `issue`, worst first where there is an order (dark: darkest...)."""
    order = {
        "dark": "brightness_p99",
        "light": "brightness_p5 DESC",
        "blurry": "blurriness",
        "low_information": "entropy",
        "low_contrast": "brightness_p99 - brightness_p1",
        "tiny": "least(width, height)",
    }.get(issue, "sample_id")
    rows = store.query(
        "SELECT sample_id FROM image_quality WHERE dataset_id = ? AND list_contains(issues, ?) "
        f"ORDER BY {order}, sample_id LIMIT {int(limit)}",
        [dataset_id, issue],
    )
    return [int(r[0]) for r in rows]
