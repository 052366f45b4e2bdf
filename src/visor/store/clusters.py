"""Density clusters of a map: each point's cluster (on `map_points`, NULL for noise) and
each cluster's label, size and summary (centroid, bounds, what its members share)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from visor.store.db import Store


def points(store: Store, dataset_id: int, map_id: int) -> pa.Table:
    """Every point of the map with what a cluster's label is made of: row (the point's
    place in `map_points` order), x, y, the sample's split, classes, tags and path; a box's
    class on a map of objects."""
    return store.query_arrow(
        "SELECT p.sample_id, p.label_id, p.x, p.y, s.split, "
        "CASE WHEN p.label_id IS NULL THEN s.classes ELSE [l.class] END AS classes, "
        "s.tags, s.path FROM map_points p "
        "JOIN samples s ON s.dataset_id = p.dataset_id AND s.id = p.sample_id "
        "LEFT JOIN labels l ON l.dataset_id = p.dataset_id AND l.id = p.label_id "
        "WHERE p.dataset_id = ? AND p.map_id = ? ORDER BY p.sample_id, p.label_id",
        [dataset_id, map_id],
    )


def save(
    store: Store,
    dataset_id: int,
    map_id: int,
    sample_ids: np.ndarray,
    label_ids: np.ndarray | None,
    labels: np.ndarray,
    clusters: list[dict[str, Any]],
    run: dict[str, Any],
) -> None:
    """Replace the map's clusters: `labels[i]` (-1: noise) is the cluster of the point of
    `sample_ids[i]` (and `label_ids[i]` on a map of objects); `run` (parameters, noise) is
    kept as row -1."""
    clusters = [*clusters, {**run, "cluster": -1, "label": "noise", "size": run["noise"]}]
    keyed = {
        "sample_id": pa.array(sample_ids.astype(np.int32)),
        "cluster": pa.array(labels.astype(np.int32), mask=labels < 0),
    }
    join = "t.sample_id = p.sample_id"
    if label_ids is not None:
        keyed["label_id"] = pa.array(label_ids.astype(np.int64))
        join += " AND t.label_id = p.label_id"
    rows = pa.table(
        {
            "dataset_id": pa.array(np.full(len(clusters), dataset_id, dtype=np.int32)),
            "map_id": pa.array(np.full(len(clusters), map_id, dtype=np.int32)),
            "cluster": pa.array([c["cluster"] for c in clusters], pa.int32()),
            "label": pa.array([c["label"] for c in clusters], pa.string()),
            "size": pa.array([c["size"] for c in clusters], pa.int32()),
            "summary": pa.array([json.dumps(c) for c in clusters], pa.string()),
        }
    )
    with store.transaction() as cur:
        cur.execute(
            "DELETE FROM clusters WHERE dataset_id = ? AND map_id = ?", [dataset_id, map_id]
        )
        cur.register("_visor_clusters", pa.table(keyed))
        try:
            cur.execute(
                "UPDATE map_points p SET cluster = t.cluster FROM _visor_clusters t "
                f"WHERE p.dataset_id = ? AND p.map_id = ? AND {join}",
                [dataset_id, map_id],
            )
        finally:
            cur.unregister("_visor_clusters")
        store.insert_arrow(cur, "clusters", rows)


def listed(store: Store, dataset_id: int, map_id: int) -> dict[str, Any] | None:
    """The map's last clustering: the run's summary (row -1: parameters, noise) with its
    clusters, largest first; None when the map was never clustered."""
    rows = store.query(
        "SELECT cluster, summary FROM clusters WHERE dataset_id = ? AND map_id = ? "
        "ORDER BY size DESC, cluster",
        [dataset_id, map_id],
    )
    run = next((json.loads(s) for c, s in rows if c == -1), None)
    if run is None:
        return None
    for key in ("cluster", "label", "size"):
        run.pop(key, None)
    return {**run, "clusters": [json.loads(s) for c, s in rows if c != -1]}
