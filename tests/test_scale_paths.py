"""The paths large datasets take, on small data: float16 unit vectors, the neighbour graph
searched once and shared by duplicates and uniqueness, the IVF graph above the exact limit."""

from __future__ import annotations

import numpy as np
import pytest

from visor.config import Settings
from visor.services.search import EXACT_GRAPH_LIMIT, neighbour_graph, unit_rows
from visor.store import embeddings as vector_rows
from visor.synthetic import clustered_vectors, write_samples
from visor.workspace import Workspace

MODEL = "made-up-v1"


def _dataset(ws: Workspace, vectors: np.ndarray, name: str = "big") -> None:
    write_samples(ws.store, len(vectors), name, root=str(ws.settings.home))
    row = ws.dataset(name)
    vector_rows.ensure_model(ws.store, MODEL, vectors.shape[1])
    for start in range(0, len(vectors), 5000):
        ids = np.arange(start, min(start + 5000, len(vectors)))
        vector_rows.write_batch(
            ws.store, row.id, MODEL, ids, vectors[ids], [], job_id=None, replace=False
        )


@pytest.fixture
def ws(tmp_path) -> Workspace:  # type: ignore[no-untyped-def]
    with Workspace(Settings(home=tmp_path / "home")) as workspace:
        yield workspace


def test_float16_vectors_keep_the_answers(ws: Workspace) -> None:
    vectors = clustered_vectors(3000, 768, seed=4) * 7.5  # not unit length as stored
    _dataset(ws, vectors)
    dataset_id = ws.dataset("big").id
    ids, half = vector_rows.unit_vectors(ws.store, dataset_id, MODEL)
    _, full = vector_rows.unit_vectors(ws.store, dataset_id, MODEL, np.float32)
    assert half.dtype == np.float16 and full.dtype == np.float32
    assert ids.tolist() == list(range(3000))
    assert half.nbytes * 2 == full.nbytes
    np.testing.assert_allclose(full, unit_rows(vectors), atol=1e-6)
    cosine = (half.astype(np.float32) * full).sum(axis=1) / np.linalg.norm(
        half.astype(np.float32), axis=1
    )
    assert cosine.min() >= 0.9999
    exact, _ = neighbour_graph(full, 10)
    rounded, _ = neighbour_graph(half, 10)
    same = np.mean([set(a) == set(b) for a, b in zip(exact, rounded, strict=True)])
    assert same >= 0.99, same


def test_duplicates_and_uniqueness_share_one_neighbour_search(ws: Workspace) -> None:
    vectors = clustered_vectors(600, 64, seed=5)
    vectors[500:520] = vectors[:20] + 1e-4  # planted near-copies
    _dataset(ws, vectors)
    ds = ws.dataset("big")
    first = ds.find_duplicates(MODEL, 0.999, wait=True)["result"]
    assert first["neighbours_reused"] is False
    assert first["near_pairs"] >= 20
    unique = ds.compute_uniqueness(MODEL, k=5, wait=True)["result"]
    assert unique["neighbours_reused"] is True
    scores_reused = dict(zip(*_scores(ws), strict=True))
    # The same scores as a search of its own (the graph's file removed).
    for kept in (ws.settings.home / "indexes").rglob("*.graph.npz"):
        kept.unlink()
    fresh = ds.compute_uniqueness(MODEL, k=5, wait=True)["result"]
    assert fresh["neighbours_reused"] is False
    assert dict(zip(*_scores(ws), strict=True)) == scores_reused
    # More neighbours than the graph keeps: searched again; new vectors make it stale.
    assert ds.compute_uniqueness(MODEL, k=30, wait=True)["result"]["neighbours_reused"] is False
    assert ds.find_duplicates(MODEL, 0.999, wait=True)["result"]["neighbours_reused"] is True
    vector_rows.write_batch(
        ws.store, ds.id, MODEL, np.arange(590, 600), vectors[590:600] * 2, [], job_id=None,
        replace=True,
    )  # fmt: skip
    again = ds.find_duplicates(MODEL, 0.999, wait=True)["result"]
    assert again["neighbours_reused"] is False


def _scores(ws: Workspace) -> tuple[list[int], list[float]]:
    from visor.store import analyses as analysis_rows

    ids, scores = analysis_rows.uniqueness_scores(ws.store, ws.dataset("big").id)
    return ids.tolist(), np.round(scores, 6).tolist()


def test_planted_pairs_found_through_the_ivf_graph(ws: Workspace) -> None:
    n = EXACT_GRAPH_LIMIT + 2000  # past the exact limit: IVF in float16
    rng = np.random.default_rng(6)
    vectors = clustered_vectors(n, 96, seed=6)
    originals = rng.choice(n - 300, 300, replace=False)
    copies = np.arange(n - 300, n)
    unit = unit_rows(vectors)
    vectors[copies] = unit[originals] + rng.standard_normal((300, 96)).astype(np.float32) * 0.002
    _dataset(ws, vectors)
    ds = ws.dataset("big")
    result = ds.find_duplicates(MODEL, 0.99, wait=True)["result"]
    groups = {g["group"]: {s["sample_id"] for s in g["samples"]} for g in _all_groups(ds)}
    together = sum(
        any({int(a), int(b)} <= members for members in groups.values())
        for a, b in zip(originals, copies, strict=True)
    )
    assert together / 300 >= 0.99, (together, result["near_pairs"])


def _all_groups(ds):  # type: ignore[no-untyped-def]
    page = ds.duplicates(limit=1000)
    groups = page["groups"]
    while len(groups) < page["total"]:
        groups += ds.duplicates(offset=len(groups), limit=1000)["groups"]
    return groups
