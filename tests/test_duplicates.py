"""Duplicates, uniqueness and the ANN index, on real files, a real store and a real server."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import Server, ingest, photo, run_cli, wait_job

from visor.errors import Conflict, InvalidInput
from visor.services.search import AnnIndex, VectorIndex, unit_rows
from visor.store import embeddings as vector_rows
from visor.store.samples import SampleFilter
from visor.synthetic import clustered_vectors
from visor.workspace import Workspace

TINY = "random:dinov2-tiny"
# Random weights make every image look alike (distinct photos reach cosine 0.998 here, copies
# stay above 0.9999), so the tests use a threshold above the trained-model default of 0.95.
THRESHOLD = 0.999


@pytest.fixture
def dups_root(tmp_path: Path) -> Path:
    """12 different photos, a byte-identical copy of one, a re-encoded copy of another, and a
    resized PNG plus a lower-quality JPEG of a third."""
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(12):
        photo(i).save(root / f"img{i:02d}.jpg", quality=95)
    shutil.copy(root / "img01.jpg", root / "same_as_01.jpg")
    photo(3).save(root / "reencoded_03.jpg", quality=70)
    photo(5).resize((300, 225)).save(root / "smaller_05.png")
    photo(5).save(root / "q80_05.jpg", quality=80)
    return root


def _ids(ws: Workspace) -> dict[str, int]:
    return {s["filename"]: s["id"] for s in ws.dataset("ds").samples(limit=100)[1]}


def _groups(found: dict) -> set[frozenset[str]]:
    return {frozenset(s["path"] for s in g["samples"]) for g in found["groups"]}


def test_duplicates_finds_exactly_the_copies(workspace: Workspace, dups_root: Path) -> None:
    ingest(workspace, dups_root)
    dataset = workspace.dataset("ds")
    # Exact copies need no vectors; only files whose size another file shares are read.
    job = dataset.find_duplicates(exact_only=True, wait=True)
    assert job["result"]["groups"] == 1 and job["result"]["hashed"] < 16
    assert _groups(dataset.duplicates()) == {frozenset({"img01.jpg", "same_as_01.jpg"})}
    assert dataset.duplicates()["groups"][0]["exact"] is True

    with pytest.raises(Conflict, match="run embed first"):
        dataset.find_duplicates(TINY, THRESHOLD)
    dataset.embed(TINY, wait=True)
    job = dataset.find_duplicates(TINY, THRESHOLD, wait=True)
    assert job["state"] == "done", job
    found = dataset.duplicates()
    assert _groups(found) == {
        frozenset({"img01.jpg", "same_as_01.jpg"}),
        frozenset({"img03.jpg", "reencoded_03.jpg"}),
        frozenset({"img05.jpg", "smaller_05.png", "q80_05.jpg"}),
    }
    assert found["total"] == 3 and found["groups"][0]["size"] == 3  # largest first
    assert [g["exact"] for g in found["groups"]].count(True) == 1
    assert found["run"]["params"] == {"model": TINY, "threshold": THRESHOLD}
    # Random weights: no removal advice, and a warning (the groups show the mechanics).
    assert job["result"]["removable"] is None and "random weights" in job["result"]["warning"]

    ids = _ids(workspace)
    group = dataset.sample(ids["img03.jpg"])["duplicate_group"]
    assert group is not None and dataset.sample(ids["img04.jpg"])["duplicate_group"] is None
    total, items = dataset.samples(SampleFilter(duplicate_group=group))
    assert total == 2 and {s["filename"] for s in items} == {"img03.jpg", "reencoded_03.jpg"}
    assert dataset.samples(SampleFilter(has_duplicates=False))[0] == 16 - 7
    # A copy is its original's nearest neighbour.
    assert (
        dataset.similar(ids["img03.jpg"], k=1, model=TINY)[0]["sample_id"]
        == ids["reencoded_03.jpg"]
    )
    # A lower threshold than any pair reaches joins more; a run replaces the groups.
    dataset.find_duplicates(TINY, 0.5, wait=True)
    assert dataset.duplicates()["groups"][0]["size"] > 3
    with pytest.raises(InvalidInput, match="threshold: Input should be less than or equal to 1"):
        dataset.find_duplicates(TINY, 1.5)


def test_uniqueness_scores_copies_low(workspace: Workspace, dups_root: Path) -> None:
    ingest(workspace, dups_root)
    dataset = workspace.dataset("ds")
    dataset.embed(TINY, wait=True)
    job = dataset.compute_uniqueness(TINY, k=1, wait=True)
    assert job["result"]["samples"] == 16
    _, items = dataset.samples(limit=100, sort="uniqueness", descending=True)
    scores = {s["filename"]: s["uniqueness"] for s in items}
    assert all(0.0 <= u <= 1.0 for u in scores.values()) and max(scores.values()) == 1.0
    copies = ["img01.jpg", "same_as_01.jpg", "img03.jpg", "reencoded_03.jpg", "img05.jpg"]
    alone = [f for f in scores if f.startswith("img") and f not in copies]
    # With k=1, a sample with a copy is 0.0001 away from its nearest; the rest much further.
    assert max(scores[f] for f in copies) < 0.1 < min(scores[f] for f in alone)
    assert [s["uniqueness"] for s in items] == sorted(scores.values(), reverse=True)
    total, _ = dataset.samples(SampleFilter(uniqueness_min=0.1))
    assert total == len([u for u in scores.values() if u >= 0.1])
    with pytest.raises(InvalidInput, match="k: Input should be greater than or equal to 1"):
        dataset.compute_uniqueness(TINY, k=0)


def test_too_few_vectors_is_a_clear_error(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "one"
    root.mkdir()
    photo(0).save(root / "a.jpg")
    ingest(workspace, root)
    dataset = workspace.dataset("ds")
    dataset.embed(TINY, wait=True)
    job = workspace.jobs.wait(dataset.compute_uniqueness(TINY)["id"])
    assert job["state"] == "failed" and "at least 2 embedded samples" in job["error"]
    done = dataset.find_duplicates(TINY, THRESHOLD, wait=True)  # nothing to group, no crash
    assert done["result"]["groups"] == 0


def test_vectors_with_nan_are_refused(workspace: Workspace, dups_root: Path) -> None:
    ingest(workspace, dups_root)
    store = workspace.store
    vector_rows.ensure_model(store, "m", 4)
    bad = np.array([[1, 0, 0, 0], [np.nan, 0, 0, 0], [np.inf, 1, 0, 0]], dtype=np.float32)
    with pytest.raises(InvalidInput, match=r"NaN or infinite .*\[1, 2\]"):
        vector_rows.write_batch(
            store, 1, "m", np.array([0, 1, 2]), bad, [], job_id=None, replace=False
        )
    assert vector_rows.version(store, 1, "m") == (0, -1)  # nothing of the batch was written


def test_ann_agrees_with_exact_search() -> None:
    """Top-10 neighbours of 200 queries over 20K synthetic 768-d vectors: the IVF index and
    exact search agree on at least 95% (with and without a filter)."""
    vectors = clustered_vectors(20_000, 768, seed=7)
    ids = np.arange(20_000, dtype=np.int64) * 2 + 1  # sample ids are not row numbers
    exact = VectorIndex.from_vectors(ids, vectors)
    ann = AnnIndex.build(ids, unit_rows(vectors), {})
    queries = np.random.default_rng(1).choice(ids, 200, replace=False)
    every_third = ids[::3]
    for allowed in (None, every_third):
        overlap = []
        for sample_id in queries.tolist():
            q = exact.vector_of(sample_id)
            assert q is not None
            truth = {i for i, _ in exact.query(q, 10, exclude=sample_id, allowed=allowed)}
            found = ann.query(q, 10, exclude=sample_id, allowed=allowed)
            assert sample_id not in {i for i, _ in found}
            if allowed is not None:
                assert {i for i, _ in found} <= set(allowed.tolist())
            overlap.append(len(truth & {i for i, _ in found}) / 10)
        assert np.mean(np.asarray(overlap) == 1.0) >= 0.95, np.mean(overlap)


def test_ann_index_is_built_kept_and_rebuilt(settings, dups_root: Path, tmp_path: Path) -> None:
    """From `ann_min_vectors` up, embedding builds an index on disk; searches use it while it
    matches the vectors; new vectors make a new index, and a stale one is never used."""
    ann_settings = settings.model_copy(update={"ann_min_vectors": 10})
    with Workspace(ann_settings) as ws:
        ingest(ws, dups_root)
        dataset = ws.dataset("ds")
        job = dataset.embed(TINY, wait=True)
        first = ws.jobs.wait(job["result"]["index_job"])
        assert first["state"] == "done" and first["result"]["vectors"] == 16
        status = dataset.index_status(TINY)
        assert status["search"] == "ann" and status["index_current"]
        (stored,) = settings.home.glob("indexes/*/*.faiss")
        ids = _ids(ws)
        found = dataset.similar(ids["img03.jpg"], k=3, model=TINY)
        assert found[0]["sample_id"] == ids["reencoded_03.jpg"]
        filtered = dataset.similar(
            ids["img03.jpg"], k=20, model=TINY, filters=SampleFilter(filename="img")
        )
        assert {f["path"][:3] for f in filtered} == {"img"} and len(filtered) == 11

        old = tmp_path / "old"
        old.mkdir()
        for f in stored.parent.iterdir():
            shutil.copy(f, old / f.name)
        job = dataset.embed(TINY, recompute=True, wait=True)  # new vectors: a new index
        second = ws.jobs.wait(job["result"]["index_job"])
        assert second["result"]["version"] != first["result"]["version"]
        assert dataset.index_status(TINY)["index_current"]
        for f in old.iterdir():  # put the old index back: stale on disk
            shutil.copy(f, stored.parent / f.name)
    with Workspace(ann_settings) as ws:
        dataset = ws.dataset("ds")
        assert dataset.index_status(TINY)["search"] == "exact"
        found = dataset.similar(ids["img03.jpg"], k=3, model=TINY)  # exact meanwhile
        assert found[0]["sample_id"] == ids["reencoded_03.jpg"]
        (rebuild,) = ws.jobs.list(dataset="ds", kind="index")[:1]
        assert ws.jobs.wait(rebuild["id"])["state"] == "done"
        assert dataset.index_status(TINY)["search"] == "ann"
        dataset.delete()
    assert not list(settings.home.glob("indexes/*/*.faiss"))


def test_duplicates_and_uniqueness_over_http_and_cli(server_home: Path, dups_root: Path) -> None:
    assert run_cli(server_home, "ingest", str(dups_root), "--name", "ds").returncode == 0
    done = run_cli(server_home, "duplicates", "ds", "--exact-only")
    assert done.returncode == 0, done.stderr
    assert "1 duplicate groups (1 exact)" in done.stdout and "same_as_01.jpg" in done.stdout
    server = Server(server_home).start()
    try:
        with httpx.Client(headers=server.headers, base_url=server.url, timeout=60) as client:
            assert client.post("/api/datasets/ds/duplicates", json={}).status_code == 409
            bad = client.post("/api/datasets/ds/duplicates", json={"threshold": 2})
            assert (
                bad.status_code == 422
                and "threshold: Input should be less than or equal to 1"
                in bad.json()["error"]["message"]
            )
            assert client.post("/api/datasets/nope/duplicates", json={}).status_code == 404
            job = client.post("/api/datasets/ds/embed", json={"model": TINY})
            wait_job(client, job.json()["id"])
            job = client.post(
                "/api/datasets/ds/duplicates", json={"model": TINY, "threshold": THRESHOLD}
            )
            assert job.status_code == 202
            assert wait_job(client, job.json()["id"])["state"] == "done"
            groups = client.get("/api/datasets/ds/duplicates").json()
            assert groups["total"] == 3 and groups["groups"][0]["size"] == 3
            group = groups["groups"][0]["group"]
            page = client.get("/api/datasets/ds/samples", params={"duplicate_group": group})
            assert {s["filename"] for s in page.json()["items"]} == {
                "img05.jpg",
                "smaller_05.png",
                "q80_05.jpg",
            }
            job = client.post("/api/datasets/ds/uniqueness", json={"model": TINY, "k": 2})
            assert wait_job(client, job.json()["id"])["state"] == "done"
            page = client.get(
                "/api/datasets/ds/samples", params={"sort": "uniqueness", "order": "desc"}
            ).json()
            assert page["items"][0]["uniqueness"] == 1.0
            assert client.post("/api/datasets/ds/uniqueness", json={"k": 0}).status_code == 422
            status = client.get("/api/datasets/ds/index", params={"model": TINY}).json()
            assert status["search"] == "exact" and status["vectors"] == 16
    finally:
        server.stop()
    done = run_cli(server_home, "uniqueness", "ds", "--model", TINY)
    assert done.returncode == 0 and "uniqueness of 16 samples" in done.stdout


def test_closest_pairs_are_listed_when_no_group_stands_out(workspace: Workspace) -> None:
    """On the YOLO corpus (7 tiles of 3 photos across train/val/test): at a threshold no pair
    reaches, no group, but the closest pairs are listed, those across splits first, each
    part in the order of the exact similarities."""
    ingest(workspace, Path(__file__).parent / "data" / "yolo_roboflow_trees", "ds")
    dataset = workspace.dataset("ds")
    dataset.embed(TINY, precision="fp32", wait=True)
    result = dataset.find_duplicates(TINY, threshold=1.0, wait=True)["result"]
    assert result["groups"] == 0
    pairs = dataset.duplicates()["closest_pairs"]
    ids, vectors = dataset.embeddings(TINY)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    split = {s["id"]: s["split"] for s in dataset.samples(limit=10)[1]}
    exact = {
        (int(ids[i]), int(ids[j])): float(unit[i] @ unit[j])
        for i in range(len(ids))
        for j in range(i + 1, len(ids))
    }
    # 7 samples, 6 neighbours each: all 21 pairs are in the graph; the list keeps 20, the 14
    # across splits (train 4, val 2, test 1) first, then the 6 closest within a split.
    assert len(exact) == 21 and len(pairs) == 20
    cross = [p for p in pairs if p["cross_split"]]
    assert pairs[:14] == cross and sum(split[a] != split[b] for a, b in exact) == 14
    for part in (cross, pairs[len(cross) :]):
        expected = sorted(
            (k for k in exact if (split[k[0]] != split[k[1]]) == (part is cross)),
            key=lambda k: -exact[k],
        )
        assert [(p["a"], p["b"]) for p in part] == expected[: len(part)]
        assert all(abs(p["similarity"] - exact[(p["a"], p["b"])]) < 1e-4 for p in part)
    assert all(p["paths"][0] and p["splits"] == [split[p["a"]], split[p["b"]]] for p in pairs)
