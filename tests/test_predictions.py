"""Predictions in the formats detectors write: YOLO .txt files named by the dataset's classes,
COCO results of one split of a Roboflow export, Ultralytics' predictions.json; bad ones skipped
or refused with nothing half-written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from box_corpus import DATA, box_corpus, store_of, stored_boxes

from visor.errors import Conflict, InvalidInput, NotFound
from visor.workspace import Workspace


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = box_corpus(tmp_path_factory.mktemp("predictions"))
    yield ws
    ws.close()


def test_yolo_prediction_files_are_read_with_the_dataset_class_names(
    corpus: Workspace, tmp_path: Path
) -> None:
    ds = corpus.dataset("yolo_roboflow_trees")
    folder = tmp_path / "predict" / "labels"
    folder.mkdir(parents=True)
    gt = stored_boxes(ds, "gt")
    sizes = dict(
        store_of(ds).query("SELECT id, [width, height] FROM samples WHERE dataset_id = ?", [ds.id])
    )
    names = ["Alive", "Dead", "Tree"]  # data.yaml's order
    lines: dict[str, list[str]] = {}
    for n in range(len(gt["id"])):
        w, h = sizes[gt["sample_id"][n]]
        cx, cy = (gt["x"][n] + gt["w"][n] / 2) / w, (gt["y"][n] + gt["h"][n] / 2) / h
        stem = Path(gt["path"][n]).stem
        lines.setdefault(stem, []).append(
            f"{names.index(gt['class'][n])} {cx} {cy} {gt['w'][n] / w} {gt['h'][n] / h} 0.8"
        )
    for stem, text in lines.items():
        (folder / f"{stem}.txt").write_text("\n".join(text) + "\n")
    (folder / "unknown_image.txt").write_text("0 0.5 0.5 0.1 0.1 0.9\n")
    with open(folder / f"{next(iter(lines))}.txt", "a") as f:
        f.write("7 0.5 0.5 0.1 0.1 0.9\n0 0.5 0.5 0.1 0.1 1.5\n0 0.5 0.5\n")
    report = ds.import_predictions(str(folder), "yolo")
    assert report["predictions"] == len(gt["id"]) == 101
    assert report["skipped_count"] == 4
    reasons = " | ".join(s["reason"] for s in report["skipped"])
    assert "unknown image 'unknown_image'" in reasons
    assert "class index 7" in reasons and "outside [0, 1]" in reasons
    assert "expected 6 columns" in reasons
    assert ds.evaluate("yolo", wait=True)["state"] == "done"
    metrics = ds.evaluations.get("yolo")["metrics"]
    assert metrics["counts"]["tp"] == 101 and metrics["counts"]["fp"] == 0


def test_bad_predictions_are_skipped_or_refused_and_nothing_is_half_written(
    corpus: Workspace, tmp_path: Path
) -> None:
    ds = corpus.dataset("coco_roboflow_trees")
    sample = stored_boxes(ds, "gt")["path"][0]
    rows = {
        "file_name": [sample, "nowhere.jpg", sample, sample, sample, sample, sample],
        "class": ["Tree", "Tree", "Cat", "Tree", "Tree", "Tree", "Tree"],
        "x": [1.0, 1, 1, float("nan"), 1, 1, 1],
        "y": [1.0, 1, 1, 1, 1, 1, 1],
        "w": [5.0, 5, 5, 5, -2, 5, 5],
        "h": [5.0, 5, 5, 5, 5, 5, 5],
        "score": [0.5, 0.5, 0.5, 0.5, 0.5, 1.5, None],
    }
    pcsv.write_csv(pa.table(rows), tmp_path / "bad.csv")
    report = ds.import_predictions(str(tmp_path / "bad.csv"), "bad")
    assert report["predictions"] == 1 and report["skipped_count"] == 6
    reasons = [s["reason"] for s in report["skipped"]]
    assert "unknown image 'nowhere.jpg'" in reasons[0]
    assert reasons[1] == "unknown class 'Cat'"
    assert any("outside [0, 1]" in r for r in reasons)
    assert [s["path"] for s in report["skipped"]][:2] == ["bad.csv row 2", "bad.csv row 3"]

    with pytest.raises(Conflict, match="already has predictions from 'bad'"):
        ds.import_predictions(str(tmp_path / "bad.csv"), "bad")
    (tmp_path / "empty.csv").write_text("file_name,class,x,y,w,h,score\n")
    with pytest.raises(InvalidInput, match="no predictions could be imported"):
        ds.import_predictions(str(tmp_path / "empty.csv"), "bad", replace=True)
    assert ds.prediction_sources()["bad"] == 1  # the failed replacement changed nothing
    (tmp_path / "cols.csv").write_text("file_name,x\na.jpg,1\n")
    with pytest.raises(Exception, match="missing column"):
        ds.import_predictions(str(tmp_path / "cols.csv"), "other")

    # COCO results: duplicate ids, scores missing or out of range, unknown images.
    coco_id, split = store_of(ds).query_one(
        "SELECT json_extract(metadata, '$.coco_id'), split FROM samples WHERE dataset_id = ? "
        "ORDER BY id LIMIT 1",
        [ds.id],
    )
    coco_id = json.loads(coco_id)
    category = int(next(iter(ds.row["report"]["coco_categories"])))
    det = {"image_id": coco_id, "category_id": category, "bbox": [1, 1, 5, 5], "score": 0.5}
    results = [
        {**det, "id": 1},
        {**det, "id": 1},
        {**det, "score": None},
        {**det, "score": -0.1},
        {**det, "image_id": 99999},
        {**det, "bbox": [1, 1, 0, 5]},
    ]
    (tmp_path / "results.json").write_text(json.dumps(results))
    report = ds.import_predictions(str(tmp_path / "results.json"), "coco-results", split=split)
    assert report["predictions"] == 1 and report["skipped_count"] == 5
    text = " | ".join(s["reason"] for s in report["skipped"])
    for reason in (
        "duplicate prediction id 1",
        "without score",
        "not a number in [0, 1]",
        "unknown image_id 99999",
        "zero or negative",
    ):
        assert reason in text, text
    with pytest.raises(NotFound, match="no predictions from 'nothing'"):
        ds.evaluate("nothing")


def test_coco_results_of_one_split_of_a_roboflow_export(corpus: Workspace, tmp_path: Path) -> None:
    """Roboflow writes one annotation file per split, each numbering its images from 0: a
    results file's image_id 0 could be any of three images. It is refused without --split,
    and with it every prediction lands on the image of that split's file."""
    ds = corpus.dataset("coco_roboflow_trees")
    valid = json.loads((DATA / "coco_roboflow_trees/valid/_annotations.coco.json").read_text())
    results = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in valid["annotations"]
    ]
    path = tmp_path / "valid_results.json"
    path.write_text(json.dumps(results))
    with pytest.raises(InvalidInput) as refused:
        ds.import_predictions(str(path), "valid-gt")
    message = str(refused.value)
    assert "COCO image ids of dataset 'coco_roboflow_trees' name more than one image" in message
    assert "image_id 0: 3 images, in test, train, val" in message
    assert "pass --split S" in message and "(splits: test, train, val)" in message
    assert "valid-gt" not in ds.prediction_sources()  # nothing half-imported
    with pytest.raises(InvalidInput, match="has no COCO images in split 'valid'"):
        ds.import_predictions(str(path), "valid-gt", split="valid")
    report = ds.import_predictions(str(path), "valid-gt", split="val")
    assert report["predictions"] == len(results) and report["skipped_count"] == 0
    assert report["images"] == 2
    # The same boxes on the same files as the ground truth of valid/.
    names = {i["id"]: i["file_name"] for i in valid["images"]}
    expected = sorted(
        (names[a["image_id"]], *(round(v, 3) for v in a["bbox"])) for a in valid["annotations"]
    )
    got = stored_boxes(ds, "prediction", "valid-gt")
    files = [Path(p).name for p in got["path"]]
    boxes = zip(got["x"], got["y"], got["w"], got["h"], strict=True)
    assert (
        sorted((f, *(round(v, 3) for v in box)) for f, box in zip(files, boxes, strict=True))
        == expected
    )
    # Scored on val alone, the ground truth as predictions is perfect; over the whole
    # dataset the train and test boxes, which the model never saw, count as missed.
    on_val = ds.evaluate("valid-gt", name="valid-gt-val", split="val", wait=True)["result"]
    assert on_val["split"] == "val"
    assert on_val["counts"]["tp"] == len(results) and on_val["counts"]["fn"] == 0
    assert on_val["summary"]["AP"] == pytest.approx(1.0)
    assert on_val["warning"] is None
    everywhere = ds.evaluate("valid-gt", name="valid-gt-all", wait=True)["result"]
    assert everywhere["counts"]["fn"] == 461 - len(results)
    # ... as pycocotools counts them; said, with the split to evaluate instead.
    warning = (
        f"valid-gt has predictions on images of split val only: the {461 - len(results)} "
        "ground-truth boxes on the 10 images of splits test, train count as missed; evaluate "
        "on split val alone (--split val) to score only the images it ran on"
    )
    assert everywhere["warning"] == warning
    metrics = ds.evaluations.get("valid-gt-all")["metrics"]
    assert (metrics["warning"], metrics["predicted_splits"]) == (warning, ["val"])
    listed = {e["name"]: e["params"].get("split") for e in ds.evaluations.list()}
    assert listed["valid-gt-val"] == "val" and listed["valid-gt-all"] is None
    with pytest.raises(
        InvalidInput, match=r"has no split 'valid' \(its splits: test, train, val\)"
    ):
        ds.evaluate("valid-gt", split="valid", wait=True)
    (tmp_path / "x.csv").write_text("file_name,class,x,y,w,h,score\n")
    with pytest.raises(InvalidInput, match="only COCO results need one"):
        ds.import_predictions(str(tmp_path / "x.csv"), "t", split="val")


def test_ultralytics_predictions_json_on_a_yolo_dataset(corpus: Workspace, tmp_path: Path) -> None:
    """`yolo val save_json=True` writes COCO results whose image_id is the file's stem, with
    the file's name beside it, and category_id the class index + 1: on a YOLO dataset (no
    COCO ids) the images are found by file name and the classes by data.yaml's names."""
    ds = corpus.dataset("yolo_roboflow_trees")
    names = ["Alive", "Dead", "Tree"]  # data.yaml's order
    gt = stored_boxes(ds, "gt")
    results = [
        {
            "image_id": Path(path).stem,
            "file_name": Path(path).name,
            "category_id": names.index(cls) + 1,
            "bbox": [x, y, w, h],
            "score": 0.8,
        }
        for path, cls, x, y, w, h in zip(
            gt["path"], gt["class"], gt["x"], gt["y"], gt["w"], gt["h"], strict=True
        )
    ]
    extra = {**results[0], "image_id": "nowhere", "file_name": "nowhere.jpg"}
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps([*results, extra]))
    report = ds.import_predictions(str(path), "ultralytics")
    assert report["predictions"] == 101 and report["images"] == 6  # SOAP_031 has no box
    assert report["skipped_count"] == 1
    assert report["skipped"][0]["reason"] == "entry 101: unknown image 'nowhere.jpg'"
    got = stored_boxes(ds, "prediction", "ultralytics")
    key = ("path", "class", "x", "y", "w", "h")
    assert sorted(zip(*(got[k] for k in key), strict=True)) == sorted(
        zip(*(gt[k] for k in key), strict=True)
    )
    with pytest.raises(InvalidInput, match="no split is needed"):
        ds.import_predictions(str(path), "other", split="val")
    path.write_text(json.dumps([{k: v for k, v in r.items() if k != "file_name"} for r in results]))
    with pytest.raises(InvalidInput, match="or a file_name in every entry"):
        ds.import_predictions(str(path), "other")


def test_ultralytics_predictions_json_on_a_coco_dataset(corpus: Workspace, tmp_path: Path) -> None:
    """The same file on a dataset ingested from COCO (a Roboflow export, whose splits each
    number their images from 0): the stems are no COCO ids, so the file names find the
    images; the model's classes can't be told from the COCO categories (Roboflow adds a
    supercategory 0), so --names is asked for, and with it the boxes come back exactly."""
    ds = corpus.dataset("coco_roboflow_trees")
    gt = stored_boxes(ds, "gt")
    names = ["Tree"]  # the model's data.yaml
    results = [
        {"image_id": Path(path).stem, "file_name": Path(path).name,
         "category_id": names.index(cls) + 1, "bbox": [x, y, w, h], "score": 0.7}
        for path, cls, x, y, w, h in zip(
            gt["path"], gt["class"], gt["x"], gt["y"], gt["w"], gt["h"], strict=True
        )
    ]  # fmt: skip
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(results))
    with pytest.raises(InvalidInput, match=r"pass --names with the model's data\.yaml"):
        ds.import_predictions(str(path), "ultralytics")
    with pytest.raises(InvalidInput, match="found by their file_name; no split is needed"):
        ds.import_predictions(str(path), "ultralytics", split="train")
    (tmp_path / "data.yaml").write_text("names: [Tree]\n")
    report = ds.import_predictions(str(path), "ultralytics", names=str(tmp_path / "data.yaml"))
    assert report["predictions"] == 461 and report["images"] == 12 and not report["skipped_count"]
    got = stored_boxes(ds, "prediction", "ultralytics")
    key = ("path", "class", "x", "y", "w", "h")
    assert sorted(zip(*(got[k] for k in key), strict=True)) == sorted(
        zip(*(gt[k] for k in key), strict=True)
    )


def test_coco_results_read_as_columns_equal_those_read_entry_by_entry(
    corpus: Workspace, tmp_path: Path
) -> None:
    """A results file whose every entry is well-formed is decoded straight into columns; one
    irregular entry sends it through the entry-by-entry reading, which says why that entry
    is skipped. Both give the same predictions, value for value."""
    ds = corpus.dataset("coco_roboflow_trees")
    train = json.loads((DATA / "coco_roboflow_trees/train/_annotations.coco.json").read_text())
    results = [
        {"id": 1000 + i, "image_id": a["image_id"], "category_id": a["category_id"],
         "bbox": a["bbox"], "score": (i % 97) / 96, "area": 1.0}
        for i, a in enumerate(train["annotations"])
    ]  # fmt: skip
    # An entry on an image the dataset lacks is skipped either way, in the same words.
    results.insert(10, {**results[10], "id": 1, "image_id": 99999})
    clean, odd = tmp_path / "clean.json", tmp_path / "odd.json"
    clean.write_text(json.dumps(results))
    odd.write_text(json.dumps([*results, {**results[0], "id": 2, "score": 2}]))
    from visor.formats.coco import result_columns
    from visor.sources import Source

    assert result_columns(Source(str(tmp_path)), "clean.json") is not None  # read as columns
    fast = ds.import_predictions(str(clean), "columns", split="train")
    slow = ds.import_predictions(str(odd), "entries", split="train")
    assert fast["predictions"] == slow["predictions"] == len(results) - 1 == 285
    assert fast["skipped_count"] == 1 and slow["skipped_count"] == 2
    assert fast["skipped"] == [{"path": "clean.json", "reason": "entry 10: unknown image_id 99999"}]
    assert slow["skipped"][0] == {**fast["skipped"][0], "path": "odd.json"}
    assert slow["skipped"][1]["reason"] == "entry 286: score 2 is not a number in [0, 1]"
    by_columns, by_entries = (
        stored_boxes(ds, "prediction", "columns"),
        stored_boxes(ds, "prediction", "entries"),
    )
    for key in ("sample_id", "class", "x", "y", "w", "h", "score"):
        assert by_columns[key] == by_entries[key], key
    assert by_columns["score"][:3] == [0.0, 1 / 96, 2 / 96]
