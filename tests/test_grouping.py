"""Near-duplicate groups that do not chain, look-alike clusters beside them, and a threshold
that fits the model: on vectors built so the answer is known, written into a real store for
real images, and through the real duplicates job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import ingest, photo, run_cli

from visor.config import Settings
from visor.services.grouping import default_threshold, duplicate_groups
from visor.store import embeddings as vector_rows
from visor.workspace import Workspace

MODEL = "made-up-v1"  # not a registered model, not random weights


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _chain_and_cluster(dim: int = 32) -> np.ndarray:
    """Rows 0-3: a chain a~b~c~d, each neighbour at cosine ~0.985, a-d at ~0.87. Rows 4-8: a
    tight cluster of 5 (all pairs > 0.99). Row 9 on its own; rows 10-19 spread far apart."""
    rng = np.random.default_rng(7)
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0].T.astype(np.float32)
    angle = np.radians(10)  # 10 degrees between neighbours of the chain: cos 0.985
    chain = [np.cos(i * angle) * basis[0] + np.sin(i * angle) * basis[1] for i in range(4)]
    cluster = [basis[2] + 0.05 * basis[3 + i] for i in range(5)]
    alone = [basis[8]]
    spread = [basis[9 + i] for i in range(10)]
    return _unit(np.stack(chain + cluster + alone + spread))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(20):  # different sizes: the larger one of a group is kept
        photo(i).resize((320 - i, 240)).save(root / f"p{i:02d}.png")
    return root


def _with_vectors(workspace: Workspace, root: Path, vectors: np.ndarray, name: str = "ds") -> None:
    ingest(workspace, root, name)
    ds = workspace.dataset(name)
    vector_rows.ensure_model(workspace.store, MODEL, vectors.shape[1])
    ids = np.arange(len(vectors))
    vector_rows.write_batch(
        workspace.store, ds.id, MODEL, ids, vectors, [], job_id=None, replace=True
    )


def _groups(ds) -> set[frozenset[str]]:  # type: ignore[no-untyped-def]
    return {frozenset(s["path"] for s in g["samples"]) for g in ds.duplicates()["groups"]}


def test_a_chain_never_puts_its_ends_in_one_group(workspace: Workspace, photos: Path) -> None:
    vectors = _chain_and_cluster()
    assert float(vectors[0] @ vectors[3]) < 0.9 < 0.98 < float(vectors[0] @ vectors[1])
    _with_vectors(workspace, photos, vectors)
    ds = workspace.dataset("ds")
    job = ds.find_duplicates(MODEL, 0.98, wait=True)
    groups = _groups(ds)
    # p00 (largest) keeps p01; p02 then keeps p03; a and d are never together.
    assert frozenset({"p00.png", "p01.png"}) in groups
    assert frozenset({"p02.png", "p03.png"}) in groups
    assert not any({"p00.png", "p03.png"} <= g for g in groups)
    # The tight cluster of 5 is one group, the lone vector none.
    assert frozenset(f"p{i:02d}.png" for i in range(4, 9)) in groups
    assert len(groups) == 3 and job["result"]["removable"] == 1 + 1 + 4
    # The chain is one look-alike cluster (shown as a cluster, never as removable).
    found = ds.duplicates()
    clusters = {frozenset(s["path"] for s in c["samples"]) for c in found["lookalikes"]}
    assert frozenset(f"p{i:02d}.png" for i in range(4)) in clusters
    assert job["result"]["lookalike_clusters"] == 2
    assert "removable" not in found["lookalikes"][0]


def test_every_member_is_within_the_threshold_of_its_representative(
    workspace: Workspace, photos: Path
) -> None:
    rng = np.random.default_rng(1)
    centre = rng.standard_normal(32)
    vectors = _unit(centre + 0.35 * rng.standard_normal((20, 32)))
    _with_vectors(workspace, photos, vectors)
    ds = workspace.dataset("ds")
    ds.find_duplicates(MODEL, 0.93, wait=True)
    found = ds.duplicates(limit=100)["groups"]
    assert found, "the vectors were built to have groups at 0.93"
    for group in found:
        rows = [int(s["path"][1:3]) for s in group["samples"]]
        kept = min(rows)  # the largest image of the group: the representative
        assert all(float(vectors[kept] @ vectors[r]) >= 0.93 - 1e-6 for r in rows)


def test_the_result_does_not_depend_on_sample_order() -> None:
    rng = np.random.default_rng(2)
    n = 200
    pairs = np.unique(np.sort(rng.integers(0, n, (300, 2)), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    preference = rng.permutation(n)
    groups = duplicate_groups(n, pairs, preference)
    shuffle = rng.permutation(n)  # the same graph and preference under new row numbers
    moved = np.empty(n, np.int64)
    moved[shuffle] = np.arange(n)
    again = duplicate_groups(n, moved[pairs][rng.permutation(len(pairs))], moved[preference])
    grouped = groups >= 0  # row r is row moved[r] now: same groups, same representatives
    assert ((again >= 0)[moved] == grouped).all()
    assert (again[moved[grouped]] == moved[groups[grouped]]).all()


def test_exact_copies_are_exact_groups_and_removal_counts_planted_copies(
    workspace: Workspace, photos: Path
) -> None:
    """3 planted near-copies and 2 byte copies among 22 images: 5 could go, no more."""
    (photos / "copy_of_p10.png").write_bytes((photos / "p10.png").read_bytes())
    (photos / "copy_of_p11.png").write_bytes((photos / "p11.png").read_bytes())
    rng = np.random.default_rng(3)
    base = _unit(rng.standard_normal((20, 64)))
    for original in range(3):  # p17..p19 become near-copies of p00..p02
        base[17 + original] = _unit((base[original] + 0.03 * rng.standard_normal(64))[None])[0]
    ingest(workspace, photos)
    ds = workspace.dataset("ds")
    paths = {s["path"]: s["id"] for s in ds.samples(limit=100)[1]}
    vectors = np.zeros((len(paths), 64), np.float32)
    for path, sample_id in paths.items():
        vectors[sample_id] = base[int(path.removeprefix("copy_of_")[1:3])]
    vector_rows.ensure_model(workspace.store, MODEL, 64)
    vector_rows.write_batch(
        workspace.store, ds.id, MODEL, np.arange(len(paths)), vectors, [], job_id=None, replace=True
    )
    job = ds.find_duplicates(MODEL, 0.95, wait=True)["result"]
    assert job["groups"] == 5 and job["exact_groups"] == 2 and job["removable"] == 5
    exact = [g for g in ds.duplicates()["groups"] if g["exact"]]
    assert {frozenset(s["path"] for s in g["samples"]) for g in exact} == {
        frozenset({"p10.png", "copy_of_p10.png"}),
        frozenset({"p11.png", "copy_of_p11.png"}),
    }
    assert "threshold_warning" not in job


def test_the_default_threshold_fits_the_model() -> None:
    nearest = np.full(1000, 0.8) + np.linspace(-0.05, 0.05, 1000)
    assert default_threshold("dinov2-base", nearest) == (0.95, "calibrated for dinov2-base")
    value, rule = default_threshold("made-up-v1", nearest)
    assert 0.8 < value < 0.95 and "median 0.8000" in rule
    value, _ = default_threshold("random:dinov2-small", np.full(100, 0.99995))
    assert value == 0.9999  # capped: random weights put everything near 1


def test_cli_shows_the_similarity_distribution_threshold_and_warns_when_too_low(
    tmp_path: Path, photos: Path
) -> None:
    home = tmp_path / "home"
    rng = np.random.default_rng(1)  # one homogeneous scene: every image like every other
    with Workspace(Settings(home=home)) as ws:
        _with_vectors(
            ws, photos, _unit(rng.standard_normal(32) + 0.35 * rng.standard_normal((20, 32)))
        )
    done = run_cli(home, "duplicates", "ds")
    assert done.returncode == 0, done.stderr
    assert "nearest-neighbour similarity of 20 samples: 1% " in done.stdout
    assert "from this dataset's nearest-neighbour similarities: median" in done.stdout
    done = run_cli(home, "duplicates", "ds", "--threshold", "0.5")
    assert "threshold 0.5 (given)" in done.stdout
    assert "the threshold is probably too low for made-up-v1" in done.stdout
    assert "look-alike clusters" in done.stdout
    with Workspace(Settings(home=home)) as ws:
        run = ws.dataset("ds").duplicates()["run"]
    histogram = run["summary"]["nearest_similarity"]["histogram"]
    assert sum(histogram["counts"]) == 20 and len(histogram["edges"]) == 41
