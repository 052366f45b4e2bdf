"""Objects ("patches"): every box embedded as a crop of its image, on the real corpus (random
weights: the mechanics, exactly), and what box vectors give: maps of boxes, similar boxes,
outliers, duplicate boxes and box label errors (ranked on vectors built so the answer is
known)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import httpx
import numpy as np
from conftest import Server, ingest, run_cli, wait_job
from PIL import Image

from visor.embedding.crops import CropRule, crop_region
from visor.embedding.models import load_model
from visor.embedding.pipeline import ImageItem, embed_images
from visor.services.maps import cached_points, points_stream
from visor.store import embeddings as vector_rows
from visor.store import maps as map_rows
from visor.store import objects as object_rows
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"
MODEL = "random:dinov2-tiny"
COCO = DATA / "coco_roboflow_trees"
YOLO = DATA / "yolo_roboflow_trees"


def embed_objects(ds, **kw) -> dict:
    return ds.embed(MODEL, precision="fp32", objects=True, batch_size=16, wait=True, **kw)["result"]


def test_crop_region_adds_context_squares_and_stays_inside() -> None:
    rule = CropRule(margin=0.1, min_size=32)
    # A 100 x 50 box in the middle: a square of 120 around its centre.
    assert crop_region((300, 200, 100, 50), 760, 500, rule) == (290, 165, 410, 285)
    # Near the left edge the square moves inside the image rather than leaving it.
    assert crop_region((0, 347, 34, 54), 760, 500, rule) == (0, 342, 65, 407)
    # A tiny box takes more context: the minimum size.
    assert crop_region((100, 100, 4, 3), 760, 500, rule) == (86, 86, 118, 118)
    # A box wider than a narrow image: the square reaches past both sides (padded).
    assert crop_region((0, 10, 40, 80), 40, 200, rule) == (-28, 2, 68, 98)
    # Partly outside: only the visible part counts.
    assert crop_region((-50, -50, 100, 100), 760, 500, rule) == (0, 0, 60, 60)
    assert "outside the image" in str(crop_region((800, 10, 20, 20), 760, 500, rule))
    assert "sub-pixel" in str(crop_region((10, 10, 0.5, 20), 760, 500, rule))
    assert "zero-size" in str(crop_region((10, 10, 0, 20), 760, 500, rule))


def test_crops_are_cut_from_one_decode_and_match_the_model_input_of_the_crop() -> None:
    """Each image is read once whatever its number of boxes, and a box's input is exactly
    what the model's own preprocessing makes of the cropped picture."""
    embedder = load_model(MODEL, "cpu", "fp32")
    path = next((COCO / "test").glob("*.jpg"))
    data = path.read_bytes()
    reads: list[str] = []

    def read() -> bytes:
        reads.append(path.name)
        return data

    boxes = tuple((i, (18.0 * i, 30.0, 60.0, 45.0)) for i in range(1, 40))
    halves = [
        ImageItem(7, path.name, read, regions=boxes[:19]),
        ImageItem(8, path.name, read, regions=boxes[19:]),
    ]
    batches = list(embed_images(embedder, halves, batch_size=8, workers=2))
    keys = np.concatenate([b.keys for b in batches])
    assert reads == [path.name] * 2  # one read per image, whatever its number of boxes
    assert keys.tolist() == [k for k, _ in boxes]
    assert [len(b.keys) for b in batches] == [8, 8, 8, 8, 7]  # full batches across images
    assert not any(b.failed for b in batches)
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    region = crop_region(boxes[4][1], picture.width, picture.height)
    assert not isinstance(region, str)
    crop = picture.crop(region)
    png = io.BytesIO()
    crop.save(png, "PNG")
    expected = embedder.preprocessing.prepare(png.getvalue(), "crop.png")
    (got,) = [c for k, c in embedder.preprocessing.prepare_regions(data, "x", boxes, CropRule())
              if k == 5]  # fmt: skip
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # resampling rounding
    vectors = np.concatenate([b.vectors for b in batches])
    assert vectors.shape == (39, embedder.dim) and np.isfinite(vectors).all()


def test_object_embedding_on_the_corpus(workspace: Workspace) -> None:
    ingest(workspace, COCO, "coco")
    ds = workspace.dataset("coco")
    result = embed_objects(ds)
    assert (result["boxes"], result["images"], result["embedded"]) == (461, 12, 461)
    assert result["failed_count"] == 0 and result["kind"] == "gt"
    assert ds.objects.status() == [
        {"model": MODEL, "dim": 64, "vectors": 461, "by_kind": {"gt": 461}, "skipped": 0}
    ]
    found = ds.objects.vectors()
    assert len(found) == 461 and found.vectors.shape == (461, 64)
    label_ids = workspace.store.query("SELECT id FROM labels WHERE x IS NOT NULL ORDER BY id")
    assert found.label_ids.tolist() == [int(r[0]) for r in label_ids]
    # The images have no vectors of their own: box vectors are kept apart.
    assert vector_rows.status(workspace.store, ds.id) == []
    # Resumable: a second run embeds nothing.
    again = embed_objects(ds)
    assert again["embedded"] == 0 and again["skipped_existing"] == 461
    # Similar boxes: itself excluded, nearest first, each with its sample and class.
    first = int(found.label_ids[0])
    near = ds.objects.similar(first, k=5)
    assert len(near) == 5 and first not in {n["label_id"] for n in near}
    assert [n["distance"] for n in near] == sorted(n["distance"] for n in near)
    assert all(n["class"] == "Tree" and n["kind"] == "gt" for n in near)


def test_bad_boxes_are_skipped_with_a_reason(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "coco"
    shutil.copytree(COCO / "test", root)
    notes = root / "_annotations.coco.json"
    coco = json.loads(notes.read_text())
    extra = [
        ([10.0, 10.0, 0.4, 0.6], "sub-pixel"),  # sub-pixel
        ([900.0, 100.0, 30.0, 30.0], "outside"),  # right of a 760-wide image
        ([-20.0, -20.0, 40.0, 40.0], None),  # partly outside: cut to the image, embedded
    ]
    for n, (bbox, _) in enumerate(extra):
        coco["annotations"].append(
            {"id": 1000 + n, "image_id": 0, "category_id": 1, "bbox": bbox, "iscrowd": 0}
        )
    notes.write_text(json.dumps(coco))
    ingest(workspace, root, "bad")
    ds = workspace.dataset("bad")
    result = embed_objects(ds)
    assert (result["boxes"], result["embedded"], result["failed_count"]) == (86, 84, 2)
    reasons = sorted(f["reason"] for f in result["failed"])
    image = coco["images"][0]["file_name"]
    assert reasons[0].startswith(f"{image}: box outside the image (900, 100, 30 x 30 in 760")
    assert reasons[1].startswith(f"{image}: sub-pixel box (0.4 x 0.6 px)")
    assert len(ds.objects.skipped()) == 2
    assert ds.objects.status()[0]["skipped"] == 2
    # The skipped boxes stay skipped (and listed) on the next run; nothing else changes.
    again = embed_objects(ds)
    assert again["embedded"] == 0 and again["failed_count"] == 2
    assert len(ds.objects.skipped()) == 2


def test_maps_of_boxes_and_their_points(workspace: Workspace) -> None:
    ingest(workspace, YOLO, "yolo")
    ds = workspace.dataset("yolo")
    embed_objects(ds)
    made = ds.make_map(method="pca", objects=True, wait=True)["result"]
    assert made["objects"] is True and made["points"] == 101 and "random weights" in made["warning"]
    (row,) = ds.maps()
    assert row["objects"] is True and row["num_points"] == 101
    points = ds.map_points()
    classes = points.column("class").to_pylist()
    assert {c: classes.count(c) for c in set(classes)} == {"Tree": 63, "Dead": 29, "Alive": 9}
    # Each point is its box: its label id, its sample, the box's class.
    stored = {
        int(i): (int(s), c)
        for i, s, c in workspace.store.query(
            "SELECT id, sample_id, class FROM labels WHERE x IS NOT NULL"
        )
    }
    for point in points.to_pylist():
        assert stored[point["label_id"]] == (point["sample_id"], point["class"])
    import pyarrow as pa

    stream = pa.ipc.open_stream(points_stream(points)).read_all()
    assert stream.column("label_id").type == pa.int32()
    assert stream.column("sample_id").to_pylist() == sorted(stream.column("sample_id").to_pylist())
    # After a tag, each box's point has its image's new tag, made from the kept points (only
    # the tags read again) and equal to the points made anew.
    context = workspace.context("yolo")
    kept, _ = cached_points(workspace.store, context.engine.points, context.dataset, None)
    tagged = stored[points.column("label_id")[0].as_py()][0]
    ds.add_tags([tagged], ["look"])
    again, _ = cached_points(workspace.store, context.engine.points, context.dataset, None)
    made_anew = points_stream(map_rows.points(workspace.store, ds.id, row["id"], objects=True))
    assert again != kept and again == made_anew
    table = pa.ipc.open_stream(again).read_all()
    legend = json.loads(table.schema.metadata[b"visor:legend"])["tag"]
    looked = {
        s
        for s, t in zip(table["sample_id"].to_pylist(), table["tag"].to_pylist(), strict=True)
        if legend[t] == "look"
    }
    assert looked == {tagged}


def test_planted_duplicate_boxes_and_outliers(workspace: Workspace, tmp_path: Path) -> None:
    """The same box annotated twice gives the same crop: one duplicate group of exactly those
    two (at a threshold only identical crops reach); outliers use the scores' own spread."""
    root = tmp_path / "coco"
    shutil.copytree(COCO / "test", root)
    notes = root / "_annotations.coco.json"
    coco = json.loads(notes.read_text())
    twin = dict(coco["annotations"][5], id=999)
    coco["annotations"].append(twin)
    notes.write_text(json.dumps(coco))
    ingest(workspace, root, "twins")
    ds = workspace.dataset("twins")
    embed_objects(ds)
    result = ds.objects.analyse(threshold=0.999999, wait=True)["result"]
    assert result["boxes"] == 84
    assert (result["duplicate_groups"], result["boxes_in_duplicate_groups"]) == (1, 2)
    groups = workspace.store.query(
        "SELECT o.label_id, l.x, l.y, l.w, l.h FROM object_scores o JOIN labels l "
        "ON l.id = o.label_id WHERE o.duplicate_group IS NOT NULL"
    )
    assert len(groups) == 2 and groups[0][1:] == groups[1][1:]
    stored = workspace.store.query("SELECT uniqueness FROM object_scores")
    scores = np.asarray([r[0] for r in stored])
    median = np.median(scores)
    cut = min(1.0, median + 3 * max(1.4826 * np.median(np.abs(scores - median)), 1e-6))
    assert result["outliers"] == int((scores > cut).sum())
    report = ds.objects.report()
    assert report["outliers"] == result["outliers"] and "random weights" in report["warning"]
    health = {r["kind"]: r for r in ds.health()["rows"]}
    assert health["object_outliers"]["count"] == result["outliers"]
    assert health["duplicate_boxes"]["count"] == 2


CLASSES = ["Alive", "Dead", "Tree"]


def test_box_label_errors_from_box_vectors(workspace: Workspace) -> None:
    """Box vectors placed by each box's true class, with five Tree boxes relabelled Dead:
    those five score lowest, are flagged, and their neighbours suggest Tree."""
    ingest(workspace, YOLO, "yolo")
    ds = workspace.dataset("yolo")
    rows = workspace.store.query(
        "SELECT id, sample_id, class FROM labels WHERE x IS NOT NULL ORDER BY id"
    )
    trees = [int(i) for i, _, c in rows if c == "Tree"][:5]
    workspace.store.cursor().execute(
        "UPDATE labels SET class = 'Dead' WHERE list_contains(?, id)", [trees]
    )
    rng = np.random.default_rng(0)
    centres = {c: rng.normal(size=16) * 4 for c in CLASSES}
    vector_rows.ensure_model(workspace.store, "known", 16)
    object_rows.ensure_table(workspace.store, 16)
    object_rows.write_batch(
        workspace.store, ds.id, "known",
        np.array([int(r[0]) for r in rows]), np.array([int(r[1]) for r in rows]),
        np.array([centres[c] + rng.normal(size=16) for _, _, c in rows], np.float32),
        [], job_id=None,
    )  # fmt: skip
    result = ds.find_label_errors(wait=True)["result"]  # the box vectors' model by default
    assert result["model"] == "known" and "warning" not in result
    assert result["by_kind"] == {
        "boxes": {"labels": 101, "scored": 101, "flagged": result["flagged"], "not_embedded": 0}
    }
    scored = workspace.store.query(
        "SELECT label_id, issue, suggested FROM label_quality ORDER BY quality, label_id LIMIT 5"
    )
    assert {int(r[0]) for r in scored} == set(trees)
    issues = workspace.store.query("SELECT label_id FROM label_quality WHERE issue")
    flagged = {int(i) for (i,) in issues}
    # cleanlab's confident learning is cautious here (the five vote for each other a little,
    # so none reaches the Tree class's average confidence but one): it flags no clean box.
    assert flagged <= set(trees) and len(flagged) >= 1
    assert all(r[2] == "Tree" for r in scored)
    # Filter and sort by it: the samples holding a flagged box.
    total, samples = ds.samples(SampleFilter(label_issue=True), limit=100)
    holding = {int(s) for (s,) in workspace.store.query(
        "SELECT DISTINCT sample_id FROM label_quality WHERE issue")}  # fmt: skip
    assert {s["id"] for s in samples} == holding and total == len(holding)
    box = next(b for b in ds.labels(samples[0]["id"]) if b["id"] in flagged)
    assert box["label_quality"]["suggested"] == "Tree" and box["class"] == "Dead"


def test_box_label_errors_need_box_vectors(workspace: Workspace) -> None:
    ingest(workspace, YOLO, "yolo")
    ds = workspace.dataset("yolo")
    ds.embed(MODEL, precision="fp32", quality=False, wait=True)
    done = workspace.jobs.wait(ds.find_label_errors()["id"])
    assert done["state"] == "failed"
    assert "visor embed yolo --objects --model random:dinov2-tiny" in done["error"]


def test_objects_from_the_cli_and_http(tmp_path: Path) -> None:
    home = tmp_path / "home"

    def cli(*args: str) -> str:
        done = run_cli(home, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    cli("ingest", str(YOLO), "--name", "yolo")
    out = cli("embed", "yolo", "--objects", "--model", MODEL, "--precision", "fp32")
    assert "embedded 101 of 101 gt boxes in 6 images" in out
    out = cli("map", "yolo", "--objects", "--method", "pca")
    assert "pca of 101 boxes" in out and "random weights" in out
    out = cli("objects", "yolo")
    assert "101 boxes:" in out and "outliers" in out and "random weights" in out
    out = cli("objects", "yolo", "--similar", "1", "-k", "3")
    assert out.count("Tree") + out.count("Dead") + out.count("Alive") == 3
    bad = run_cli(home, "embed", "yolo", "--objects", "--kind", "prediction", "--model", MODEL)
    assert bad.returncode == 1 and "has no prediction boxes to embed" in bad.stdout + bad.stderr
    out = cli("label-errors", "yolo")
    assert "101" in out
    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            status = client.get("/api/datasets/yolo/objects").json()
            assert status["default_model"] == MODEL
            assert status["models"][0]["by_kind"] == {"gt": 101}
            assert status["analysis"]["scored"] == 101
            crop = client.get("/api/datasets/yolo/objects/1/crop")
            assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
            picture = Image.open(io.BytesIO(crop.content))
            assert picture.width == picture.height  # squared
            answer = client.get("/api/datasets/yolo/objects/1/similar?k=4").json()
            assert answer["model"] == MODEL and "random weights" in answer["warning"]
            near = answer["neighbours"]
            assert len(near) == 4 and all(n["label_id"] != 1 for n in near)
            assert client.get("/api/datasets/yolo/objects/999999").status_code == 404
            job = client.post("/api/datasets/yolo/objects", json={}).json()
            assert wait_job(client, job["id"])["state"] == "done"
            # The CLI goes through the server while it runs: the same answers.
            out = cli("objects", "yolo", "--similar", "1", "-k", "4")
            assert all(str(n["label_id"]) in out for n in near)
    finally:
        server.stop()
