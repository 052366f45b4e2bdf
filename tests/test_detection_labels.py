"""cleanlab's object-detection label check against a model's predictions, on the real YOLO
corpus: predictions that agree with every label but three planted disagreements (a box of
another class, a box elsewhere, a box the labels lack) flag exactly those three images, each
with the box and the kind of problem; filter, sort, CLI, HTTP and the sample view."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import httpx
from conftest import Server, ingest, run_cli, wait_job
from playwright.sync_api import Browser, expect

from visor.config import Settings
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"
FORKS = [0]  # processes forked by this process so far
os.register_at_fork(before=lambda: FORKS.__setitem__(0, FORKS[0] + 1))


def planted_predictions(ws: Workspace, out: Path) -> dict[str, int]:
    """A predictions table equal to the labels of dataset "yolo" (score 0.99) except: the 4th
    box of the first image called another class, the 5th box of the second image moved by
    60% of its size, and one extra box on an empty spot of the third image."""
    rows = ws.store.query(
        "SELECT l.id, l.sample_id, s.path, l.class, l.x, l.y, l.w, l.h FROM labels l "
        "JOIN samples s ON s.dataset_id = l.dataset_id AND s.id = l.sample_id "
        "WHERE l.x IS NOT NULL ORDER BY l.sample_id, l.id"
    )
    by_sample: dict[int, list] = {}
    for row in rows:
        by_sample.setdefault(row[1], []).append(row)
    first, second, third = sorted(by_sample)[:3]
    swapped, moved = by_sample[first][3][0], by_sample[second][4][0]

    def free(x: int, y: int) -> bool:
        return all(
            x + 30 < bx or bx + bw < x or y + 30 < by or by + bh < y
            for (_, _, _, _, bx, by, bw, bh) in by_sample[third]
        )

    spot = next((x, y) for y in range(0, 370, 10) for x in range(0, 370, 10) if free(x, y))
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "class", "x", "y", "w", "h", "score"])
        for label_id, _, path, cls, x, y, w, h in rows:
            if label_id == swapped:
                cls = "Dead" if cls != "Dead" else "Tree"
            if label_id == moved:
                x, y = x + 0.6 * w, y + 0.6 * h
            writer.writerow([path, cls, x, y, w, h, 0.99])
        writer.writerow([by_sample[third][0][2], "Tree", *spot, 30, 30, 0.99])
    return {"swap": swapped, "badloc": moved, "overlooked_in": third, "first": first,
            "second": second}  # fmt: skip


def test_the_detection_check_finds_the_three_planted_disagreements(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    ingest(ws, DATA / "yolo_roboflow_trees", "yolo")
    ds = ws.dataset("yolo")
    planted = planted_predictions(ws, tmp_path / "predictions.csv")
    assert ds.import_predictions(str(tmp_path / "predictions.csv"), "model")["predictions"] == 102
    forks_before = FORKS[0]
    result = ds.find_detection_label_errors("model", wait=True)["result"]
    assert (result["images"], result["flagged"]) == (6, 3)
    # No process was forked for it (cleanlab's own pool would fork one: in a server, whose
    # threads hold locks, the child can hang forever).
    assert FORKS[0] == forks_before
    assert result["boxes_flagged"]["swap"] == 1 and result["boxes_flagged"]["overlooked"] == 1
    first = ds.sample(planted["first"])["detection_check"]
    assert first["issue"] and first["boxes"][0]["label_id"] == planted["swap"]
    assert first["boxes"][0]["signal"] == "swap"
    second = ds.sample(planted["second"])["detection_check"]
    assert [(b["label_id"], b["signal"]) for b in second["boxes"]] == [
        (planted["badloc"], "badloc")
    ]
    third = ds.sample(planted["overlooked_in"])["detection_check"]
    (extra,) = third["boxes"]
    assert extra["signal"] == "overlooked" and extra["kind"] == "prediction"
    # Filter and sort: exactly the three, worst first.
    total, flagged = ds.samples(SampleFilter(detection_issue=True), limit=10)
    assert total == 3
    assert {s["id"] for s in flagged} == {
        planted["first"],
        planted["second"],
        planted["overlooked_in"],
    }
    _, worst = ds.samples(sort="detection_quality", limit=1)
    assert worst[0]["id"] == planted["first"]  # the swapped class scores lowest
    rows = {r["kind"]: r for r in ds.health()["rows"]}
    assert rows["detection_label_errors"]["count"] == 3
    assert rows["detection_label_errors"]["filter"] == {"detection_issue": True}
    # On one split: only its images are scored, and the planted ones among them are found.
    planted_in = [ds.sample(planted[k])["split"] for k in ("first", "second", "overlooked_in")]
    for split, images in (("train", 4), ("val", 2)):
        on_split = ds.find_detection_label_errors("model", split=split, wait=True)["result"]
        assert (on_split["images"], on_split["flagged"]) == (images, planted_in.count(split))
        assert on_split["split"] == split
    try:
        ds.find_detection_label_errors("model", split="valid")
    except Exception as e:
        assert "has no split 'valid' (its splits: test, train, val)" in str(e)
    else:
        raise AssertionError("an unknown split was accepted")
    assert ds.find_detection_label_errors("model", wait=True)["result"]["flagged"] == 3
    missing = ds.find_detection_label_errors
    try:
        missing("nope")
    except Exception as e:
        assert "no predictions from 'nope' (sources: model)" in str(e)
    else:
        raise AssertionError("an unknown source was accepted")
    ws.close()

    done = run_cli(home, "label-errors", "yolo", "--predictions", "model")
    assert done.returncode == 0, done.stderr
    assert "3 of 6 images flagged by cleanlab's detection check against model" in done.stdout
    assert "1 boxes likely missing, 1 likely of the wrong class" in done.stdout
    assert f"(box {planted['swap']}, score" in done.stdout
    done = run_cli(home, "label-errors", "yolo", "--predictions", "model", "--split", "val")
    assert done.returncode == 0, done.stderr
    assert "of 2 images of split val flagged by cleanlab's detection check" in done.stdout
    done = run_cli(home, "label-errors", "yolo", "--split", "val")
    assert done.returncode == 1 and "split goes with predictions" in done.stderr


def test_the_sample_view_says_what_the_detection_check_found(
    tmp_path: Path, browser: Browser
) -> None:
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    ingest(ws, DATA / "yolo_roboflow_trees", "yolo")
    planted = planted_predictions(ws, tmp_path / "predictions.csv")
    ds = ws.dataset("yolo")
    ds.import_predictions(str(tmp_path / "predictions.csv"), "model")
    ws.close()
    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            job = client.post("/api/datasets/yolo/label-errors", json={"predictions": "model"})
            assert job.status_code == 202
            assert wait_job(client, job.json()["id"])["state"] == "done"
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        page = context.new_page()
        page.goto(server.url + "/?dataset=yolo&detection_issue=1")
        expect(page.get_by_test_id("count")).to_have_text("3 samples")
        page.goto(server.url + f"/?dataset=yolo&sample={planted['first']}")
        said = page.get_by_test_id("detection-check")
        expect(said).to_contain_text("against the predictions of model")
        # Not embedded: the neighbours' place says why there are none (not an error on top).
        expect(page.get_by_test_id("neighbours-note")).to_contain_text(
            "dataset 'yolo' has no vectors yet: run embed first"
        )
        item = said.locator(f"li[data-signal='swap'][data-box='{planted['swap']}']")
        expect(item).to_contain_text("box may be of another class")
        item.get_by_role("button").click()
        assert f"box={planted['swap']}" in page.url
        box = page.get_by_role("dialog").locator(f"rect[data-id='{planted['swap']}']")
        expect(box).to_have_attribute("data-cell", "1")
        context.close()
    finally:
        server.stop()
