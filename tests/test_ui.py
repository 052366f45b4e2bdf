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
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


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


def _inside(x: float, y: float, polygon: list[list[float]]) -> bool:
    """Even-odd rule, written here independently of the UI's own."""
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        (xi, yi), (xj, yj) = polygon[i], polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


@pytest.fixture
def mapped(tmp_path: Path, demo_root: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    for args in (
        ("ingest", str(demo_root), "--name", "shapes"),
        ("embed", "shapes", "--model", "random:dinov2-tiny"),
        ("map", "shapes", "--model", "random:dinov2-tiny", "--method", "pca"),
    ):
        done = run_cli(home, *args)
        assert done.returncode == 0, done.stderr
    server = Server(home, env={"VISOR_MODEL": "random:dinov2-tiny"}).start()
    yield server
    server.stop()


def test_lasso_on_the_map_filters_the_grid(page: Page, mapped: Server) -> None:
    import pyarrow as pa

    page.goto(mapped.url + "/?dataset=shapes")
    expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")
    expect(page.get_by_test_id("count")).to_have_text("40 samples")
    canvas = page.get_by_test_id("map").locator("canvas")
    box = canvas.bounding_box()
    assert box is not None
    cx, cy, w, h = (
        box["x"] + box["width"] / 2,
        box["y"] + box["height"] / 2,
        box["width"],
        box["height"],
    )
    # A lasso over the left half of the plot, drawn with Shift held.
    corners = [
        (cx - w * 0.45, cy - h * 0.45),
        (cx, cy - h * 0.45),
        (cx, cy + h * 0.45),
        (cx - w * 0.45, cy + h * 0.45),
    ]
    page.keyboard.down("Shift")
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in [*corners[1:], corners[0]]:
        page.mouse.move(x, y, steps=15)
    page.mouse.up()
    page.keyboard.up("Shift")
    panel = page.locator(".map-panel")
    expect(panel).not_to_have_attribute("data-lasso", "")
    polygon = json.loads(panel.get_attribute("data-lasso") or "[]")
    # The samples inside the polygon, by the points API's coordinates.
    data = httpx.get(mapped.url + "/api/datasets/shapes/maps/default/points").content
    table = pa.ipc.open_stream(data).read_all()
    expected = {
        int(i)
        for i, x, y in zip(
            *(table.column(c).to_pylist() for c in ("sample_id", "x", "y")), strict=True
        )
        if _inside(x, y, polygon)
    }
    assert 0 < len(expected) < 40
    expect(page.get_by_test_id("count")).to_have_text(f"{len(expected)} samples")
    shown = page.get_by_test_id("grid").locator("img")
    expect(shown).to_have_count(len(expected))
    ids = {
        int(re.search(r"/samples/(\d+)/", s or "").group(1))
        for s in shown.evaluate_all("els => els.map(e => e.getAttribute('src'))")  # type: ignore[union-attr]
    }
    assert ids == expected
    page.get_by_test_id("clear-selection").click()
    expect(page.get_by_test_id("count")).to_have_text("40 samples")


def test_embed_and_map_from_the_ui(page: Page, tmp_path: Path, demo_root: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(demo_root), "--name", "shapes").returncode == 0
    server = Server(home, env={"VISOR_MODEL": "random:dinov2-tiny"}).start()
    try:
        page.goto(server.url + "/?dataset=shapes")
        page.get_by_role("button", name="Embed and map").click()
        progress = page.get_by_role("progressbar")
        expect(progress).to_contain_text("embed ", timeout=30_000)
        expect(progress).to_contain_text("map ", timeout=120_000)  # embed done, map started
        expect(progress).to_contain_text("map done: 100%", timeout=240_000)
        expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")
        expect(page.get_by_test_id("map").locator("canvas")).to_be_visible()
    finally:
        server.stop()


def test_sample_view_boxes_neighbours_keys_and_reload(page: Page, mapped: Server) -> None:
    api = httpx.Client(base_url=mapped.url + "/api/datasets/shapes")
    first, second = (s["id"] for s in api.get("/samples", params={"limit": 2}).json()["items"])
    page.goto(mapped.url + "/?dataset=shapes")
    page.get_by_test_id("grid").locator("figure.cell").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_have_attribute("aria-label", f"sample {first}")
    labels = api.get(f"/samples/{first}").json()["labels"]
    boxes = [label for label in labels if label["bbox"]]
    assert boxes
    expect(dialog.locator("svg rect")).to_have_count(len(boxes))
    expect(dialog.locator("table.labels tbody tr")).to_have_count(len(labels))
    similar = api.get(f"/samples/{first}/similar", params={"k": 12}).json()["neighbours"]
    strip = page.get_by_test_id("neighbours").locator("img")
    expect(strip).to_have_count(12)
    assert [int(i) for i in strip.evaluate_all("els => els.map(e => e.dataset.id)")] == [
        n["sample_id"] for n in similar
    ]
    # Arrow keys step through the grid's order.
    page.keyboard.press("ArrowRight")
    expect(dialog).to_have_attribute("aria-label", f"sample {second}")
    page.keyboard.press("ArrowLeft")
    expect(dialog).to_have_attribute("aria-label", f"sample {first}")
    # A neighbour opens; the URL holds it, so a reload shows it again.
    target = similar[0]["sample_id"]
    strip.first.click()
    expect(dialog).to_have_attribute("aria-label", f"sample {target}")
    assert f"sample={target}" in page.url
    page.reload()
    expect(page.get_by_role("dialog")).to_have_attribute("aria-label", f"sample {target}")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert "sample=" not in page.url
