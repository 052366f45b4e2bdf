"""Each format is detected and read into the store with its splits, classes and boxes."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ingest, write_image

from visor.workspace import Workspace


def test_coco_dataset_is_ingested_with_splits_boxes_and_metadata(
    workspace: Workspace, demo_root: Path, coco_parsing: str
) -> None:
    job = ingest(workspace, demo_root)
    assert job["state"] == "done", job
    assert job["result"]["format"] == "coco"
    ds = workspace.dataset("ds")
    info = ds.info()
    assert info["num_samples"] == 40
    assert set(info["splits"]) == {"train", "val"}
    coco = json.loads((demo_root / "annotations" / "instances_train.json").read_text())
    first = coco["images"][0]
    _, items = ds.samples(limit=1000)
    sample = next(s for s in items if s["metadata"]["coco_id"] == first["id"])
    assert sample["path"] == f"images/train/{first['file_name']}"
    assert sample["metadata"]["time_of_day"] == first["time_of_day"]
    boxes = sorted(tuple(a["bbox"]) for a in coco["annotations"] if a["image_id"] == first["id"])
    stored = sorted(tuple(lab["bbox"]) for lab in ds.labels(sample["id"]))
    assert stored == [tuple(float(v) for v in b) for b in boxes]


def _yolo(root: Path, names: object) -> Path:
    root.mkdir(parents=True)
    (root / "data.yaml").write_text(json.dumps({"names": names}))
    write_image(root / "images" / "train" / "a.jpg", (200, 100))
    write_image(root / "images" / "val" / "b.jpg", (100, 100))
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.5 0.2\n")
    (root / "labels" / "val" / "b.txt").write_text("0 0.25 0.25 0.5 0.5\n")
    return root


def test_yolo_boxes_are_converted_to_pixels(workspace: Workspace, tmp_path: Path) -> None:
    job = ingest(workspace, _yolo(tmp_path / "y", ["cat", "dog"]))
    assert job["state"] == "done", job
    ds = workspace.dataset("ds")
    _, items = ds.samples(sort="filename")
    assert [(s["filename"], s["split"], s["classes"]) for s in items] == [
        ("a.jpg", "train", ["dog"]),
        ("b.jpg", "val", ["cat"]),
    ]
    assert ds.labels(items[0]["id"])[0]["bbox"] == [50.0, 40.0, 100.0, 20.0]


def test_yolo_names_may_be_a_mapping(workspace: Workspace, tmp_path: Path) -> None:
    job = ingest(workspace, _yolo(tmp_path / "y", {0: "cat", 1: "dog"}))
    assert job["state"] == "done", job
    assert workspace.dataset("ds").info()["categories"] == ["cat", "dog"]


def test_voc_dataset_with_imagesets_splits(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    write_image(root / "JPEGImages" / "0001.jpg", (120, 80))
    write_image(root / "JPEGImages" / "0002.jpg", (120, 80))
    (root / "Annotations").mkdir(parents=True)
    for stem, name in (("0001", "car"), ("0002", "person")):
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>120</width>"
            f"<height>80</height></size><object><name>{name}</name><difficult>1</difficult>"
            "<bndbox><xmin>10</xmin><ymin>20</ymin><xmax>50</xmax><ymax>60</ymax></bndbox>"
            "</object></annotation>"
        )
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("0001\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("0002\n")
    job = ingest(workspace, root)
    assert job["result"]["format"] == "voc"
    ds = workspace.dataset("ds")
    _, items = ds.samples(sort="filename")
    assert [(s["split"], s["classes"]) for s in items] == [("train", ["car"]), ("val", ["person"])]
    label = ds.labels(items[0]["id"])[0]
    assert label["bbox"] == [10.0, 20.0, 40.0, 40.0]
    assert label["flags"] == ["difficult"]


def test_classification_tree_with_splits(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "cls"
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            write_image(root / split / cls / f"{cls}-{split}.jpg")
    job = ingest(workspace, root)
    assert job["result"]["format"] == "classification"
    info = workspace.dataset("ds").info()
    assert info["splits"] == {"train": 2, "val": 2}
    assert {c["class"]: c["samples"] for c in info["classes"]} == {"cat": 2, "dog": 2}


def test_plain_folder_of_images_has_no_labels(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_image(root / "x.png", fmt="PNG")
    write_image(root / "sub" / "y.jpg")
    job = ingest(workspace, root)
    assert job["result"]["format"] == "images"
    assert job["result"]["samples"] == 2 and job["result"]["labels"] == 0


def test_format_can_be_forced(workspace: Workspace, demo_root: Path) -> None:
    job = ingest(workspace, demo_root, fmt="images")
    assert job["result"]["format"] == "images" and job["result"]["labels"] == 0


def test_coco_predictions_are_imported_as_a_source(
    workspace: Workspace, demo_root: Path, tmp_path: Path, coco_parsing: str
) -> None:
    ingest(workspace, demo_root)
    ds = workspace.dataset("ds")
    coco = json.loads((demo_root / "annotations" / "instances_train.json").read_text())
    image_id = coco["images"][0]["id"]
    preds = [
        {"image_id": image_id, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9},
        {"image_id": 999999, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
    ]
    file = tmp_path / "preds.json"
    file.write_text(json.dumps(preds))
    result = ds.import_predictions(str(file), "yolov8n")
    assert result["predictions"] == 1 and result["skipped_count"] == 1
    _, items = ds.samples(limit=1000)
    sample = next(s for s in items if s["metadata"]["coco_id"] == image_id)
    preds_stored = [lab for lab in ds.labels(sample["id"]) if lab["kind"] == "prediction"]
    assert preds_stored == [
        {
            "kind": "prediction",
            "source": "yolov8n",
            "class": "circle",
            "score": 0.9,
            "iscrowd": None,
            "flags": [],
            "bbox": [1.0, 2.0, 30.0, 40.0],
        }
    ]
