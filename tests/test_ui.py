"""The web UI in a real browser (Debian's Chromium driven by Playwright) against a real
`visor serve`. A failing test leaves a screenshot under tests/screenshots/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, run_cli
from playwright.sync_api import Page, expect

# Counts the grid's cells that turn into placeholders from now on (window.visorBlanks): a
# placeholder is new there, or a cell's div that became one (React reuses the node).
BLANKS = """() => {
  window.visorBlanks = 0;
  const blank = (node) => node.nodeType === 1
    && (node.matches(".placeholder") || node.querySelector(".placeholder") !== null);
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes" && blank(change.target)) window.visorBlanks++;
      for (const node of change.addedNodes) if (blank(node)) window.visorBlanks++;
    }
  }).observe(document.querySelector("[data-testid=grid]"),
             { childList: true, subtree: true, attributes: true, attributeFilter: ["class"] });
}"""


@pytest.fixture
def served(tmp_path: Path, demo_root: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(demo_root), "--name", "shapes").returncode == 0
    server = Server(home).start()
    yield server
    server.stop()


def test_datasets_grid_filters_and_reload(page: Page, served: Server) -> None:
    info = httpx.get(served.url + "/api/datasets/shapes").json()
    page.goto(served.url + "/")
    row = page.locator("tr", has_text="shapes")
    expect(row).to_contain_text(str(info["num_samples"]))
    for split, n in info["splits"].items():
        expect(row).to_contain_text(f"{split} {n}")
    expect(row.get_by_test_id("embeddings")).to_have_text("none")
    expect(row.get_by_test_id("maps")).to_have_text("none")
    row.get_by_role("link", name="shapes").click()
    count = page.get_by_test_id("count")
    expect(count).to_have_text(f"{info['num_samples']} samples")
    # Thumbnails load (decoded images, not broken ones), and only visible rows are in the DOM.
    first = page.get_by_test_id("grid").locator("img").first
    expect(first).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=grid] img')]"
        ".some(i => i.complete && i.naturalWidth > 0)"
    )
    # A filter narrows the grid and lands in the URL; a reload shows the same view.
    split, n = sorted(info["splits"].items())[-1]
    page.get_by_label("Split").select_option(split)
    expect(count).to_have_text(f"{n} samples")
    assert re.search(rf"split={split}\b", page.url)
    page.reload()
    expect(page.get_by_test_id("count")).to_have_text(f"{n} samples")
    expect(page.get_by_label("Split")).to_have_value(split)


@pytest.mark.page_errors("HTTP 422")  # a folder that isn't there, refused
def test_ingest_from_the_ui_shows_progress(page: Page, served: Server, demo_root: Path) -> None:
    page.goto(served.url + "/")
    page.get_by_placeholder("path: /data/coco, s3://bucket/prefix").fill(str(demo_root))
    expect(page.get_by_test_id("detected")).to_have_text("detected: coco, 40 images")
    page.get_by_placeholder("name").fill("again")
    page.get_by_role("button", name="Ingest").click()
    expect(page.get_by_role("progressbar")).to_contain_text("ingest done: 100%", timeout=60_000)
    expect(page.locator("tr", has_text="again")).to_be_visible()
    # A bad path: the server's message, no progress bar.
    page.get_by_placeholder("path: /data/coco, s3://bucket/prefix").fill("/no/such/folder")
    expect(page.get_by_test_id("detected")).to_contain_text("cannot ingest")
    page.get_by_placeholder("name").fill("broken")
    page.get_by_role("button", name="Ingest").click()
    expect(page.locator("form .error")).to_contain_text("no such file or directory")


def test_delete_asks_first(page: Page, served: Server) -> None:
    page.goto(served.url + "/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("tr", has_text="shapes").get_by_role("button", name="Delete").click()
    expect(page.locator("tr", has_text="shapes")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="shapes").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No datasets yet")).to_be_visible()
    assert httpx.get(served.url + "/api/datasets/shapes").status_code == 404


def test_the_demo_is_built_from_the_empty_page(page: Page, tmp_path: Path) -> None:
    """No dataset yet: the page offers the demo, built by the server as one job."""
    server = Server(tmp_path / "home", env={"VISOR_MODEL": "random:dinov2-tiny"}).start()
    try:
        page.goto(server.url + "/")
        expect(page.get_by_text("No datasets yet")).to_be_visible()
        page.get_by_label("Images").fill("24")
        page.get_by_role("button", name="Build the demo").click()
        bar = page.get_by_role("progressbar")
        expect(bar).to_contain_text("the demo demo is built (24 images", timeout=120_000)
        row = page.locator("tr", has_text="demo")
        expect(row.get_by_test_id("embeddings")).to_have_text("random:dinov2-tiny: 24")
        expect(row.get_by_test_id("maps")).to_have_text("1")
    finally:
        server.stop()


def test_boxes_on_thumbnails_and_which_kinds(page: Page, tmp_path: Path, demo_root: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(demo_root), "--name", "shapes").returncode == 0
    coco = json.loads((demo_root / "annotations" / "instances_train.json").read_text())
    image = coco["images"][0]
    preds = tmp_path / "preds.json"
    preds.write_text(
        json.dumps(
            [
                {"image_id": image["id"], "category_id": 1, "bbox": [5, 5, 40, 30], "score": 0.9},
                {"image_id": image["id"], "category_id": 2, "bbox": [60, 20, 30, 30], "score": 0.4},
            ]
        )
    )
    done = run_cli(home, "import-predictions", "shapes", str(preds), "--source", "detector")
    assert done.returncode == 0, done.stderr
    server = Server(home).start()
    try:
        api = httpx.Client(headers=server.headers, base_url=server.url + "/api/datasets/shapes")
        items = api.get("/samples", params={"limit": 100}).json()["items"]
        sample = next(s for s in items if s["metadata"]["coco_id"] == image["id"])
        labels = api.get(f"/samples/{sample['id']}").json()["labels"]
        gt = [lab for lab in labels if lab["bbox"] and lab["kind"] == "gt"]
        page.goto(server.url + "/?dataset=shapes")
        cell = page.locator(f"figure.cell[data-id='{sample['id']}']")
        rects = cell.locator("svg.boxes rect")
        expect(rects).to_have_count(len(gt) + 2)  # both kinds by default
        dashed = cell.locator("svg.boxes rect[data-kind='prediction']")
        expect(dashed).to_have_count(2)
        assert all(d.get_attribute("stroke-dasharray") for d in dashed.all())
        assert all(
            r.get_attribute("stroke-dasharray") is None
            for r in cell.locator("svg.boxes rect[data-kind='gt']").all()
        )
        boxes = page.get_by_label("Boxes")
        boxes.select_option("gt")
        expect(rects).to_have_count(len(gt))
        boxes.select_option("prediction")
        expect(rects).to_have_count(2)
        assert "boxes=prediction" in page.url
        page.reload()
        cell = page.locator(f"figure.cell[data-id='{sample['id']}']")
        expect(cell.locator("svg.boxes rect")).to_have_count(2)
        page.get_by_label("Boxes").select_option("none")
        expect(page.locator("svg.boxes")).to_have_count(0)
    finally:
        page.goto("about:blank")  # the page's event stream closed before its server
        server.stop()


def test_pick_cells_and_tag_them(page: Page, served: Server) -> None:
    page.goto(served.url + "/?dataset=shapes")
    cells = page.get_by_test_id("grid").locator("figure.cell")
    expect(cells.first.locator("img")).to_be_visible()
    expect(cells.nth(2).locator("img")).to_be_visible()
    picked = [int(cells.nth(i).get_attribute("data-id") or -1) for i in (0, 2)]
    cells.nth(0).locator("input.pick").check()
    cells.nth(2).click(modifiers=["Control"])  # Ctrl-click picks too
    expect(page.get_by_test_id("tagbar")).to_contain_text("Tag 2 picked")
    page.get_by_label("tag", exact=True).fill("review")
    page.get_by_test_id("tagbar").get_by_role("button", name="Add").click()
    expect(page.get_by_test_id("tag-note")).to_have_text("tagged 2 samples: review")
    page.get_by_label(re.compile(r"^Tag")).select_option("review")
    expect(page.get_by_test_id("count")).to_have_text("2 samples")
    shown = page.get_by_test_id("grid").locator("figure.cell")
    expect(shown).to_have_count(2)
    expect(shown.locator("input.pick")).to_have_count(2)  # both loaded, not placeholders
    assert sorted(int(c.get_attribute("data-id") or -1) for c in shown.all()) == sorted(picked)
    # A change made elsewhere redraws the grid without blanking it: its cells stay until the
    # new page replaces them.
    page.evaluate(BLANKS)
    with page.expect_response(lambda r: "/samples?" in r.url and "limit=200" in r.url):
        httpx.post(
            served.url + "/api/datasets/shapes/tag",
            json={"ids": picked[:1], "tags": ["seen"]},
            headers=served.headers,
        )
    expect(shown.locator("input.pick")).to_have_count(2)
    assert page.evaluate("window.visorBlanks") == 0
    # Pick one of them again and take the tag off.
    shown.first.locator("input.pick").check()
    page.get_by_label("tag", exact=True).fill("review")
    page.get_by_test_id("tagbar").get_by_role("button", name="Remove").click()
    expect(page.get_by_test_id("count")).to_have_text("1 samples")
    tagged = httpx.get(served.url + "/api/datasets/shapes/samples", params={"tag": "review"})
    assert tagged.json()["total"] == 1


@pytest.mark.page_errors("ERR_CONNECTION_REFUSED")  # the page's event stream while it is down
def test_a_change_made_while_the_server_was_down_reaches_the_page(
    page: Page, served: Server
) -> None:
    """The page's event stream comes back with its server, and reloads what it shows: a change
    made meanwhile (from the CLI, on the store itself) raised no event it could hear."""
    page.goto(served.url + "/?dataset=shapes")
    disc = page.get_by_label(re.compile(r"^Class")).locator("option", has_text="disc")
    expect(page.get_by_test_id("count")).to_have_text("40 samples")
    expect(disc).to_have_count(0)
    served.stop()
    done = run_cli(served.home, "relabel", "shapes", "--from", "circle", "--to", "disc")
    assert done.returncode == 0, done.stderr
    served.start()
    expect(disc).to_have_count(1, timeout=20_000)
    page.goto("about:blank")  # before the fixture stops the server
