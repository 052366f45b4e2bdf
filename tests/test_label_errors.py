"""Likely label errors: cleanlab over out-of-sample neighbour probabilities. The ranking is
tested on vectors built so the answer is known (the corpus's tree crops with planted label
flips and class-clustered vectors); the mechanics on the corpus with random weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import Server, ingest, run_cli
from playwright.sync_api import Browser, expect

from visor.quality.labels import label_issues, neighbour_probabilities
from visor.services.search import neighbour_graph, unit_rows
from visor.store import embeddings as vector_rows
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"
CLASSES = ["Alive", "Dead", "Tree"]


def test_planted_flips_rank_lowest_and_get_their_class_back() -> None:
    rng = np.random.default_rng(1)
    k, n = 4, 1200
    centres = rng.normal(size=(k, 32)) * 3
    true = rng.integers(0, k, n)
    vectors = (centres[true] + rng.normal(size=(n, 32))).astype(np.float32)
    given = true.copy()
    flipped = rng.choice(n, 60, replace=False)  # 5%
    given[flipped] = (true[flipped] + 1) % k
    neighbours, similarities = neighbour_graph(unit_rows(vectors), 10)
    assert (neighbours != np.arange(n)[:, None]).all()  # nobody votes for itself
    probabilities = neighbour_probabilities(neighbours, similarities, given, k)
    found = label_issues(given, probabilities)
    # cleanlab got these arrays: its self-confidence is the probability of the given label.
    np.testing.assert_allclose(found.quality, probabilities[np.arange(n), given], rtol=1e-6)
    lowest = set(np.argsort(found.quality, kind="stable")[:60].tolist())
    assert len(lowest & set(flipped.tolist())) >= 57  # recall@60 ≥ 95%
    flagged = np.flatnonzero(found.issue)
    assert set(flagged.tolist()) <= set(flipped.tolist())  # no clean label flagged
    assert len(flagged) >= 50
    assert (found.suggested[flipped] == true[flipped]).mean() >= 0.95


def flipped_corpus(root: Path, count: int = 5) -> tuple[Path, dict[str, str]]:
    """The class-folder corpus with `count` training images moved to the next class's
    folder: their file names and the class they really are."""
    shutil.copytree(DATA / "classification_trees", root)
    moved = {}
    images = sorted((root / "train" / "Tree").glob("*.jpg"))[:count]
    for image in images:
        target = root / "train" / "Dead" / image.name
        image.rename(target)
        moved[image.name] = "Tree"
    return root, moved


def write_known_vectors(ds, moved: dict[str, str]) -> None:
    """A 16-d vector per crop near its true class's centre, as model "known"."""
    _, samples = ds.samples(limit=1000)
    rng = np.random.default_rng(0)
    centres = {c: rng.normal(size=16) * 4 for c in CLASSES}
    ids, vectors = [], []
    for sample in samples:
        (label,) = ds.labels(sample["id"])
        ids.append(sample["id"])
        vectors.append(centres[moved.get(sample["filename"], label["class"])] + rng.normal(size=16))
    vector_rows.ensure_model(ds._runner.engine.store, "known", 16)
    vector_rows.write_batch(
        ds._runner.engine.store,
        ds.id,
        "known",
        np.array(ids),
        np.array(vectors, np.float32),
        [],
        job_id=None,
        replace=False,
    )


def test_label_errors_on_the_corpus_with_known_vectors(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Vectors that place each crop by its true class: the moved crops are flagged, with
    their true class suggested; everything is stored per label and filterable."""
    root, moved = flipped_corpus(tmp_path / "trees")
    ingest(workspace, root, "trees")
    ds = workspace.dataset("trees")
    write_known_vectors(ds, moved)
    result = ds.find_label_errors("known", wait=True)["result"]
    assert result["scored"] == 98 and result["labels"] == 98
    assert "warning" not in result
    total, flagged = ds.samples(SampleFilter(label_issue=True), limit=100)
    names = {s["filename"] for s in flagged}
    # cleanlab's default filter (pruning by the estimated noise rate) is cautious with five
    # flips among 98 labels; it never flags a clean one here.
    assert names <= set(moved) and len(names) >= 3
    assert total == ds.label_errors()["flagged_samples"]
    _, worst = ds.samples(sort="label_quality", limit=len(moved))
    assert {s["filename"] for s in worst} == set(moved)
    one = next(s for s in flagged if s["filename"] in moved)
    (label,) = ds.labels(one["id"])
    assert label["class"] == "Dead"
    assert label["label_quality"]["issue"] is True
    assert label["label_quality"]["suggested"] == "Tree"
    report = {r["kind"]: r for r in ds.health()["rows"]}
    assert report["label_errors"]["count"] == total
    assert report["label_errors"]["filter"] == {"label_issue": True}


def test_random_weights_score_every_label_and_say_so(workspace: Workspace) -> None:
    ingest(workspace, DATA / "classification_trees", "trees")
    ds = workspace.dataset("trees")
    ds.embed("random:dinov2-tiny", precision="fp32", batch_size=16, quality=False, wait=True)
    result = ds.find_label_errors(wait=True)["result"]
    assert result["scored"] == 98 and result["model"] == "random:dinov2-tiny"
    assert "random weights" in result["warning"]
    assert "random weights" in ds.label_errors()["warning"]
    scored = workspace.store.query_one("SELECT count(*) FROM label_quality")[0]
    assert scored == 98


def test_what_label_errors_cannot_do_is_said_plainly(workspace: Workspace, tmp_path: Path) -> None:
    ingest(workspace, DATA / "labelimg_trees", "boxes")
    ds = workspace.dataset("boxes")
    ds.embed("random:dinov2-tiny", precision="fp32", quality=False, wait=True)
    job = ds.find_label_errors(wait=False)
    done = workspace.jobs.wait(job["id"])
    assert done["state"] == "failed" and "need a vector per box" in done["error"]
    # A class with one example is not scored, and said so.
    root = tmp_path / "lonely"
    shutil.copytree(DATA / "classification_trees", root)
    (root / "train" / "Rare").mkdir()
    shutil.copy(next((root / "train" / "Tree").glob("*.jpg")), root / "train" / "Rare" / "x.jpg")
    ingest(workspace, root, "lonely")
    lonely = workspace.dataset("lonely")
    lonely.embed("random:dinov2-tiny", precision="fp32", quality=False, wait=True)
    result = lonely.find_label_errors(wait=True)["result"]
    assert result["classes_with_one_example"] == ["Rare"] and result["scored"] == 98
    # No labels at all.
    plain = tmp_path / "plain"
    plain.mkdir()
    for image in sorted((DATA / "classification_trees" / "train" / "Tree").glob("*.jpg"))[:4]:
        shutil.copy(image, plain / image.name)
    ingest(workspace, plain, "plain")
    unlabelled = workspace.dataset("plain")
    unlabelled.embed("random:dinov2-tiny", precision="fp32", quality=False, wait=True)
    job = unlabelled.find_label_errors()
    done = workspace.jobs.wait(job["id"])
    assert done["state"] == "failed" and "has no labels: label errors do not apply" in done["error"]


def test_label_errors_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert (
        run_cli(home, "ingest", str(DATA / "classification_trees"), "--name", "t").returncode == 0
    )
    args = ("embed", "t", "--model", "random:dinov2-tiny", "--precision", "fp32", "--no-quality")
    assert run_cli(home, *args).returncode == 0
    done = run_cli(home, "label-errors", "t")
    assert done.returncode == 0, done.stderr
    assert "of 98 labels likely wrong" in done.stdout and "random weights" in done.stdout
    done = run_cli(home, "health", "t")
    assert "likely label errors" in done.stdout


def test_an_unknown_model_is_refused(workspace: Workspace) -> None:
    ingest(workspace, DATA / "classification_trees", "trees")
    with pytest.raises(Exception, match=r"no vectors|not embedded|nope"):
        workspace.dataset("trees").find_label_errors("nope")


def test_label_errors_in_the_ui(tmp_path: Path, browser: Browser) -> None:
    from visor.config import Settings

    home = tmp_path / "home"
    root, moved = flipped_corpus(tmp_path / "trees")
    ws = Workspace(Settings(home=home))
    ingest(ws, root, "trees")
    ds = ws.dataset("trees")
    write_known_vectors(ds, moved)
    flagged = ds.find_label_errors("known", wait=True)["result"]["flagged"]
    ws.close()
    server = Server(home).start()
    try:
        page = browser.new_context(
            viewport={"width": 1280, "height": 800}, locale="en-US"
        ).new_page()
        page.goto(f"{server.url}/?dataset=trees")
        page.get_by_label("likely label errors").check()
        expect(page.get_by_test_id("count")).to_have_text(f"{flagged} samples")
        assert "label_issue=1" in page.url
        page.get_by_test_id("grid").locator("img").first.click()
        note = page.get_by_test_id("label-quality")
        expect(note).to_contain_text("Labelled Dead; its neighbours say Tree")
        expect(note).to_contain_text("likely a label error")
        page.context.close()
    finally:
        server.stop()
