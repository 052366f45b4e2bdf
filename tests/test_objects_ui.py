"""Objects in the browser (real Chromium, real server, the real corpus): a map of boxes
coloured by class, a lasso filling the grid with crops, a crop opening its sample with that
box highlighted and the boxes most like it, and the health report's box rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from browser import draw_lasso, inside
from conftest import Server, run_cli
from playwright.sync_api import Page, expect

DATA = Path(__file__).parent / "data"
MODEL = "random:dinov2-tiny"


@pytest.fixture(scope="module")
def boxes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Box vectors, a map of boxes and the object analysis, shared by the module's tests
    (which only read them)."""
    home = tmp_path_factory.mktemp("boxes") / "home"
    for args in (
        ("ingest", str(DATA / "yolo_roboflow_trees"), "--name", "yolo"),
        ("embed", "yolo", "--objects", "--model", MODEL, "--precision", "fp32"),
        ("map", "yolo", "--objects", "--method", "pca"),
        ("objects", "yolo"),
    ):
        done = run_cli(home, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    server = Server(home).start()
    yield server
    server.stop()


def test_a_lasso_on_a_map_of_boxes_shows_their_crops(page: Page, boxes_server: Server) -> None:
    page.goto(boxes_server.url + "/?dataset=yolo")
    plot = page.get_by_test_id("map")
    expect(plot).to_have_attribute("data-points", "101")
    expect(plot).to_have_attribute("data-objects", "1")
    legend = page.get_by_test_id("legend")
    for name in ("Alive", "Dead", "Tree"):  # one point per box, coloured by the box's class
        expect(legend).to_contain_text(name)
    canvas = plot.locator("canvas")
    box = canvas.bounding_box()
    assert box is not None
    w, h = box["width"], box["height"]
    cx, cy = box["x"] + w / 2, box["y"] + h / 2
    corners = [
        (cx - w * 0.45, cy - h * 0.45),
        (cx + w * 0.05, cy - h * 0.45),
        (cx + w * 0.05, cy + h * 0.45),
        (cx - w * 0.45, cy + h * 0.45),
    ]
    polygon = draw_lasso(page, corners)
    data = httpx.get(boxes_server.url + "/api/datasets/yolo/maps/default/points").content
    table = pa.ipc.open_stream(data).read_all()
    columns = ("label_id", "sample_id", "x", "y")
    points = list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
    expected = {(b, s) for b, s, x, y in points if inside(x, y, polygon)}
    assert 0 < len(expected) < 101
    expect(page.get_by_test_id("count")).to_have_text(f"{len(expected)} boxes")
    crops = page.get_by_test_id("object-grid").locator("figure")
    expect(crops).to_have_count(len(expected))
    shown = crops.evaluate_all(
        "els => els.map(e => [Number(e.dataset.box), Number(e.dataset.sample)])"
    )
    assert {tuple(pair) for pair in shown} == expected
    src = crops.first.locator("img").get_attribute("src") or ""
    assert src.endswith(f"/objects/{shown[0][0]}/crop")
    # Each square crop is shown whole (cut to the 4:3 cell, a tall box lost its top and
    # bottom edges).
    fit = crops.first.locator("img").evaluate("e => getComputedStyle(e).objectFit")
    assert fit == "contain"
    # A crop opens its sample with that box highlighted, and the boxes most like it.
    label_id, sample_id = shown[0]
    crops.first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_have_attribute("aria-label", f"sample {sample_id}")
    assert f"box={label_id}" in page.url
    chosen = dialog.locator(f"rect[data-id='{label_id}']")
    expect(chosen).to_have_attribute("data-cell", "1")
    others = dialog.locator("rect:not([data-cell])")
    assert others.count() > 0
    faded = others.evaluate_all("els => els.map(e => e.getAttribute('stroke-opacity'))")
    assert {float(o) for o in faded} == {0.3}
    near = dialog.get_by_test_id("similar-boxes").locator("img")
    expect(near).to_have_count(12)
    expect(dialog.get_by_test_id("box-weights-warning")).to_contain_text("random weights")
    # A similar box opens its own sample with it highlighted.
    other = int(near.nth(0).get_attribute("data-id") or -1)
    near.nth(0).click()
    expect(dialog.locator(f"rect[data-id='{other}']")).to_have_attribute("data-cell", "1")
    assert f"box={other}" in page.url
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("object-grid")).to_be_visible()
    page.get_by_test_id("clear-selection").click()
    expect(page.get_by_test_id("count")).to_have_text("7 samples")


def test_the_health_report_lists_unusual_boxes(page: Page, boxes_server: Server) -> None:
    report = httpx.get(boxes_server.url + "/api/datasets/yolo/health").json()
    rows = {r["kind"]: r for r in report["rows"]}
    outliers = rows["object_outliers"]
    assert outliers["filter"] == {"object_issue": "outlier"}
    assert "random weights" in outliers["warning"]
    holding = httpx.get(
        boxes_server.url + "/api/datasets/yolo/samples", params={"object_issue": "outlier"}
    ).json()["total"]
    assert outliers["count"] > 0 and holding > 0
    page.goto(boxes_server.url + "/?dataset=yolo&tab=health")
    row = page.get_by_test_id("health-panel").locator("tr[data-kind='object_outliers']")
    expect(row).to_contain_text(f"{outliers['count']} (")
    row.get_by_role("button", name="show").click()
    expect(page.get_by_label("box analysis")).to_have_value("outlier")
    expect(page.get_by_test_id("count")).to_have_text(f"{holding} samples")
    assert "object_issue=outlier" in page.url
