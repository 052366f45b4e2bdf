"""The real-data corpus (tests/data, see SOURCES.md) through the whole pipeline as a user runs
it: `visor ingest` -> `embed` (random weights) -> `map` -> `similar` -> `duplicates`, then the
UI, with the exact counts each dataset must give."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, run_cli, wait_job
from playwright.sync_api import Browser, Page, expect

DATA = Path(__file__).parent / "data"
MODEL = "random:dinov2-tiny"

# name -> (format, samples per split, labels per class, records skipped at ingest)
EXPECTED = {
    "labelimg_trees": ("voc", {"(none)": 4}, {"Tree": 61, "Dead": 28, "Alive": 9}, 0),
    "voc_trees": ("voc", {"trainval": 1, "test": 1}, {"Tree": 61, "Dead": 28, "Alive": 9}, 0),
    "coco_roboflow_trees": ("coco", {"train": 8, "val": 2, "test": 2}, {"Tree": 461}, 0),
    "yolo_roboflow_trees": (
        "yolo",
        {"train": 4, "val": 2, "test": 1},
        {"Tree": 63, "Dead": 29, "Alive": 9},
        1,
    ),
    "classification_trees": (
        "classification",
        {"train": 74, "val": 24},
        {"Tree": 61, "Dead": 28, "Alive": 9},
        0,
    ),
}


def cli(home: Path, *args: str) -> str:
    done = run_cli(home, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture(scope="module")
def corpus_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every corpus dataset ingested, embedded with random weights and mapped, by the CLI
    through a running server (which loads the model once, not once a command); stopped
    before the tests, which use the store directly first."""
    home = tmp_path_factory.mktemp("corpus")
    server = Server(home).start()
    try:
        for name in EXPECTED:
            cli(home, "ingest", str(DATA / name), "--name", name)
            cli(home, "embed", name, "--model", MODEL, "--precision", "fp32", "--batch-size", "16")
            if name != "voc_trees":  # 2 images: too few for a map (tested below)
                cli(home, "map", name, "--method", "pca")
    finally:
        server.stop()
    return home


# The CLI tests come first: while the server runs it holds the store (one writer).


@pytest.fixture(scope="module")
def corpus_server(corpus_home: Path) -> Iterator[Server]:
    server = Server(corpus_home).start()
    yield server
    server.stop()


def test_yolo_skip_names_the_file_line_and_class(corpus_home: Path) -> None:
    out = cli(corpus_home, "info", "yolo_roboflow_trees", "--skipped")
    assert "train/labels/OSBS_029_0_png.rf." in out
    assert "line 15: class index 3 is not in data.yaml names (0..2)" in out


def test_commands_default_to_the_embedded_model_and_warn_of_random_weights(
    corpus_home: Path,
) -> None:
    """No --model anywhere: the dataset's own model is used (VISOR_MODEL is dinov2-base)."""
    out = cli(corpus_home, "similar", "labelimg_trees", "0", "-k", "3")
    assert "random weights" in out and "dinov2-base" not in out.split("warning")[0]
    out = cli(corpus_home, "duplicates", "labelimg_trees", "--threshold", "0.999")
    assert "random weights" in out and "could go" not in out
    # Random weights make the crops of trees all alike: a usual threshold groups most of them.
    out = cli(corpus_home, "duplicates", "classification_trees", "--threshold", "0.9")
    assert "the threshold is probably too low for random:dinov2-tiny" in out
    assert "random weights" in out and "could go" not in out
    out = cli(corpus_home, "map", "yolo_roboflow_trees", "--method", "pca")
    assert f"({MODEL})" in out and "random weights" in out
    out = cli(corpus_home, "uniqueness", "coco_roboflow_trees")
    assert "uniqueness of 12 samples" in out and "random weights" in out
    done = run_cli(corpus_home, "map", "voc_trees")
    assert done.returncode == 1
    assert (
        "a map needs at least 3 embedded samples; this dataset has 2" in done.stdout + done.stderr
    )


@pytest.mark.parametrize("name", list(EXPECTED))
def test_corpus_ingests_with_exact_counts(corpus_server: Server, name: str) -> None:
    fmt, splits, classes, skipped = EXPECTED[name]
    info = httpx.get(f"{corpus_server.url}/api/datasets/{name}").json()
    assert info["format"] == fmt
    assert info["splits"] == splits
    assert info["num_samples"] == sum(splits.values())
    assert {c["class"]: c["labels"] for c in info["classes"]} == classes
    assert info["num_labels"] == sum(classes.values())
    assert (info["report"] or {}).get("skipped_count", 0) == skipped
    status = httpx.get(f"{corpus_server.url}/api/datasets/{name}/embeddings/status").json()
    (row,) = status["models"]
    assert row["model"] == MODEL and row["vectors"] == info["num_samples"] and row["errors"] == 0


@pytest.mark.parametrize("name", list(EXPECTED))
def test_corpus_neighbours_and_duplicates(corpus_server: Server, name: str) -> None:
    """Every other sample is a neighbour, once, nearest first; duplicates run on every dataset
    and, over random weights, say so and advise no removal."""
    n = sum(EXPECTED[name][1].values())
    api = httpx.Client(
        headers=corpus_server.headers,
        base_url=f"{corpus_server.url}/api/datasets/{name}",
        timeout=60,
    )
    found = api.get("/samples/0/similar", params={"k": n - 1}).json()
    ids = [x["sample_id"] for x in found["neighbours"]]
    assert sorted(ids) == list(range(1, n))
    distances = [x["distance"] for x in found["neighbours"]]
    assert distances == sorted(distances)
    job = api.post("/duplicates", json={}).json()
    with httpx.Client(
        headers=corpus_server.headers, base_url=corpus_server.url, timeout=60
    ) as root:
        assert wait_job(root, job["id"])["state"] == "done"
    result = api.get("/duplicates", params={"limit": 1000}).json()
    assert result["run"]["model"] == MODEL and "random weights" in result["run"]["warning"]
    assert result["run"]["summary"]["removable"] is None
    members = [s["sample_id"] for g in result["groups"] for s in g["samples"]]
    assert len(members) == len(set(members)) == result["run"]["summary"]["samples_in_groups"] <= n


def test_the_same_picture_twice_is_its_own_nearest_neighbour(corpus_server: Server) -> None:
    """labelimg_trees holds OSBS_029 as .tif and as .png: the same pixels."""
    api = httpx.Client(
        headers=corpus_server.headers,
        base_url=f"{corpus_server.url}/api/datasets/labelimg_trees",
        timeout=60,
    )
    ids = {s["path"]: s["id"] for s in api.get("/samples").json()["items"]}
    found = api.get(f"/samples/{ids['OSBS_029.tif']}/similar", params={"k": 3}).json()
    assert found["model"] == MODEL and "random weights" in found["warning"]
    assert found["neighbours"][0]["sample_id"] == ids["OSBS_029.png"]
    assert found["neighbours"][0]["distance"] < 1e-4
    job = api.post("/duplicates", json={"threshold": 0.9999}).json()
    assert job["params"]["model"] == MODEL  # no model asked for: the dataset's own
    with httpx.Client(
        headers=corpus_server.headers, base_url=corpus_server.url, timeout=60
    ) as root:
        assert wait_job(root, job["id"])["state"] == "done"
    runs = api.get("/duplicates").json()
    assert runs["run"]["model"] == MODEL and "random weights" in runs["run"]["warning"]
    assert runs["run"]["summary"]["removable"] is None
    groups = [{s["path"] for s in g["samples"]} for g in runs["groups"]]
    assert any({"OSBS_029.tif", "OSBS_029.png"} <= g for g in groups)


# -- the UI on real photos --------------------------------------------------------------------


def _page(browser: Browser, width: int) -> Page:
    return browser.new_context(viewport={"width": width, "height": 800}, locale="en-US").new_page()


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "voc_trees"])
def test_corpus_in_the_ui(browser: Browser, corpus_server: Server, name: str) -> None:
    """Grid count, decoded thumbnails, the map's points and the random-weights banner."""
    with httpx.Client(headers=corpus_server.headers, base_url=corpus_server.url, timeout=60) as api:
        job = api.post(f"/api/datasets/{name}/duplicates", json={}).json()
        assert wait_job(api, job["id"])["state"] == "done"
    page = _page(browser, 1280)
    total = sum(EXPECTED[name][1].values())
    page.goto(f"{corpus_server.url}/?dataset={name}")
    expect(page.get_by_test_id("count")).to_have_text(f"{total} samples")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=grid] img')]"
        ".some(i => i.complete && i.naturalWidth > 0)"
    )
    expect(page.get_by_test_id("weights-warning")).to_contain_text("random weights")
    expect(page.locator(".map canvas")).to_have_count(1)
    # The duplicates panel: the nearest-neighbour histogram with the threshold on it.
    panel = page.get_by_test_id("duplicates-panel")
    expect(panel.get_by_test_id("nn-histogram").locator("rect")).to_have_count(40)
    expect(panel).to_contain_text("random weights")
    expect(panel).not_to_contain_text("could go")
    page.context.close()


@pytest.mark.parametrize("width", [1280, 760])
@pytest.mark.parametrize("name", ["coco_roboflow_trees", "labelimg_trees"])
def test_sample_view_boxes_land_on_the_labelled_pixels(
    browser: Browser, corpus_server: Server, name: str, width: int
) -> None:
    """The photo with the most labels (64 on a 760x500 tile; 61 on a 400x400 one): each drawn
    rect is within 2 px of its label's box scaled to the displayed image."""
    api = httpx.Client(
        headers=corpus_server.headers, base_url=f"{corpus_server.url}/api/datasets/{name}"
    )
    sample = api.get("/samples", params={"sort": "num_labels", "order": "desc", "limit": 1})
    sample_id = sample.json()["items"][0]["id"]
    labels = [lab for lab in api.get(f"/samples/{sample_id}").json()["labels"] if lab["bbox"]]
    assert len(labels) >= 15
    page = _page(browser, width)
    page.goto(f"{corpus_server.url}/?dataset={name}&sample={sample_id}")
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("svg rect")).to_have_count(len(labels))
    page.wait_for_function("() => document.querySelector('[data-testid=picture] img').complete")
    drawn = page.evaluate(
        """() => {
        const img = document.querySelector('[data-testid=picture] img');
        const box = (e) => {
            const r = e.getBoundingClientRect();
            return [r.x, r.y, r.width, r.height];
        };
        return {img: box(img), natural: [img.naturalWidth, img.naturalHeight],
                rects: [...document.querySelectorAll('[data-testid=picture] svg rect')].map(box)};
    }"""
    )
    x, y, w, h = drawn["img"]
    sx, sy = w / drawn["natural"][0], h / drawn["natural"][1]
    assert h > 50 and abs(sx - sy) < 0.01, drawn  # the image keeps its aspect ratio
    for label, rect in zip(labels, drawn["rects"], strict=True):
        bx, by, bw, bh = label["bbox"]
        expected = [x + bx * sx, y + by * sy, bw * sx, bh * sy]
        assert max(abs(a - b) for a, b in zip(rect, expected, strict=True)) <= 2, (
            json.dumps(label),
            rect,
            expected,
        )
    page.context.close()
