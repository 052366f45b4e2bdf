"""Bad input: a clear message naming the file and the problem, and nothing half-written."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from box_corpus import DATA
from conftest import ingest, run_cli, write_image

from visor.config import Settings
from visor.errors import Conflict, InvalidInput, NotFound, SourceError
from visor.workspace import Workspace


def _coco(root: Path, images: list[dict], annotations: list[dict]) -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_train.json").write_text(
        json.dumps(
            {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "cat"}]}
        )
    )
    return root


def _img(i: int, name: str | None = None, w: int = 64, h: int = 48) -> dict:
    return {"id": i, "file_name": name or f"{i}.jpg", "width": w, "height": h}


def _skipped(job: dict) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in job["result"]["skipped"]}


def test_broken_image_files_are_skipped_and_reported(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    write_image(root / "good.jpg", (300, 200))
    data = (root / "good.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is not an image\n")
    job = ingest(workspace, root)
    assert job["state"] == "done"
    assert job["result"]["samples"] == 1
    skipped = _skipped(job)
    assert skipped["truncated.jpg"] == "truncated JPEG (no end-of-image marker)"
    assert skipped["empty.jpg"] == "empty file (0 bytes)"
    assert skipped["text.jpg"] == "not an image (unrecognised file contents)"
    assert workspace.dataset("ds").info()["report"]["skipped_count"] == 3


def test_coco_image_missing_on_disk_is_skipped_with_its_labels(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "c"
    write_image(root / "images" / "1.jpg")
    _coco(
        root,
        [_img(1), _img(2)],
        [{"id": 10, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}],
    )
    job = ingest(workspace, root)
    assert job["result"]["samples"] == 1 and job["result"]["labels"] == 0
    assert "image file is missing" in _skipped(job)["images/2.jpg"]


def test_coco_json_syntax_error_names_line_and_column(
    workspace: Workspace, tmp_path: Path, coco_parsing: str
) -> None:
    root = tmp_path / "c"
    write_image(root / "images" / "1.jpg")
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_train.json").write_text(
        '{\n  "images": [\n    {"id": 1,,}\n]}'
    )
    job = ingest(workspace, root)
    assert job["state"] == "failed"
    # A file too large to parse whole is reported by byte offset instead of line and column.
    where = " at line 3, column" if coco_parsing == "whole" else ":"
    assert job["error"].startswith(f"annotations/instances_train.json: JSON syntax error{where}")
    assert workspace.datasets() == []


def test_bad_coco_annotations_are_skipped_or_flagged(
    workspace: Workspace, tmp_path: Path, coco_parsing: str
) -> None:
    root = tmp_path / "c"
    write_image(root / "images" / "1.jpg", (64, 48))
    _coco(
        root,
        [_img(1)],
        [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, -3, 5]},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [50, 40, 30, 30]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]},
        ],
    )
    job = ingest(workspace, root)
    reasons = [s["reason"] for s in job["result"]["skipped"]]
    assert reasons == [
        "annotation 1: unknown category_id 7",
        "annotation 2: box has zero or negative size [1.0, 1.0, 0.0, 5.0]",
        "annotation 3: box has zero or negative size [1.0, 1.0, -3.0, 5.0]",
    ]
    ds = workspace.dataset("ds")
    sample = ds.sample(0)
    assert sample["flags"] == ["box_outside_image"]
    flags = sorted((lab["bbox"][0], lab["flags"]) for lab in ds.labels(0))
    assert flags == [(2.0, []), (50.0, ["outside_image"])]


def test_coco_file_name_leaving_the_root_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    write_image(tmp_path / "secret.jpg")
    root = tmp_path / "c"
    write_image(root / "images" / "1.jpg")
    _coco(root, [_img(1, "1.jpg"), _img(2, "../../secret.jpg")], [])
    job = ingest(workspace, root)
    assert job["result"]["samples"] == 1
    assert any(
        "leaves the dataset root" in s["reason"] or "missing" in s["reason"]
        for s in job["result"]["skipped"]
    )


def test_bad_yolo_lines_are_skipped_with_line_numbers(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "y"
    root.mkdir()
    (root / "data.yaml").write_text("names: [cat, dog]\n")
    write_image(root / "images" / "train" / "a.jpg", (100, 100))
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text(
        "0 0.5 0.5 0.2\n1 0.5 0.5 1.5 0.2\n0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.1 0.1\n"
    )
    job = ingest(workspace, root)
    assert [(s["path"], s["reason"]) for s in job["result"]["skipped"]] == [
        ("labels/train/a.txt", "line 1: expected 5 columns (class cx cy w h), got 4"),
        ("labels/train/a.txt", "line 2: values must be normalised to [0, 1]"),
        ("labels/train/a.txt", "line 4: class index 5 is not in data.yaml names (0..1)"),
    ]
    assert job["result"]["labels"] == 1


def test_voc_xml_that_does_not_parse_is_skipped(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    write_image(root / "JPEGImages" / "1.jpg")
    write_image(root / "JPEGImages" / "2.jpg")
    (root / "Annotations").mkdir()
    (root / "Annotations" / "1.xml").write_text(
        "<annotation><filename>1.jpg</filename></annotation>"
    )
    (root / "Annotations" / "2.xml").write_text("<annotation><filename>2.jpg</filen")
    job = ingest(workspace, root)
    assert job["result"]["samples"] == 1
    assert _skipped(job)["Annotations/2.xml"].startswith("XML does not parse")


def test_symlink_loop_and_escape_are_reported(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "links"
    write_image(root / "a.jpg")
    write_image(tmp_path / "outside.jpg")
    os.symlink(root / "loop1.jpg", root / "loop2.jpg")
    os.symlink(root / "loop2.jpg", root / "loop1.jpg")
    os.symlink(tmp_path / "outside.jpg", root / "escape.jpg")
    job = ingest(workspace, root)
    assert job["result"]["samples"] == 1
    skipped = _skipped(job)
    assert skipped["loop1.jpg"] == "symlink loop"
    assert skipped["escape.jpg"].startswith("symlink points outside the dataset root")


def test_missing_path_fails_before_any_job(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or directory"):
        workspace.ingest(str(tmp_path / "nope"), "ds")
    assert workspace.jobs.list() == []


def test_same_name_twice_is_refused_unless_replace(
    workspace: Workspace, demo_root: Path, tmp_path: Path
) -> None:
    ingest(workspace, demo_root)
    with pytest.raises(Conflict, match="already exists"):
        workspace.ingest(str(demo_root), "ds")
    plain = tmp_path / "plain"
    write_image(plain / "x.jpg")
    job = ingest(workspace, plain, replace=True)
    assert job["state"] == "done"
    assert workspace.dataset("ds").info()["num_samples"] == 1


@pytest.mark.parametrize("name", ["a/b", "with space", "", "../x"])
def test_bad_dataset_names_are_refused(workspace: Workspace, demo_root: Path, name: str) -> None:
    with pytest.raises(InvalidInput, match="dataset name"):
        workspace.ingest(str(demo_root), name)


def test_failed_ingest_leaves_no_dataset_and_keeps_the_old_one(
    workspace: Workspace, demo_root: Path, tmp_path: Path
) -> None:
    ingest(workspace, demo_root)
    root = tmp_path / "c"
    write_image(root / "images" / "1.jpg")
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_x.json").write_text("{")
    job = ingest(workspace, root, replace=True)
    assert job["state"] == "failed"
    assert workspace.dataset("ds").info()["num_samples"] == 40  # the old one is intact


def test_unknown_dataset_is_not_found(workspace: Workspace) -> None:
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        workspace.dataset("nope")


# -- found by fuzzing the parsers ------------------------------------------------------------


def test_a_short_bbox_names_the_expected_shape_in_the_cli(tmp_path: Path) -> None:
    root = _coco(
        tmp_path / "c", [_img(1)], [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2]}]
    )
    write_image(root / "images" / "1.jpg")
    done = run_cli(tmp_path / "home", "ingest", str(root), "--name", "ds")
    assert done.returncode == 0, done.stderr
    assert "annotation 7: bbox must be [x, y, width, height], got [1, 2]" in done.stderr


def test_a_coco_file_holding_a_list_fails_naming_the_file(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "c"
    write_image(root / "images" / "1.jpg")
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train.json").write_text("[1, 2, 3]")
    job = ingest(workspace, root)
    assert job["state"] == "failed"
    assert job["error"] == (
        "annotations/instances_train.json: not a COCO object: top level is a list"
    )
    assert workspace.datasets() == []


def test_json_nested_too_deep_fails_naming_the_file(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "c"
    write_image(root / "images" / "1.jpg")
    (root / "annotations").mkdir()
    depth = 100_000
    (root / "annotations" / "instances_train.json").write_text(
        '{"images": ' + "[" * depth + "]" * depth + "}"
    )
    job = ingest(workspace, root)
    assert job["state"] == "failed"
    assert job["error"] == "annotations/instances_train.json: JSON nested too deeply to read"


def test_huge_and_nan_boxes_are_skipped_without_warnings(tmp_path: Path) -> None:
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1e308, 1e308, 1e308, 1e308]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 2, 1e308, 4]},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
    ]
    root = _coco(tmp_path / "c", [_img(1)], anns)
    write_image(root / "images" / "1.jpg")
    voc = tmp_path / "voc"
    write_image(voc / "a.jpg")
    (voc / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>nan</xmin>"
        "<ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    home = tmp_path / "home"
    done = run_cli(home, "ingest", str(root), "--name", "coco")
    assert done.returncode == 0 and "Warning" not in done.stderr and "overflow" not in done.stderr
    assert "ingested coco: 1 samples, 1 labels" in done.stdout
    out = run_cli(home, "info", "coco", "--skipped").stdout
    assert "annotation 1: box values must be finite numbers within ±1e+09" in out
    assert "annotation 2: box values must be finite numbers within ±1e+09" in out
    done = run_cli(home, "ingest", str(voc), "--name", "voc")
    assert "ingested voc: 1 samples, 0 labels (voc)" in done.stdout, done.stderr
    assert "a.xml: object 1: box values must be finite numbers" in done.stderr


def test_an_image_smaller_than_its_annotation_says_is_flagged(tmp_path: Path) -> None:
    root = _coco(
        tmp_path / "c",
        [_img(1, w=6400, h=4800), _img(2, w=64, h=48), _img(3, w=48, h=64)],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [3000, 2000, 100, 100]}],
    )
    for i in (1, 2, 3):
        write_image(root / "images" / f"{i}.jpg", (64, 48))  # 3: as if EXIF turned it
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(root), "--name", "ds").returncode == 0
    out = run_cli(home, "info", "ds").stdout
    assert "1 image(s) whose file size in pixels differs from their annotation's" in out
    assert "images/1.jpg: annotated 6400x4800, file 64x48" in out
    assert "1 image(s) with a box partly outside the picture" in out
    with Workspace(Settings(home=home)) as ws:
        ds = ws.dataset("ds")
        _, items = ds.samples(sort="filename")
        assert [(s["width"], s["height"], s["flags"]) for s in items] == [
            (64, 48, ["size_mismatch", "box_outside_image"]),
            (64, 48, []),
            (48, 64, []),
        ]
        assert ds.info()["flags"] == {"box_outside_image": 1, "size_mismatch": 1}


def test_nothing_readable_is_refused_naming_the_folder(
    workspace: Workspace, demo_root: Path, tmp_path: Path
) -> None:
    """An empty folder, a folder whose images are all unreadable, COCO annotations that name
    no image: each fails naming the folder and why, and leaves no dataset (and the one it was
    to replace intact), in both the Python API and the CLI."""
    ingest(workspace, demo_root)
    (tmp_path / "empty").mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_text("this is not an image\n")
    (broken / "b.png").write_bytes(b"")
    _coco(tmp_path / "coco", [], [])
    expected = {
        "empty": f"{tmp_path / 'empty'}: no images and no annotation files found",
        "broken": f"{broken}: none of its 2 images could be read (a.jpg: not an image "
        "(unrecognised file contents)); nothing was ingested",
        "coco": f"{tmp_path / 'coco'}: its coco annotations name no images; nothing was ingested",
    }
    for folder, message in expected.items():
        job = ingest(workspace, tmp_path / folder, "ds", replace=True)
        assert (job["state"], job["error"]) == ("failed", message)
    assert workspace.dataset("ds").info()["num_samples"] == 40  # the old one is intact
    assert [d["name"] for d in workspace.datasets()] == ["ds"]
    (broken / "b.png").unlink()
    home = tmp_path / "cli"
    done = run_cli(home, "ingest", str(broken), "--name", "one")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: {broken}: its one image could not be read (a.jpg: not an image (unrecognised file "
        "contents)); nothing was ingested"
    )
    assert "one" not in run_cli(home, "datasets").stdout


def test_a_filter_naming_what_the_dataset_lacks_is_refused(workspace: Workspace) -> None:
    """A typo in a split, class or tag would act on no sample ("tagged 0", "nothing to
    export"): refused, naming the near values or those there are. A grid is only empty."""
    from visor.store.filters import SampleFilter

    assert ingest(workspace, DATA / "yolo_roboflow_trees", "y")["state"] == "done"
    ds = workspace.dataset("y")
    assert ds.add_tags(SampleFilter(split="val"), ["keep"]) == 2
    refused = [
        (SampleFilter(split="valid"), "dataset 'y' has no split 'valid' (did you mean 'val'?)"),
        (SampleFilter(category="tree"), "dataset 'y' has no class 'tree' (did you mean 'Tree'?)"),
        (SampleFilter(category="Oak"), "dataset 'y' has no class 'Oak' (its classes: Alive, Dead, "
         "Tree)"),
        (SampleFilter(tag="kept"), "dataset 'y' has no sample tagged 'kept' (did you mean "
         "'keep'?)"),
    ]  # fmt: skip
    for filters, said in refused:
        with pytest.raises(InvalidInput) as e:
            ds.add_tags(filters, ["x"])
        assert e.value.message == said
        with pytest.raises(InvalidInput, match=re.escape(said)):
            ds.to_arrow(filters)
        with pytest.raises(InvalidInput, match=re.escape(said)):
            ds.edits.relabel("Dead", "Snag", filters)
        assert ds.samples(filters)[0] == 0  # what the grid shows: no sample, no error
    assert ds.info()["tags"] == {"keep": 2}  # nothing was tagged
