"""Export: every dataset of the real corpus through ingest -> export -> ingest in every format
that can hold its labels gives the same samples, splits, classes and boxes; the files read in
the reference readers (pycocotools, xml.etree, ultralytics' dataset rules, DuckDB); options
(filters, tags, dedupe, new splits, predictions, links) and bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest
import yaml
from conftest import Server, ingest, run_cli, wait_job
from playwright.sync_api import expect

from visor.errors import Conflict, InvalidInput
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"
DETECTION = ["coco_roboflow_trees", "yolo_roboflow_trees", "voc_trees", "labelimg_trees"]
CASES = [(name, fmt) for name in DETECTION for fmt in ("coco", "yolo", "voc")] + [
    ("classification_trees", "classification"),
    ("classification_trees", "voc"),
]


def contents(ws: Workspace, name: str) -> dict[str, tuple[str | None, list[tuple]]]:
    """file name -> (split, sorted labels (class, x, y, w, h)) of a dataset."""
    ds = ws.dataset(name)
    _, samples = ds.samples(limit=1000)
    out = {}
    for sample in samples:
        labels = sorted(
            (label["class"], *(label["bbox"] or [None] * 4)) for label in ds.labels(sample["id"])
            if label["kind"] == "gt"
        )  # fmt: skip
        out[Path(sample["path"]).name] = (sample["split"], labels)
    return out


def clipped(box: tuple, width: int, height: int) -> tuple:
    cls, x, y, w, h = box
    if x is None:
        return box
    x0, y0 = max(x, 0), max(y, 0)
    return (cls, x0, y0, min(x + w, width) - x0, min(y + h, height) - y0)


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_round_trip_on_the_corpus(
    workspace: Workspace, tmp_path: Path, name: str, fmt: str
) -> None:
    ingest(workspace, DATA / name, "source")
    out = tmp_path / "out"
    result = workspace.dataset("source").export(str(out), fmt, wait=True)["result"]
    assert result["skipped_count"] == 0
    # Every label written: boxes, and class folders or VOC objects without a box.
    written = {"classification_trees": 98, "coco_roboflow_trees": 461, "voc_trees": 98}
    assert result["labels"] == written.get(name, 101 if name.startswith("yolo") else 98)
    back = ingest(workspace, out, "back")
    assert back["state"] == "done", back["error"]
    before, after = contents(workspace, "source"), contents(workspace, "back")
    assert len(before) == len(after)
    # The same files; where two shared a stem (a.png, a.tif) YOLO and VOC, whose label files
    # are named by it, renamed one: a-2.png.
    for file in sorted(set(before) - set(after)):
        stem, ext = os.path.splitext(file)
        (renamed,) = [f for f in set(after) - set(before) if re.fullmatch(
            re.escape(stem) + r"-\d+" + re.escape(ext), f)]  # fmt: skip
        assert fmt in ("yolo", "voc")
        after[file] = after.pop(renamed)
    sizes = {
        Path(s["path"]).name: (s["width"], s["height"])
        for s in workspace.dataset("source").samples(limit=1000)[1]
    }
    tolerance = 0.5 if fmt == "yolo" else 1e-3
    for file, (split, labels) in before.items():
        split_back, labels_back = after[file]
        assert split_back == split, file
        if fmt == "yolo":  # boxes are cut to the image, then normalised
            labels = sorted(clipped(b, *sizes[file]) for b in labels)
        assert len(labels) == len(labels_back), file
        left = list(labels_back)
        for box in labels:  # each box has its twin: the same class, within the tolerance
            twin = next(
                (b for b in left if b[0] == box[0] and (
                    (box[1] is None and b[1] is None)
                    or (box[1] is not None and b[1] is not None
                    and np.allclose(box[1:], b[1:], atol=tolerance))
                )),
                None,
            )  # fmt: skip
            assert twin is not None, (file, box)
            left.remove(twin)


def test_coco_info_and_licenses_are_kept(workspace: Workspace, tmp_path: Path) -> None:
    ingest(workspace, DATA / "coco_roboflow_trees", "coco")
    workspace.dataset("coco").export(str(tmp_path / "out"), "coco", images="none", wait=True)
    written = json.loads((tmp_path / "out" / "annotations" / "instances_train.json").read_text())
    source = json.loads(
        (DATA / "coco_roboflow_trees" / "train" / "_annotations.coco.json").read_text()
    )
    assert written["info"] == source["info"] and written["licenses"] == source["licenses"]


def test_the_files_read_in_the_reference_readers(workspace: Workspace, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    ingest(workspace, DATA / "yolo_roboflow_trees", "yolo")
    ds = workspace.dataset("yolo")
    ds.export(str(tmp_path / "coco"), "coco", wait=True)
    train = COCO(str(tmp_path / "coco" / "annotations" / "instances_train.json"))
    assert len(train.getImgIds()) == 4
    assert [c["name"] for c in train.loadCats(train.getCatIds())] == ["Alive", "Dead", "Tree"]
    total = sum(
        len(COCO(str(f)).getAnnIds()) for f in (tmp_path / "coco" / "annotations").glob("*.json")
    )
    assert total == 101
    for image in train.loadImgs(train.getImgIds()):
        assert (tmp_path / "coco" / "images" / "train" / image["file_name"]).is_file()

    ds.export(str(tmp_path / "voc"), "voc", wait=True)
    objects = 0
    for file in (tmp_path / "voc" / "Annotations").glob("*.xml"):
        root = ET.parse(file).getroot()
        assert (tmp_path / "voc" / "JPEGImages" / root.findtext("filename")).is_file()
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            xmin, xmax = float(box.findtext("xmin")), float(box.findtext("xmax"))
            assert xmin < xmax
            objects += 1
    assert objects == 101

    # ultralytics' dataset rules (check_det_dataset): data.yaml with train and val folders that
    # exist, names matching nc; a label file per image, each line a class below nc and four
    # values normalised to [0, 1]. (ultralytics itself needs a torchvision build that does not
    # load beside the CPU torch pinned here, so its rules are checked as it states them.)
    ds.export(str(tmp_path / "yolo"), "yolo", wait=True)
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["nc"] == len(data["names"]) == 3
    lines = 0
    for key in ("train", "val", "test"):
        images = tmp_path / "yolo" / data[key]
        assert images.is_dir(), key
        for image in images.iterdir():
            label = images.parent / "labels" / (image.stem + ".txt")
            assert label.is_file()
            for line in label.read_text().splitlines():
                values = line.split()
                assert len(values) == 5 and 0 <= int(values[0]) < data["nc"]
                assert all(0 <= float(v) <= 1 for v in values[1:])
                lines += 1
    assert lines == 101


def test_parquet_has_samples_labels_and_vectors(workspace: Workspace, tmp_path: Path) -> None:
    ingest(workspace, DATA / "classification_trees", "trees")
    ds = workspace.dataset("trees")
    ds.embed("random:dinov2-tiny", precision="fp32", wait=True)
    result = ds.export(str(tmp_path / "pq"), "parquet", wait=True)["result"]
    assert result["samples"] == 98 and result["boxes"] == 98
    assert result["embeddings"] == [
        {
            "model": "random:dinov2-tiny",
            "file": "embeddings_random_dinov2-tiny.parquet",
            "vectors": 98,
        }
    ]
    con = duckdb.connect()
    samples = con.sql(f"SELECT * FROM '{tmp_path / 'pq' / 'samples.parquet'}'").fetchall()
    assert len(samples) == 98
    classes = con.sql(
        f"SELECT class, count(*) FROM '{tmp_path / 'pq' / 'labels.parquet'}' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert classes == [("Alive", 9), ("Dead", 28), ("Tree", 61)]
    width = con.sql(
        f"SELECT len(vector) FROM '{tmp_path / 'pq' / result['embeddings'][0]['file']}' LIMIT 1"
    ).fetchall()
    assert width == [(64,)]
    # The quality issues measured by the embed job come along.
    assert (
        "quality_issues"
        in con.sql(f"SELECT * FROM '{tmp_path / 'pq' / 'samples.parquet'}'").columns
    )


def test_options_choose_the_samples_and_their_splits(workspace: Workspace, tmp_path: Path) -> None:
    ingest(workspace, DATA / "classification_trees", "trees")
    ds = workspace.dataset("trees")
    _, dead = ds.samples(SampleFilter(category="Dead"), limit=100)
    ds.add_tags([s["id"] for s in dead[:3]], ["drop"])
    result = ds.export(
        str(tmp_path / "a"), "classification", filters=SampleFilter(category="Dead"),
        exclude_tags=("drop",), wait=True,
    )["result"]  # fmt: skip
    assert result["samples"] == 25 and result["classes"] == ["Alive", "Dead", "Tree"]
    # New splits by ratio: reproducible with the seed, in the asked proportions.
    first = ds.export(str(tmp_path / "b"), "classification", split_ratios=(0.8, 0.1, 0.1),
                      seed=3, wait=True)["result"]  # fmt: skip
    again = ds.export(str(tmp_path / "c"), "classification", split_ratios=(8, 1, 1), seed=3,
                      wait=True)["result"]  # fmt: skip
    assert first["splits"] == again["splits"] == {"train": 78, "val": 10, "test": 10}
    listing = sorted(
        p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*.jpg")
    )
    assert listing == sorted(
        p.relative_to(tmp_path / "c").as_posix() for p in (tmp_path / "c").rglob("*.jpg")
    )
    # Links instead of copies, or labels only.
    ds.export(str(tmp_path / "d"), "classification", images="link", wait=True)
    linked = next((tmp_path / "d").rglob("*.jpg"))
    assert linked.is_symlink() and Path(os.readlink(linked)).is_file()
    ds.export(str(tmp_path / "e"), "voc", images="none", wait=True)
    assert not (tmp_path / "e" / "JPEGImages").exists()
    assert len(list((tmp_path / "e" / "Annotations").glob("*.xml"))) == 98


def test_dedupe_keeps_one_of_each_group(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "copies"
    shutil.copytree(DATA / "classification_trees", root)
    first = sorted((root / "train" / "Tree").glob("*.jpg"))[:2]
    for image in first:  # two exact copies, under other names
        shutil.copy(image, image.with_name("copy-" + image.name))
    ingest(workspace, root, "copies")
    ds = workspace.dataset("copies")
    assert ds.find_duplicates(exact_only=True, wait=True)["result"]["groups"] == 2
    result = ds.export(str(tmp_path / "out"), "classification", dedupe=True, wait=True)["result"]
    assert result["samples"] == 98
    names = {p.name for p in (tmp_path / "out").rglob("*.jpg")}
    assert not any(n.startswith("copy-") for n in names) or len(names) == 98


def test_predictions_above_a_score(workspace: Workspace, tmp_path: Path) -> None:
    ingest(workspace, DATA / "coco_roboflow_trees", "coco")
    ds = workspace.dataset("coco")
    notes = json.loads(
        (DATA / "coco_roboflow_trees" / "train" / "_annotations.coco.json").read_text()
    )
    files = {i["id"]: i["file_name"] for i in notes["images"]}
    rows = ["file_name,class,x,y,w,h,score"]
    for n, a in enumerate(notes["annotations"]):
        box = ",".join(map(str, a["bbox"]))
        rows.append(f"train/{files[a['image_id']]},Tree,{box},{0.2 + 0.7 * (n % 2)}")
    (tmp_path / "p.csv").write_text("\n".join(rows))
    imported = ds.import_predictions(str(tmp_path / "p.csv"), "model")["predictions"]
    result = ds.export(
        str(tmp_path / "out"), "coco", kind="prediction", source="model", min_score=0.5,
        filters=SampleFilter(split="train"), wait=True,
    )["result"]  # fmt: skip
    assert result["boxes"] == imported // 2
    written = json.loads((tmp_path / "out" / "annotations" / "instances_train.json").read_text())
    assert all(a["score"] >= 0.5 for a in written["annotations"])


def test_bad_input_is_refused_and_nothing_is_half_written(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "trees"
    shutil.copytree(DATA / "yolo_roboflow_trees", root)
    ingest(workspace, root, "trees")
    ds = workspace.dataset("trees")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(Conflict, match="exists and is not empty"):
        ds.export(str(full), "coco")
    assert (full / "keep.txt").read_text() == "mine"
    with pytest.raises(InvalidInput, match="inside the dataset's root"):
        ds.export(str(root / "export"), "coco")
    with pytest.raises(InvalidInput, match="format: Input should be 'coco'"):
        ds.export(str(tmp_path / "x"), "tfrecord")
    with pytest.raises(InvalidInput, match="split ratios"):
        ds.export(str(tmp_path / "x"), "coco", split_ratios=(1.0,))
    # A class name YOLO can't write: the job fails, naming it, and leaves nothing behind.
    workspace.store.cursor().execute("UPDATE labels SET class = 'Dead/Alive' WHERE class = 'Dead'")
    workspace.store.cursor().execute(
        "UPDATE datasets SET categories = ['Alive', 'Dead/Alive', 'Tree'] WHERE name = 'trees'"
    )
    ds = workspace.dataset("trees")
    done = workspace.jobs.wait(ds.export(str(tmp_path / "y"), "yolo")["id"])
    assert done["state"] == "failed" and "class name 'Dead/Alive'" in done["error"]
    assert not (tmp_path / "y").exists()
    assert not [p for p in tmp_path.iterdir() if ".visor-" in p.name]
    # --overwrite replaces a folder whole.
    ds.export(str(full), "coco", overwrite=True, wait=True)
    assert not (full / "keep.txt").exists() and (full / "annotations").is_dir()
    # Folders missing on the way are made (as mkdir -p); a file on the way is refused.
    ds.export(str(tmp_path / "new" / "deeper" / "out"), "coco", wait=True)
    assert (tmp_path / "new" / "deeper" / "out" / "annotations").is_dir()
    with pytest.raises(InvalidInput, match=f"{full / 'keep.txt'}: not a folder"):
        (full / "keep.txt").write_text("a file")
        ds.export(str(full / "keep.txt" / "out"), "coco", overwrite=True)


def test_export_from_the_cli_and_http(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(DATA / "voc_trees"), "--name", "voc").returncode == 0
    done = run_cli(home, "export", "voc", str(tmp_path / "out"), "--format", "yolo")
    assert done.returncode == 0, done.stderr
    assert "exported 2 samples and 98 labels as yolo" in done.stdout
    assert "(test 1, trainval 1)" in done.stdout
    again = run_cli(home, "export", "voc", str(tmp_path / "out"), "--format", "yolo")
    assert (
        again.returncode == 1
        and "exists and is not empty (use --overwrite" in again.stdout + again.stderr
    )
    bad = run_cli(home, "export", "voc", str(tmp_path / "z"), "--split-by", "most")
    assert bad.returncode == 1 and "--split-by 'most'" in bad.stdout + bad.stderr
    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            job = client.post(
                "/api/datasets/voc/export",
                json={
                    "out": str(tmp_path / "http"),
                    "format": "coco",
                    "filters": {"split": "test"},
                },
            )
            assert job.status_code == 202
            result = wait_job(client, job.json()["id"])["result"]
            assert result["samples"] == 1 and result["splits"] == {"test": 1}
            refused = client.post(
                "/api/datasets/voc/export", json={"out": str(tmp_path / "http"), "format": "coco"}
            )
            assert refused.status_code == 409
        # Through the server, the CLI's export is the same.
        done = run_cli(
            home, "export", "voc", str(tmp_path / "cli2"), "--format", "voc", "--split", "test"
        )
        assert done.returncode == 0 and "exported 1 samples" in done.stdout
    finally:
        server.stop()


@pytest.mark.page_errors("HTTP 409 POST")  # the second write to the same folder, refused
def test_export_from_the_ui(tmp_path: Path, browser) -> None:
    home = tmp_path / "home"
    assert (
        run_cli(home, "ingest", str(DATA / "yolo_roboflow_trees"), "--name", "yolo").returncode == 0
    )
    server = Server(home).start()
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        page = context.new_page()
        page.goto(server.url + "/?dataset=yolo&split=train")
        expect(page.get_by_test_id("count")).to_have_text("4 samples")
        page.get_by_role("button", name="Export…").click()
        panel = page.get_by_test_id("export")
        panel.get_by_label("export format").select_option("yolo")
        panel.get_by_label("export folder").fill(str(tmp_path / "from-ui"))
        panel.get_by_role("button", name="Write").click()
        expect(page.get_by_test_id("export-done")).to_contain_text("exported 4 samples")
        assert (tmp_path / "from-ui" / "data.yaml").is_file()
        assert len(list((tmp_path / "from-ui" / "train" / "images").iterdir())) == 4
        # A download instead: a zip the page links to.
        panel.get_by_label("download as a zip").check()
        panel.get_by_label("export format").select_option("voc")
        panel.get_by_role("button", name="Write").click()
        link = panel.get_by_test_id("export-download")
        expect(link).to_be_visible()
        with page.expect_download() as fetched:
            link.click()
        saved = tmp_path / "export.zip"
        fetched.value.save_as(saved)
        import zipfile

        with zipfile.ZipFile(saved) as archive:
            names = archive.namelist()
        assert sum(n.startswith("Annotations/") and n.endswith(".xml") for n in names) == 4
        assert "ImageSets/Main/train.txt" in names
        panel.get_by_label("download as a zip").uncheck()
        # A second write to the same folder says why it can't.
        panel.get_by_role("button", name="Write").click()
        expect(panel.locator(".error, .job-failed")).to_contain_text("exists and is not empty")
        context.close()
    finally:
        server.stop()


def test_export_to_s3(s3: str, tmp_path: Path) -> None:
    """An export to an object store (a real S3 API: moto's server): written locally, then
    uploaded file by file; a non-empty prefix is refused unless --overwrite."""
    import boto3

    from visor.config import Settings

    client = boto3.client("s3", endpoint_url=s3)
    client.create_bucket(Bucket="out")
    ws = Workspace(Settings(home=tmp_path / "home", s3_endpoint_url=s3))
    try:
        ingest(ws, DATA / "yolo_roboflow_trees", "yolo")
        ds = ws.dataset("yolo")
        result = ds.export("s3://out/trees", "yolo", wait=True)["result"]
        assert result["out"] == "s3://out/trees" and result["samples"] == 7
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="out")["Contents"]}
        assert "trees/data.yaml" in keys
        assert sum(k.startswith("trees/train/images/") for k in keys) == 4
        assert sum(k.startswith("trees/train/labels/") for k in keys) == 4
        assert result["uploaded"] == len(keys)
        with pytest.raises(Conflict, match="s3://out/trees: exists and is not empty"):
            ds.export("s3://out/trees", "coco")
        ds.export("s3://out/trees", "coco", images="none", overwrite=True, wait=True)
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="out")["Contents"]}
        assert all(k.startswith("trees/annotations/") for k in keys) and len(keys) == 3
        with pytest.raises(InvalidInput, match="--link makes links on local disk"):
            ds.export("s3://out/other", "coco", images="link")
    finally:
        ws.close()
