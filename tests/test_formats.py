"""Each format is detected and read into the store with its splits, classes and boxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ingest, write_image

from visor.formats.records import split_from_name, split_from_path
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
    preds_stored = [
        {k: v for k, v in lab.items() if k != "id"}
        for lab in ds.labels(sample["id"])
        if lab["kind"] == "prediction"
    ]
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


# -- split names as users have them ------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "split"),
    [
        ("train", "train"),
        ("Training", "train"),
        ("validate", "val"),
        ("Validation", "val"),
        ("valid", "val"),
        ("dev", "val"),
        ("TEST", "test"),
        ("testing", "test"),
        ("trainval", "trainval"),
    ],
)
def test_split_folder_aliases(folder: str, split: str) -> None:
    assert split_from_path(f"{folder}/cat/1.jpg") == split
    assert split_from_name(f"instances_{folder}2017") == split


def test_split_words_are_whole_words() -> None:
    assert split_from_name("contest_photos") is None  # "test" inside a word is not a split
    assert split_from_name("instances_val2017") == "val"
    assert split_from_path("validated/cat/1.jpg") is None


def test_classification_tree_with_validate_and_an_unknown_split(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "cls"
    for split in ("train", "validate", "holdout"):
        for cls in ("cat", "dog"):
            write_image(root / split / cls / f"{cls}-{split}.jpg")
    job = ingest(workspace, root)
    assert job["result"]["format"] == "classification"
    info = workspace.dataset("ds").info()
    assert info["splits"] == {"holdout": 2, "train": 2, "val": 2}
    assert {c["class"]: c["samples"] for c in info["classes"]} == {"cat": 3, "dog": 3}


def test_voc_trainval_and_precedence_of_train_and_val(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    for stem in ("a", "b", "c"):
        write_image(root / "JPEGImages" / f"{stem}.jpg")
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><object><name>car</name><bndbox>"
            "<xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>"
        )
    sets = root / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "trainval.txt").write_text("a\nb\n")
    (sets / "train.txt").write_text("a\n")
    (sets / "Test.txt").write_text("c\n")
    (sets / "car_trainval.txt").write_text("a 1\nb 1\n")  # per-class lists don't count
    ingest(workspace, root)
    _, items = workspace.dataset("ds").samples(sort="filename")
    assert [(s["filename"], s["split"]) for s in items] == [
        ("a.jpg", "train"),
        ("b.jpg", "trainval"),
        ("c.jpg", "test"),
    ]


def test_yolo_splits_from_data_yaml_paths_written_relative_to_elsewhere(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Roboflow writes `../train/images`; these folders have no split-like names at all."""
    root = tmp_path / "yolo"
    for folder in ("fit", "holdout", "extra"):
        write_image(root / folder / "images" / f"{folder}.jpg", (100, 100))
        (root / folder / "labels").mkdir(parents=True)
        (root / folder / "labels" / f"{folder}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(
        "train: ../fit/images\nval: ../holdout/images\ntest: /elsewhere/test/images\n"
        "nc: 1\nnames: ['tree']\n"
    )
    job = ingest(workspace, root)
    assert job["result"]["labels"] == 3
    _, items = workspace.dataset("ds").samples(sort="filename")
    assert [(s["filename"], s["split"]) for s in items] == [
        ("extra.jpg", None),
        ("fit.jpg", "train"),
        ("holdout.jpg", "val"),
    ]


def test_yolo_split_folders_beside_images_keep_unknown_names(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "yolo"
    for split in ("train", "valid", "calibration"):
        write_image(root / "images" / split / f"{split}.jpg", (100, 100))
    (root / "data.yaml").write_text("names: ['tree']\n")
    ingest(workspace, root)
    assert workspace.dataset("ds").info()["splits"] == {"calibration": 1, "train": 1, "val": 1}


def test_labelimg_folder_xml_beside_images(workspace: Workspace, tmp_path: Path) -> None:
    """labelImg saves `photo.xml` beside `photo.jpg`; its <filename> may name another
    extension; images without an XML are samples too, unlabelled."""
    root = tmp_path / "labelimg"
    write_image(root / "a.png", (50, 40), fmt="PNG")
    write_image(root / "b.jpg", (50, 40))
    write_image(root / "c.jpg", (50, 40))
    for stem, filename in (("a", "a.jpg"), ("b", "b.jpg")):
        (root / f"{stem}.xml").write_text(
            f"<annotation><folder>x</folder><filename>{filename}</filename>"
            "<path>C:\\Users\\someone\\x.jpg</path><object><name>dog</name><bndbox><xmin>1</xmin>"
            "<ymin>2</ymin><xmax>11</xmax><ymax>12</ymax></bndbox></object></annotation>"
        )
    job = ingest(workspace, root)
    assert job["result"]["format"] == "voc" and job["result"]["skipped_count"] == 0
    _, items = workspace.dataset("ds").samples(sort="filename")
    assert [(s["path"], s["classes"]) for s in items] == [
        ("a.png", ["dog"]),
        ("b.jpg", ["dog"]),
        ("c.jpg", []),
    ]
