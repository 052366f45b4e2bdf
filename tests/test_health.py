"""The health report on the real tree crops with planted copies across splits: leaks counted
per split pair and filterable, outliers from the score distribution, image quality from the
embed job, duplicates; the CLI, the HTML report and HTTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import Server, ingest, run_cli
from playwright.sync_api import Browser, expect

import visor
from visor.config import Settings
from visor.services.grouping import outlier_threshold
from visor.store import embeddings as vector_rows
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"
MODEL = "random:dinov2-tiny"


def leaky_copy(root: Path) -> tuple[Path, list[str]]:
    """The class-folder corpus with 2 validation images copied, byte for byte, into train."""
    shutil.copytree(DATA / "classification_trees", root)
    copied = []
    for i, image in enumerate(sorted((root / "validate").rglob("*.jpg"))[:2]):
        target = root / "train" / image.parent.name / f"leaked_{i}.jpg"
        shutil.copy(image, target)
        copied.append(target.name)
    return root, copied


@pytest.fixture
def leaky(workspace: Workspace, tmp_path: Path) -> Workspace:
    root, _ = leaky_copy(tmp_path / "trees")
    ingest(workspace, root, "trees")
    ds = workspace.dataset("trees")
    ds.embed(MODEL, precision="fp32", batch_size=16, wait=True)
    ds.find_duplicates(exact_only=True, wait=True)
    ds.compute_uniqueness(wait=True)
    return workspace


def test_health_counts_leaks_outliers_quality_and_duplicates(leaky: Workspace) -> None:
    ds = leaky.dataset("trees")
    report = ds.health()
    rows = {r["kind"]: r for r in report["rows"]}
    assert report["samples"] == 100
    leaks = rows["leaks"]
    assert leaks["count"] == 4 and leaks["share"] == 0.04
    assert leaks["detail"] == {"groups": 2, "pairs": {"train / val": {"groups": 2, "samples": 4}}}
    total, found = ds.samples(SampleFilter(leaked=True), limit=10)
    assert total == 4 and {s["id"] for s in found} == set(leaks["examples"])
    assert {s["split"] for s in found} == {"train", "val"}
    assert rows["duplicates"]["count"] == 4 and rows["duplicates"]["filter"] == {
        "has_duplicates": True
    }
    outliers = rows["outliers"]
    assert "random:dinov2-tiny has random weights" in outliers["warning"]
    assert rows["leaks"]["warning"] is None  # exact copies: found by hashing, not by vectors
    assert report["notes"] == [outliers["warning"]] and outliers["note"] == 1  # said once
    assert "note" not in rows["leaks"]
    assert (
        outliers["count"]
        == ds.samples(SampleFilter(uniqueness_min=outliers["detail"]["threshold"]))[0]
    )
    # Image quality came with the embed job: the tree crops are small.
    assert rows["quality:tiny"]["count"] > 0
    assert rows["quality:tiny"]["filter"] == {"quality": "tiny"}


def test_outlier_threshold_comes_from_the_distribution() -> None:
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(0.3, 0.02, 1000), [0.9, 0.95]]
    threshold = outlier_threshold(scores)
    assert threshold is not None and 0.33 < threshold < 0.45
    assert int((scores >= threshold).sum()) <= 5
    assert outlier_threshold(np.array([0.1, 0.2])) is None


def test_a_dataset_with_nothing_computed_says_what_to_run(
    workspace: Workspace, tmp_path: Path
) -> None:
    root, _ = leaky_copy(tmp_path / "trees")
    ingest(workspace, root, "fresh")
    rows = workspace.dataset("fresh").health()["rows"]
    todo = {r["kind"]: r["todo"] for r in rows}
    assert todo == {
        "duplicates": "visor duplicates fresh",
        "leaks": "visor duplicates fresh",
        "outliers": "visor uniqueness fresh",
        "quality": "visor quality fresh (or visor embed fresh)",
        "label_errors": "visor label-errors fresh",
    }
    ingest(workspace, DATA / "labelimg_trees", "boxes")
    rows = workspace.dataset("boxes").health()["rows"]
    todo = next(r["todo"] for r in rows if r["kind"] == "label_errors")
    assert todo == (
        "boxes need a vector per box: visor embed boxes --objects, then visor label-errors boxes"
    )
    todo = next(r["todo"] for r in rows if r["kind"] == "object_outliers")
    assert todo == "visor embed boxes --objects, then visor objects boxes"


def test_health_from_the_cli_as_html_over_http_and_in_the_ui(
    tmp_path: Path, browser: Browser
) -> None:
    home = tmp_path / "home"
    root, copied = leaky_copy(tmp_path / "trees")
    assert run_cli(home, "ingest", str(root), "--name", "trees").returncode == 0
    assert run_cli(home, "duplicates", "trees", "--exact-only").returncode == 0
    report = tmp_path / "out" / "health.html"
    report.parent.mkdir()
    done = run_cli(home, "health", "trees", "--no-compute", "--html", str(report))
    assert done.returncode == 0, done.stderr
    assert "copies across splits (train/test leakage)" in done.stdout
    assert "4 (4.0%)" in done.stdout
    assert "not computed: visor uniqueness trees" in done.stdout
    text = report.read_text()
    assert text.count("data:image/jpeg;base64,") == 8  # 4 duplicates and the same 4 leaked
    assert "Health of trees (100 samples)" in text
    # Outliers from vectors of random weights: the warning is said once, and marked on its row.
    assert run_cli(home, "embed", "trees", "--model", MODEL).returncode == 0
    assert run_cli(home, "uniqueness", "trees").returncode == 0
    done = run_cli(home, "health", "trees", "--no-compute", "--html", str(report))
    assert done.returncode == 0, done.stderr
    assert report.read_text().count("has random weights") == 1
    outliers = next(line for line in done.stdout.splitlines() if "least typical images" in line)
    assert "[1]" in outliers
    assert done.stdout.count("has random weights") == 1
    assert "[1] warning: random:dinov2-tiny has random weights" in done.stdout
    server = Server(home).start()
    try:
        found = httpx.get(f"{server.url}/api/datasets/trees/health").json()
        leaks = next(r for r in found["rows"] if r["kind"] == "leaks")
        assert leaks["count"] == 4
        page = httpx.get(f"{server.url}/api/datasets/trees/samples", params={"leaked": True})
        assert {s["filename"] for s in page.json()["items"]} >= set(copied)
        ui = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US").new_page()
        ui.goto(f"{server.url}/?dataset=trees&tab=health")
        row = ui.get_by_test_id("health-panel").locator("tr[data-kind='leaks']")
        expect(row).to_contain_text("4 (4.0%)")
        expect(row.locator("img")).to_have_count(4)
        # The random-weights warning of the outliers row: once above the table, marked [1].
        panel = ui.get_by_test_id("health-panel")
        expect(panel.get_by_test_id("health-note")).to_have_count(1)
        expect(panel.get_by_test_id("health-note")).to_contain_text("[1] random:dinov2-tiny")
        expect(panel.locator("tr[data-kind='outliers'] .note-mark")).to_have_text("[1]")
        expect(row.locator(".note-mark")).to_have_count(0)  # exact copies: no vectors involved
        row.get_by_role("button", name="show").click()
        expect(ui.get_by_test_id("count")).to_have_text("4 samples")
        assert "leaked=1" in ui.url
        ui.context.close()
    finally:
        server.stop()


def test_near_copies_across_splits_are_found_as_leaks(workspace: Workspace, tmp_path: Path) -> None:
    """Two validation crops re-encoded (JPEG q70) and cropped by 2 px into train: not the same
    bytes, so only the vectors find them (vectors built so that copies sit at cosine ~0.999)."""
    from PIL import Image

    root = tmp_path / "trees"
    shutil.copytree(DATA / "classification_trees", root)
    originals = sorted((root / "validate").rglob("*.jpg"))[:2]
    for i, image in enumerate(originals):
        with Image.open(image) as im:
            w, h = im.size
            im.crop((1, 1, w - 1, h - 1)).save(
                root / "train" / image.parent.name / f"near_{i}.jpg", quality=70
            )
    ingest(workspace, root, "trees")
    ds = workspace.dataset("trees")
    _, samples = ds.samples(limit=1000)
    rng = np.random.default_rng(0)
    base = {s["filename"]: rng.normal(size=32) for s in samples}
    for i, image in enumerate(originals):
        base[f"near_{i}.jpg"] = base[image.name] + rng.normal(size=32) * 0.01
    ids = np.array([s["id"] for s in samples])
    vectors = np.array([base[s["filename"]] for s in samples], np.float32)
    vector_rows.ensure_model(workspace.store, "known", 32)
    vector_rows.write_batch(
        workspace.store, ds.id, "known", ids, vectors, [], job_id=None, replace=False
    )
    ds.find_duplicates("known", threshold=0.99, wait=True)
    leaks = next(r for r in ds.health()["rows"] if r["kind"] == "leaks")
    assert leaks["count"] == 4
    assert leaks["detail"]["pairs"] == {"train / val": {"groups": 2, "samples": 4}}
    _, found = ds.samples(SampleFilter(leaked=True), limit=10)
    assert {s["filename"] for s in found} == {"near_0.jpg", "near_1.jpg"} | {
        p.name for p in originals
    }


def planted_yolo(root: Path) -> dict[str, str]:
    """The YOLO corpus with a train tile copied byte for byte into test (a leak), a darkened
    copy of another into val and a blurred copy of a third into train (Gaussian, 2% of its
    short side), each with its labels: the planted file names by issue."""
    from PIL import Image, ImageEnhance, ImageFilter

    shutil.copytree(DATA / "yolo_roboflow_trees", root)
    tiles = sorted((root / "train" / "images").glob("*.jpg"))
    leak, dark, blur = tiles[0], tiles[1], tiles[2]
    shutil.copy(leak, root / "test" / "images" / "leaked.jpg")
    shutil.copy(
        root / "train" / "labels" / f"{leak.stem}.txt", root / "test" / "labels" / "leaked.txt"
    )
    with Image.open(dark) as im:
        ImageEnhance.Brightness(im).enhance(0.08).save(root / "valid" / "images" / "dark.jpg")
    shutil.copy(
        root / "train" / "labels" / f"{dark.stem}.txt", root / "valid" / "labels" / "dark.txt"
    )
    with Image.open(blur) as im:
        im.filter(ImageFilter.GaussianBlur(0.02 * min(im.size))).save(
            root / "train" / "images" / "blurred.jpg"
        )
    shutil.copy(
        root / "train" / "labels" / f"{blur.stem}.txt", root / "train" / "labels" / "blurred.txt"
    )
    return {"leak": leak.name, "copy": "leaked.jpg", "dark": "dark.jpg", "blur": "blurred.jpg"}


@pytest.mark.timeout(900)  # several jobs from the UI, each waited for up to 3 minutes
def test_health_computes_what_is_missing_from_the_cli_and_the_ui(
    tmp_path: Path, browser: Browser
) -> None:
    """One `visor health` after embed: every row computed but those that need a choice (the
    boxes need a vector each), the planted leak and dark image under their rows; in the UI,
    Compute all fills the rows in."""
    home = tmp_path / "home"
    planted = planted_yolo(tmp_path / "yolo")
    for args in (
        ("ingest", str(tmp_path / "yolo"), "--name", "y"),
        ("embed", "y", "--model", MODEL),
    ):
        assert run_cli(home, *args).returncode == 0
    done = run_cli(home, "health", "y")
    assert done.returncode == 0, done.stderr
    said, *lines = done.stdout.splitlines()  # the job's line, then why each is left, the report
    assert said.endswith("; not computed: label_errors, objects"), done.stdout
    waiting = [line for line in lines if "not computed" in line]
    assert waiting and all("--objects" in line for line in waiting), done.stdout
    assert "  objects: needs a vector per box: visor embed y --objects" in lines, done.stdout
    with Workspace(Settings(home=home)) as ws:
        ds = ws.dataset("y")
        rows = {r["kind"]: r for r in ds.health()["rows"]}
        names = {s["id"]: s["filename"] for s in ds.samples(limit=100)[1]}
    assert rows["leaks"]["count"] == 2
    assert {names[i] for i in rows["leaks"]["examples"]} == {planted["leak"], planted["copy"]}
    assert planted["dark"] in {names[i] for i in rows["quality:dark"]["examples"]}
    assert planted["blur"] in {names[i] for i in rows["quality:blurry"]["examples"]}
    assert rows["duplicates"]["count"] == 2 and rows["outliers"]["count"] is not None
    # The UI: a fresh dataset, nothing computed; Compute all computes it as one job.
    assert run_cli(home, "ingest", str(tmp_path / "yolo"), "--name", "fresh").returncode == 0
    server = Server(home).start()
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.goto(f"{server.url}/?dataset=fresh&tab=health")
        panel = page.get_by_test_id("health-panel")
        leaks = panel.locator("tr[data-kind='leaks']")
        expect(leaks).to_contain_text("not computed")
        panel.get_by_test_id("health-compute").get_by_role("button", name="Compute all").click()
        expect(leaks).to_contain_text("2 (20.0%)")
        expect(panel.locator("tr[data-kind='quality:dark'] img").first).to_be_visible()
        # A row that needs a choice says so, with the button that makes it: boxes embedded
        # with the images' model, then the row computed.
        page.goto(f"{server.url}/?dataset=y&tab=health")
        boxes = page.get_by_test_id("health-panel").locator("tr[data-kind='object_outliers']")
        expect(boxes).to_contain_text("--objects")
        boxes.get_by_role("button", name="Embed boxes").click()
        expect(boxes).to_contain_text("%)", timeout=180_000)  # two jobs, beside other tests
        # So does the check against a model's predictions: which model is the choice.
        table = visor.open(home).sql(
            "SELECT s.path AS file_name, l.class, l.x, l.y, l.w, l.h, 0.9 AS score FROM labels l "
            "JOIN samples s ON s.dataset_id = l.dataset_id AND s.id = l.sample_id JOIN datasets d "
            "ON d.id = s.dataset_id WHERE d.name = 'y' AND l.x IS NOT NULL"
        )
        table.to_pandas().to_csv(tmp_path / "gt.csv", index=False)
        done = run_cli(home, "import-predictions", "y", str(tmp_path / "gt.csv"), "--source", "gt")
        assert done.returncode == 0, done.stderr
        page.reload()
        check = page.get_by_test_id("health-panel").locator(
            "tr[data-kind='detection_label_errors']"
        )
        expect(check).to_contain_text("visor label-errors y --predictions gt")
        check.get_by_role("button", name="Check against gt").click()
        expect(check).to_contain_text("%)", timeout=180_000)
        page.context.close()
    finally:
        server.stop()
