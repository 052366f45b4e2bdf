"""The Evaluation panel in Chromium, on the YOLO corpus with known mistakes: per-class table,
PR curves, the confusion matrix whose cells filter the grid with their boxes highlighted,
box styles by outcome, the outcome filter, the error sort and the map coloured by errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest
from conftest import Server, ingest
from playwright.sync_api import Browser, expect
from test_evaluate import DATA, write_swapped

from visor.client import RemoteWorkspace, open_workspace
from visor.config import Settings
from visor.workspace import Workspace


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict]]:
    home = tmp_path_factory.mktemp("evaluate-ui")
    ws = Workspace(Settings(home=home))
    ingest(ws, DATA / "yolo_roboflow_trees", "trees")
    ds = ws.dataset("trees")
    gt, dead, alive, missed = write_swapped(ds, home / "swapped.csv")
    ds.import_predictions(str(home / "swapped.csv"), "swapped")
    assert ds.evaluate("swapped", wait=True)["state"] == "done"
    ds.embed("random:dinov2-tiny", precision="fp32", batch_size=8, wait=True)
    ds.make_map("random:dinov2-tiny", "pca", wait=True)
    facts = {
        "dead_samples": len({gt["sample_id"][i] for i in dead}),
        "fn_samples": len({gt["sample_id"][i] for i in [*dead, *alive, missed]}),
    }
    ws.close()
    server = Server(home).start()
    yield server, facts
    server.stop()


def test_evaluation_panel_and_confusion_cell_filter(
    browser: Browser, served: tuple[Server, dict]
) -> None:
    server, facts = served
    page = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US").new_page()
    page.goto(f"{server.url}/?dataset=trees&tab=evaluation")
    panel = page.get_by_test_id("evaluation-panel")
    expect(panel.get_by_test_id("evaluation-summary")).to_contain_text(
        "at IoU 0.5: 87 TP, 14 FP, 14 FN"
    )
    expect(page).to_have_url(f"{server.url}/?dataset=trees&eval=swapped&tab=evaluation")
    table = panel.get_by_test_id("class-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    table.get_by_text("FN", exact=True).click()  # sort by missed boxes, fewest first
    expect(table.locator("tbody tr").first).to_have_attribute("data-class", "Tree")
    expect(panel.get_by_test_id("pr-curves").locator("polyline")).to_have_count(3)
    matrix = panel.get_by_test_id("confusion")
    expect(matrix.locator("td")).to_have_count(16)
    # The matrix stays inside its panel, at this width and a narrow one (it scrolls instead).
    for width in (1400, 900):
        page.set_viewport_size({"width": width, "height": 900})
        inside = page.evaluate(
            """() => {
                const box = document.querySelector('[data-testid=confusion-box]');
                const panel = document.querySelector('[data-testid=evaluation-panel]');
                const [b, p] = [box.getBoundingClientRect(), panel.getBoundingClientRect()];
                return b.left >= p.left - 1 && b.right <= p.right + 1;
            }"""
        )
        assert inside, width
    page.set_viewport_size({"width": 1400, "height": 900})
    matrix.locator('td[data-cell=\'["Dead","Tree"]\']').click()
    expect(page.get_by_test_id("count")).to_have_text(f"{facts['dead_samples']} samples")
    assert "cell=" in page.url
    grid = page.get_by_test_id("grid")
    # In every cell of the grid, the highlighted boxes are the cell's (Dead boxes called Tree).
    expect(grid.locator("rect[data-cell='1']").first).to_be_attached()
    kinds = grid.locator("rect[data-cell='1']").evaluate_all(
        "rs => rs.map(r => r.dataset.kind + ':' + r.dataset.class + ':' + r.dataset.outcome)"
    )
    assert set(kinds) == {"gt:Dead:fn", "prediction:Tree:fp"}
    # False positives are drawn dashed red, true positives solid.
    fp = grid.locator("rect[data-outcome='fp']").first
    assert fp.get_attribute("stroke") == "#d62728" and fp.get_attribute("stroke-dasharray")
    tp = grid.locator("rect[data-outcome='tp']").first
    assert tp.get_attribute("stroke-dasharray") is None
    # The outcome filter and the error sort, kept in the URL.
    panel.get_by_label("outcome").select_option("fn")
    expect(page.get_by_test_id("count")).to_have_text(f"{facts['fn_samples']} samples")
    page.locator("select").filter(has_text="eval.errors").first.select_option("eval.errors")
    assert "sort=eval.errors" in page.url and "outcome=fn" in page.url
    page.reload()
    expect(page.get_by_test_id("count")).to_have_text(f"{facts['fn_samples']} samples")
    # The map coloured by each image's errors, with its legend.
    page.get_by_role("tab", name="Map").click()
    page.get_by_label("colour by").select_option("errors")
    legend = page.get_by_test_id("legend")
    expect(legend).to_have_attribute("data-color", "errors")
    expect(legend).to_contain_text("FP + FN per image")
    page.context.close()


def test_sample_view_says_each_box_outcome(browser: Browser, served: tuple[Server, dict]) -> None:
    server, _ = served
    page = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US").new_page()
    page.goto(f"{server.url}/?dataset=trees&eval=swapped&outcome=confused")
    page.get_by_test_id("grid").locator("img").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("tr[data-outcome='fp']").first).to_be_attached()
    text = dialog.locator("table.labels").inner_text()
    assert "FP: a Dead box" in text or "FP: a Alive box" in text
    assert "missed (called" in text
    # Its ground truth and predictions together scroll in their own table: the neighbours'
    # heading stays on screen, under the picture.
    rows = dialog.locator("table.labels tbody tr").count()
    assert rows >= 24, rows
    heading = dialog.get_by_role("heading", name="Nearest neighbours").bounding_box()
    assert heading is not None and heading["y"] + heading["height"] <= 900
    page.context.close()


def test_evaluate_one_split_from_the_panel(browser: Browser, served: tuple[Server, dict]) -> None:
    """The panel's Evaluate on one split: the evaluation is kept beside the whole-dataset one
    (named source.split), opened, and says its split; only that split's boxes are counted."""
    server, _ = served
    page = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US").new_page()
    page.goto(f"{server.url}/?dataset=trees&tab=evaluation")
    panel = page.get_by_test_id("evaluation-panel")
    panel.get_by_label("evaluate on").select_option("val")
    panel.get_by_role("button", name="Evaluate").click()
    expect(page).to_have_url(f"{server.url}/?dataset=trees&eval=swapped.val&tab=evaluation")
    found = httpx.get(f"{server.url}/api/datasets/trees/evaluations/swapped.val").json()
    counts = found["metrics"]["counts"]
    assert found["params"]["split"] == "val" and 0 < counts["gt"] < 101
    expect(panel.get_by_test_id("evaluation-summary")).to_contain_text(
        f"at IoU 0.5: {counts['tp']} TP, {counts['fp']} FP, {counts['fn']} FN"
    )
    expect(panel.get_by_test_id("evaluation-summary")).to_contain_text("on split val")
    names = [e["name"] for e in httpx.get(f"{server.url}/api/datasets/trees/evaluations").json()]
    assert names == ["swapped", "swapped.val"]
    page.context.close()


def test_a_source_of_one_split_evaluated_on_all_of_them(
    browser: Browser, served: tuple[Server, dict], tmp_path: Path
) -> None:
    """A model run on the val images only, evaluated on the whole dataset (through the
    server): the other splits' boxes count as missed, as pycocotools counts them, and the
    panel says so and which split to evaluate instead."""
    server, _ = served
    with open_workspace(server.home) as ws:
        assert isinstance(ws, RemoteWorkspace)
        ds = ws.dataset("trees")
        gt = ds.to_arrow(labels=True).filter(pc.field("kind") == "gt")
        on_val = gt.filter(pc.field("split") == "val")
        columns = ("path", "class", "x", "y", "w", "h")
        table = on_val.select(columns).rename_columns(["file_name", *columns[1:]])
        pcsv.write_csv(
            table.append_column("score", pa.array([0.9] * len(table))), tmp_path / "v.csv"
        )
        ds.import_predictions(str(tmp_path / "v.csv"), "val-only")
        done = ds.evaluate("val-only", wait=True)["result"]
    others = gt.num_rows - on_val.num_rows
    images = len(set(gt["sample_id"].to_pylist()) - set(on_val["sample_id"].to_pylist()))
    assert done["counts"]["fn"] == others and 0 < on_val.num_rows < gt.num_rows
    page = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US").new_page()
    page.goto(f"{server.url}/?dataset=trees&eval=val-only&tab=evaluation")
    warning = page.get_by_test_id("evaluation-panel").get_by_test_id("evaluation-warning")
    expect(warning).to_have_text(
        f"val-only has predictions on images of split val only: the {others} ground-truth "
        f"boxes on the {images} images of split train count as missed; evaluate on "
        "split val alone (--split val) to score only the images it ran on Evaluate on split val"
    )  # the last words the button's
    # One click evaluates the split it ran on: kept beside, opened, and nothing is missed.
    warning.get_by_role("button", name="Evaluate on split val").click()
    expect(page).to_have_url(f"{server.url}/?dataset=trees&eval=val-only.val&tab=evaluation")
    summary = page.get_by_test_id("evaluation-summary")
    expect(summary).to_contain_text(f"at IoU 0.5: {on_val.num_rows} TP, 0 FP, 0 FN")
    expect(summary).to_contain_text("on split val")
    expect(page.get_by_test_id("evaluation-warning")).to_have_count(0)
    page.context.close()
