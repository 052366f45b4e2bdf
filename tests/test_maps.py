"""Maps: the layouts themselves, the map job, and the binary points API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from conftest import Server, ingest, wait_job
from sklearn.manifold import trustworthiness

from visor.errors import InvalidInput
from visor.services.maps import cached_points, check_params, compute_map, points_stream
from visor.store import maps as map_rows
from visor.workspace import Workspace

TINY = "random:dinov2-tiny"


def _clusters(n_per: int = 150, k: int = 6, d: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d))
    return np.concatenate([c + 0.3 * rng.normal(size=(n_per, d)) for c in centers]).astype(
        np.float32
    )


def test_umap_is_trustworthy_and_reproducible_with_a_seed() -> None:
    x = _clusters()
    params = check_params("umap", {"random_state": "7"})
    a = compute_map(x, "umap", params)
    assert a.shape == (len(x), 2) and a.dtype == np.float32 and np.isfinite(a).all()
    assert trustworthiness(x, a, n_neighbors=5) >= 0.9
    np.testing.assert_array_equal(a, compute_map(x, "umap", params))


def test_umaps_compiled_code_is_kept_on_disk() -> None:
    """UMAP's numba functions are compiled once on a machine and read from numba's cache after
    (each `visor map` without a server is a new process, which compiled them all again: 13.6
    of a 98-point map's 16.7 s on 2 cores)."""
    import umap

    compute_map(_clusters(n_per=20, k=2, d=16), "umap", check_params("umap", {}))
    for used in (
        umap.umap_.smooth_knn_dist,
        umap.layouts._nb_optimize_layout_euclidean_single_epoch,
    ):
        stats = used.stats
        assert stats.cache_path is not None and Path(stats.cache_path).is_dir()
        assert sum(stats.cache_hits.values()) + sum(stats.cache_misses.values()) > 0


def test_a_layout_fitted_on_a_sample_places_every_point() -> None:
    """Above `fit_sample` points UMAP is fitted on a seeded sample and the rest placed among
    their nearest fitted points: every point gets a finite place, each placed point lands in
    its own cluster's region (its nearest fitted point in 2-D is of its cluster), the map is
    as trustworthy as the full fit within 0.01, and the same seed gives the same map."""
    x = _clusters(n_per=300)  # 1,800 points in 6 clusters
    truth = np.repeat(np.arange(6), 300)
    full = compute_map(x, "umap", check_params("umap", {"random_state": 3}))
    params = check_params("umap", {"random_state": 3, "fit_sample": 1000})
    sampled = compute_map(x, "umap", params)
    assert sampled.shape == (len(x), 2) and np.isfinite(sampled).all()
    np.testing.assert_array_equal(sampled, compute_map(x, "umap", params))
    fitted = np.sort(np.random.default_rng(3).choice(len(x), 1000, replace=False))
    placed = np.setdiff1d(np.arange(len(x)), fitted)
    gaps = np.linalg.norm(sampled[placed][:, None] - sampled[fitted][None], axis=2)
    nearest = fitted[gaps.argmin(axis=1)]
    assert (truth[nearest] == truth[placed]).mean() >= 0.99
    full_trust = trustworthiness(x, full, n_neighbors=10)
    assert trustworthiness(x, sampled, n_neighbors=10) >= full_trust - 0.01


def test_pca_and_tsne_maps() -> None:
    x = _clusters(n_per=60)
    for method in ("pca", "tsne"):
        xy = compute_map(x, method, check_params(method, {"random_state": 1}))
        assert xy.shape == (len(x), 2) and np.isfinite(xy).all()
        assert trustworthiness(x, xy, n_neighbors=5) >= 0.9, method


def test_bad_map_requests_are_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="method 'mds'"):
        check_params("mds", {})
    with pytest.raises(InvalidInput, match="'perplexity' is not a umap parameter"):
        check_params("umap", {"perplexity": 5})
    with pytest.raises(InvalidInput, match="n_neighbors=1"):
        check_params("umap", {"n_neighbors": 1})
    with pytest.raises(InvalidInput, match="expected int"):
        check_params("umap", {"n_neighbors": "many"})
    with pytest.raises(InvalidInput, match="at least 3 embedded samples; this dataset has 2"):
        compute_map(_clusters()[:2], "umap", check_params("umap", {}))
    bad = _clusters(n_per=5)
    bad[3, 7] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        compute_map(bad, "pca", check_params("pca", {}))
    # Very small datasets still get a map.
    assert compute_map(_clusters(n_per=1, k=4), "umap", check_params("umap", {})).shape == (4, 2)


def test_map_job_and_binary_points(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url, timeout=300) as c:
        r = c.post("/api/ingest", json={"name": "s", "path": str(demo_root)})
        assert r.status_code == 202
        wait_job(c, c.get("/api/jobs").json()[0]["id"])
        r = c.post("/api/datasets/s/map", json={"model": TINY})
        assert r.status_code == 409 and "run embed first" in r.json()["error"]["message"]
        job = c.post("/api/datasets/s/embed", json={"model": TINY}).json()
        assert wait_job(c, job["id"])["state"] == "done"
        r = c.post("/api/datasets/s/map", json={"model": TINY, "params": {"bogus": 1}})
        assert r.status_code == 422 and "bogus" in r.json()["error"]["message"]

        body = {"model": TINY, "method": "umap", "params": {"random_state": 0}}
        job = c.post("/api/datasets/s/map", json=body).json()
        done = wait_job(c, job["id"], timeout=300)
        assert done["state"] == "done", done
        (summary,) = c.get("/api/datasets").json()
        assert summary["vectors"] == {TINY: 40} and summary["maps"] == 1
        (listed,) = c.get("/api/datasets/s/maps").json()
        assert listed["is_default"] and listed["num_points"] == 40 and listed["model"] == TINY
        assert listed["params"]["random_state"] == 0

        r = c.get("/api/datasets/s/maps/default/points")
        assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
        table = pa.ipc.open_stream(r.content).read_all()
        assert table.column("sample_id").to_pylist() == list(range(40))
        assert table.schema.field("x").type == pa.float32()
        xy = np.stack([table.column("x").to_numpy(), table.column("y").to_numpy()], 1)
        assert np.isfinite(xy).all()

        legend = json.loads(table.schema.metadata[b"visor:legend"])
        sample = c.get("/api/datasets/s/samples/5").json()
        code = table.column("class")[5].as_py()
        assert legend["class"][code] == (sample["classes"][0] if sample["classes"] else None)
        assert legend["split"][table.column("split")[5].as_py()] == sample["split"]
        assert set(table.column("tag").to_pylist()) == {0} and legend["tag"] == [None]
        c.post("/api/datasets/s/tag", json={"ids": [5], "tags": ["review", "blurry"]})
        again = pa.ipc.open_stream(c.get("/api/datasets/s/maps/default/points").content)
        tagged = again.read_all()
        tag_legend = json.loads(tagged.schema.metadata[b"visor:legend"])["tag"]
        assert tag_legend[tagged.column("tag")[5].as_py()] == "blurry"  # the first, sorted
        assert tagged.column("tag")[4].as_py() == 0
        assert c.get("/api/datasets/s/maps/99/points").status_code == 404


def test_map_points_are_encoded_ahead_and_follow_tag_changes(
    workspace: Workspace, demo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(workspace, demo_root)
    dataset = workspace.dataset("ds")
    dataset.embed(TINY, wait=True)
    dataset.make_map(TINY, method="pca", uniqueness=False, wait=True)
    (made,) = dataset.maps()
    cache = workspace.engine.points
    key = (dataset.id, made["id"], cache.version(dataset.id)[0])
    assert cache.get(key) is None  # not serving: nothing encoded ahead
    workspace.warm_points()  # what a server does when it starts
    kept = cache.get(key)
    assert kept is not None
    assert cached_points(workspace.store, cache, dataset.row, None) == (kept[1], 40)

    def made_anew() -> bytes:
        return points_stream(map_rows.points(workspace.store, dataset.id, made["id"]))

    # A tag edit changes the points' tag codes: the kept bytes are no longer served, and the
    # new ones are made from them with only the tags read again, equal to points made anew.
    read = map_rows.points
    reads: list[int] = []
    monkeypatch.setattr(map_rows, "points", lambda *a, **k: reads.append(1) or read(*a, **k))
    dataset.add_tags([3], ["odd"])
    dataset.add_tags([5, 7], ["a-tag"])
    now = (dataset.id, made["id"], cache.version(dataset.id)[0])
    assert now != key and cache.get(now) is None
    fresh, _ = cached_points(workspace.store, cache, dataset.row, None)
    assert reads == []
    table = pa.ipc.open_stream(fresh).read_all()
    legend = json.loads(table.schema.metadata[b"visor:legend"])
    assert legend["tag"] == [None, "a-tag", "odd"]
    ids, codes = table.column("sample_id").to_pylist(), table.column("tag").to_pylist()
    tags = dict(zip(ids, codes, strict=True))
    assert [legend["tag"][tags[i]] for i in range(3, 8)] == ["odd", None, "a-tag", None, "a-tag"]
    assert fresh == made_anew() and reads == [1]
    # A write of labels drops them: made anew, whole.
    dataset.edits.relabel("circle", "disc")
    reads.clear()
    relabelled, _ = cached_points(workspace.store, cache, dataset.row, None)
    assert reads == [1] and relabelled != fresh
    legend = json.loads(pa.ipc.open_stream(relabelled).read_all().schema.metadata[b"visor:legend"])
    assert "disc" in legend["class"] and "circle" not in legend["class"]
