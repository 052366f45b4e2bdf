"""Label edits on the real corpus: each request one batch in the log with every label before
and after; undo, redo and revert restore exactly; readers (samples, counts, export) see the
edits; bad edits change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from conftest import Server, ingest, run_cli
from playwright.sync_api import Browser, Page, expect

from visor.errors import Conflict, InvalidInput, NotFound
from visor.store import Store
from visor.store.samples import SampleFilter
from visor.synthetic import write_map
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"


def labels_now(ws: Workspace) -> list[tuple]:
    return ws.store.query(
        "SELECT id, sample_id, class, x, y, w, h FROM labels ORDER BY id"
    )  # every label as it is


def classes(ws: Workspace, name: str) -> dict[str, int]:
    return {c["class"]: c["labels"] for c in ws.dataset(name).info()["classes"]}


def test_a_batch_that_changes_a_label_twice(workspace: Workspace) -> None:
    """A batch's labels are read and written at once: a label changed twice in it ends as the
    last change leaves it, each change logged with what it found; one deleted earlier in the
    batch can't be changed later in it, and then nothing is."""
    ingest(workspace, DATA / "yolo_roboflow_trees", "yolo")
    ds = workspace.dataset("yolo")
    original = labels_now(workspace)
    label = next(r[0] for r in original if r[2] == "Tree")
    twice = [{"action": "set_class", "label_id": label, "class": c} for c in ("Dead", "Alive")]
    done = ds.edits.apply(twice)
    assert done["changes"] == 2 and classes(workspace, "yolo") == {
        "Tree": 62,
        "Dead": 29,
        "Alive": 10,
    }
    rows = ds.edits.batch(done["batch"])
    assert [(r["before"]["class"], r["after"]["class"]) for r in rows] == [
        ("Tree", "Dead"), ("Dead", "Alive"),
    ]  # fmt: skip
    gone = [{"action": "delete", "label_id": label}, {**twice[0], "class": "Tree"}]
    with pytest.raises(NotFound, match="deleted by this same edit"):
        ds.edits.apply(gone)
    assert classes(workspace, "yolo") == {"Tree": 62, "Dead": 29, "Alive": 10}
    ds.edits.undo()
    assert labels_now(workspace) == original
    # Among the samples a filter keeps: every Dead box is in split val, none in train.
    assert ds.edits.relabel("Dead", "Snag", SampleFilter(split="val"))["changes"] == 29
    with pytest.raises(InvalidInput, match="no ground-truth label of class 'Alive'"):
        ds.edits.relabel("Alive", "Live", SampleFilter(split="train"))


def test_edits_undo_redo_and_revert(workspace: Workspace) -> None:
    ingest(workspace, DATA / "yolo_roboflow_trees", "yolo")
    ds = workspace.dataset("yolo")
    original = labels_now(workspace)
    assert classes(workspace, "yolo") == {"Tree": 63, "Dead": 29, "Alive": 9}
    first = original[0]
    one = ds.edits.set_class(first[0], "Dead")
    assert one["changes"] == 1 and one["samples"] == [first[1]]
    assert classes(workspace, "yolo") == {"Tree": 62, "Dead": 30, "Alive": 9}
    sample = ds.sample(first[1])
    assert "Dead" in sample["classes"]
    ds.edits.delete(original[1][0])
    ds.edits.add(first[1], "Alive", [10, 20, 30, 40])
    assert ds.sample(first[1])["num_labels"] == len([r for r in original if r[1] == first[1]])
    bulk = ds.edits.relabel("Alive", "Living")
    assert bulk["changes"] == 10  # 9 + the added one
    assert classes(workspace, "yolo")["Living"] == 10
    assert workspace.dataset("yolo").row["categories"] == ["Dead", "Living", "Tree"]
    history = ds.edits.history()
    assert [h["batch"] for h in history] == [4, 3, 2, 1]
    rows = ds.edits.batch(1)
    assert rows[0]["before"]["class"] == "Tree" and rows[0]["after"]["class"] == "Dead"
    # Undo twice, redo once.
    assert ds.edits.undo() == {"batch": 4, "state": "undone", "changes": 10}
    assert ds.edits.undo()["batch"] == 3
    deleted = {"Tree": 0, "Dead": 0, "Alive": 0, original[1][2]: 1}  # edit 2 deleted one
    expected = {"Tree": 62 - deleted["Tree"], "Dead": 30 - deleted["Dead"], "Alive": 9}
    assert classes(workspace, "yolo") == expected
    assert ds.edits.redo()["batch"] == 3
    # A new edit ends what could be redone.
    ds.edits.set_class(original[5][0], "Dead")
    with pytest.raises(Conflict, match="nothing to redo"):
        ds.edits.redo()
    # Revert edit 1 alone (nothing later touched its label).
    assert ds.edits.revert(1)["state"] == "undone"
    now = {r[0]: r for r in labels_now(workspace)}
    assert now[first[0]] == first
    # Undo everything: the labels are the originals again.
    while any(h["state"] == "done" for h in ds.edits.history()):
        ds.edits.undo()
    assert labels_now(workspace) == original
    assert classes(workspace, "yolo") == {"Tree": 63, "Dead": 29, "Alive": 9}
    with pytest.raises(Conflict, match="nothing to undo"):
        ds.edits.undo()


def test_bad_edits_change_nothing(workspace: Workspace) -> None:
    ingest(workspace, DATA / "yolo_roboflow_trees", "yolo")
    ds = workspace.dataset("yolo")
    original = labels_now(workspace)
    gone = original[0][0]
    ds.edits.delete(gone)
    with pytest.raises(Conflict, match=f"label {gone} was deleted by edit 1"):
        ds.edits.set_class(gone, "Tree")
    with pytest.raises(NotFound, match="label 999999 not found"):
        ds.edits.delete(999999)
    with pytest.raises(InvalidInput, match="class ''"):
        ds.edits.set_class(original[1][0], "")
    with pytest.raises(InvalidInput, match="zero or negative size"):
        ds.edits.add(original[1][1], "Tree", [1, 1, 0, 5])
    # A batch is all or nothing: its second change fails, its first is not made.
    with pytest.raises(NotFound):
        ds.edits.apply([
            {"action": "set_class", "label_id": original[2][0], "class": "Dead"},
            {"action": "delete", "label_id": 424242},
        ])  # fmt: skip
    assert labels_now(workspace) == original[1:]
    assert len(ds.edits.history()) == 1
    with pytest.raises(
        Conflict, match="edit 4 changed the same labels after edit 2: revert it first"
    ):
        ds.edits.set_class(original[3][0], "Dead")
        ds.edits.apply([{"action": "add", "sample_id": original[0][1], "class": "Tree"}])
        ds.edits.set_class(original[3][0], "Alive")  # edit 4 also touches label original[3]
        ds.edits.revert(2)
    with pytest.raises(InvalidInput, match="edit action 'paint'"):
        ds.edits.apply([{"action": "paint", "sample_id": 1}])


def test_image_classes_exclusions_and_export_see_the_edits(
    workspace: Workspace, tmp_path: Path
) -> None:
    ingest(workspace, DATA / "classification_trees", "trees")
    ds = workspace.dataset("trees")
    _, dead = ds.samples(SampleFilter(category="Dead"), limit=3)
    for sample in dead[:2]:
        ds.edits.set_image_class(sample["id"], "Tree")
    ds.edits.exclude(dead[2]["id"])
    assert "excluded" in ds.sample(dead[2]["id"])["flags"]
    assert classes(workspace, "trees") == {"Tree": 63, "Dead": 26, "Alive": 9}
    result = ds.export(str(tmp_path / "out"), "classification", wait=True)["result"]
    assert result["samples"] == 97  # the excluded one stays out
    assert len(list((tmp_path / "out").glob("*/Dead/*"))) == 25
    assert len(list((tmp_path / "out").glob("*/Tree/*"))) == 63
    ds.edits.undo()  # the exclusion
    assert "excluded" not in ds.sample(dead[2]["id"])["flags"]


def test_accepting_suggested_classes(workspace: Workspace) -> None:
    ingest(workspace, DATA / "classification_trees", "trees")
    ds = workspace.dataset("trees")
    _, samples = ds.samples(limit=1000)
    (label,) = ds.labels(samples[0]["id"])
    workspace.store.cursor().execute(
        "INSERT INTO label_quality VALUES (?, ?, ?, 'm', 0.01, true, ?, 'Alive', 0.9)",
        [ds.id, label["id"], samples[0]["id"], label["class"]],
    )
    done = ds.edits.accept_suggestions([label["id"]])
    assert ds.labels(samples[0]["id"])[0]["class"] == "Alive"
    # The verdict was about the old class: it is gone with it.
    assert "label_quality" not in ds.labels(samples[0]["id"])[0]
    assert ds.edits.batch(done["batch"])[0]["before"]["class"] == label["class"]
    with pytest.raises(NotFound, match="no suggested class"):
        ds.edits.accept_suggestions([samples[1]["id"] * 0 + 999999])


def map_classes(client: httpx.Client) -> set[str]:
    """The classes of the default map's points, as the server sends them to the UI."""
    points = pa.ipc.open_stream(client.get("/api/datasets/voc/maps/default/points").content)
    table = points.read_all()
    legend = json.loads(table.schema.metadata[b"visor:legend"])["class"]
    return {legend[code] for code in table.column("class").to_pylist() if code}


def test_edits_from_the_cli_and_http(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(DATA / "voc_trees"), "--name", "voc").returncode == 0
    done = run_cli(home, "relabel", "voc", "--from", "Dead", "--to", "Snag")
    assert done.returncode == 0, done.stderr
    assert "edit 1: 28 labels Dead -> Snag" in done.stdout
    done = run_cli(home, "edit", "voc", "1", "--class", "Snag")
    assert done.returncode == 0 and "edit 2: 1 change(s)" in done.stdout
    listing = run_cli(home, "edits", "voc").stdout
    assert "set_class" in listing and "done" in listing
    shown = run_cli(home, "edits", "voc", "--show", "2").stdout
    assert "set_class label 1 of sample" in shown and "-> Snag" in shown
    assert "edit 2 undone" in run_cli(home, "edits", "voc", "--undo").stdout
    bad = run_cli(home, "edit", "voc", "1")
    assert bad.returncode == 1 and "give either --class NEW or --delete" in bad.stdout + bad.stderr
    store = Store(home / "visor.duckdb")
    write_map(store, 1, np.array([[0.0, 0.0], [1.0, 1.0]]))  # its 2 images
    store.close()
    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            made = client.post(
                "/api/datasets/voc/edit",
                json={"changes": [{"action": "delete", "label_id": 2}], "who": "test"},
            )
            assert made.status_code == 200 and made.json()["batch"] == 3
            again = client.post(
                "/api/datasets/voc/edit", json={"changes": [{"action": "delete", "label_id": 2}]}
            )
            assert (
                again.status_code == 409 and "deleted by edit 3" in again.json()["error"]["message"]
            )
            assert client.post("/api/datasets/voc/undo").json()["batch"] == 3
            assert client.post("/api/datasets/voc/redo").json()["batch"] == 3
            history = client.get("/api/datasets/voc/edits").json()
            assert [h["state"] for h in history] == ["done", "dropped", "done"]
        # The CLI goes through the server: the same log.
        assert "edit 3 undone" in run_cli(home, "edits", "voc", "--undo").stdout
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            # The map's points carry each sample's first class: an edit through the server is
            # drawn, not the points it had encoded before (they once stayed until a tag).
            assert "Alive" in map_classes(client)
            relabelled = client.post(
                "/api/datasets/voc/relabel", json={"from_class": "Alive", "to_class": "Live"}
            )
            assert relabelled.status_code == 200, relabelled.text
            assert "Live" in map_classes(client) and "Alive" not in map_classes(client)
    finally:
        server.stop()


@pytest.fixture
def served(tmp_path: Path, browser: Browser) -> Iterator[tuple[Server, Page]]:
    """The YOLO corpus as dataset "y" behind a server, and a browser page."""
    home = tmp_path / "home"
    done = run_cli(home, "ingest", str(DATA / "yolo_roboflow_trees"), "--name", "y")
    assert done.returncode == 0
    server = Server(home).start()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        yield server, context.new_page()
    finally:
        context.close()
        server.stop()


def test_edits_in_the_sample_view(served: tuple[Server, Page]) -> None:
    server, page = served
    page.goto(server.url + "/?dataset=y&sample=1")
    dialog = page.get_by_role("dialog")
    first = dialog.locator("input.class-input").first
    expect(first).to_be_visible()
    label = int((first.get_attribute("aria-label") or "").rsplit(" ", 1)[1])
    before = first.input_value()
    other = "Dead" if before != "Dead" else "Tree"
    first.fill(other)
    first.press("Enter")
    expect(dialog.get_by_test_id("edit-note")).to_have_text("edit 1 saved")
    expect(dialog.get_by_label(f"class of label {label}", exact=True)).to_have_value(other)
    with httpx.Client(base_url=server.url) as client:
        (row,) = client.get("/api/datasets/y/edits/1").json()
        assert (row["before"]["class"], row["after"]["class"]) == (before, other)
    # Undo with the keyboard, redo with the button.
    dialog.locator("h2").click()
    page.keyboard.press("Control+z")
    expect(dialog.get_by_test_id("edit-note")).to_have_text("edit 1 undone")
    expect(dialog.get_by_label(f"class of label {label}", exact=True)).to_have_value(before)
    dialog.get_by_role("button", name="Redo").click()
    expect(dialog.get_by_test_id("edit-note")).to_have_text("edit 1 done")
    # Delete a box: one fewer rectangle.
    boxes = dialog.locator("svg.boxes rect")
    with httpx.Client(base_url=server.url) as client:
        labels = client.get("/api/datasets/y/samples/1").json()["labels"]
    count = sum(1 for row in labels if row["bbox"] is not None)
    expect(boxes).to_have_count(count)  # drawn once the picture has loaded (and after the redo)
    dialog.get_by_role("button", name=f"delete label {label}", exact=True).click()
    expect(boxes).to_have_count(count - 1)
    # Draw a box: pick its class, drag over the picture.
    new_class = dialog.get_by_label("class of a new box")
    new_class.fill("Alive")
    new_class.press("Enter")
    expect(dialog.get_by_role("button", name="Drawing Alive boxes (stop)")).to_be_visible()
    picture = dialog.get_by_test_id("picture").locator("img")
    area = picture.bounding_box()
    assert area is not None
    page.mouse.move(area["x"] + area["width"] * 0.25, area["y"] + area["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.75, steps=5)
    page.mouse.up()
    expect(dialog.get_by_test_id("edit-note")).to_have_text("edit 3 saved")
    with httpx.Client(base_url=server.url) as client:
        (added,) = client.get("/api/datasets/y/edits/3").json()
        sample = client.get("/api/datasets/y/samples/1").json()
    box = added["after"]
    assert added["action"] == "add" and box["class"] == "Alive" and box["source"] == "edit"
    width, height = sample["width"], sample["height"]
    assert abs(box["x"] - width * 0.25) < 3 and abs(box["y"] - height * 0.25) < 3
    assert abs(box["w"] - width * 0.25) < 3 and abs(box["h"] - height * 0.5) < 3
    expect(boxes).to_have_count(count)  # one deleted, one drawn
    dialog.get_by_role("button", name="Exclude from exports").click()
    expect(dialog.get_by_role("button", name="Take back into exports")).to_be_visible()


def test_relabel_the_picked_samples_from_the_grid(served: tuple[Server, Page]) -> None:
    server, page = served
    page.goto(server.url + "/?dataset=y&split=train")
    expect(page.get_by_test_id("count")).to_have_text("4 samples")
    grid = page.get_by_test_id("grid")
    grid.locator("input.pick").nth(0).check()
    grid.locator("input.pick").nth(1).check()
    ids = [
        int(i)
        for i in grid.locator("figure.picked").evaluate_all("els => els.map(e => e.dataset.id)")
    ]
    with httpx.Client(base_url=server.url) as client:
        expected = sum(
            1 for s in ids
            for label in client.get(f"/api/datasets/y/samples/{s}").json()["labels"]
            if label["class"] == "Tree" and label["kind"] == "gt"
        )  # fmt: skip
    bar = page.get_by_test_id("relabel")
    bar.get_by_label("relabel from").select_option("Tree")
    bar.get_by_label("relabel to").fill("Snag")
    bar.get_by_role("button", name="Relabel").click()
    expect(bar.get_by_test_id("relabel-note")).to_have_text(
        f"edit 1: {expected} labels Tree → Snag"
    )
    with httpx.Client(base_url=server.url) as client:
        classes = {c["class"]: c["labels"] for c in client.get("/api/datasets/y").json()["classes"]}
    assert expected > 0 and classes["Snag"] == expected and classes["Tree"] == 63 - expected
