"""Evaluating a detector: predictions in (COCO results, YOLO .txt, tables), COCO metrics equal
to pycocotools' on the real-data corpus and on generated boxes, per-box outcomes, the confusion
matrix and its cells, sample filters and sorts, the CLI, HTTP, and bad input."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from conftest import Server, ingest, run_cli, wait_job
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from visor.errors import Conflict, InvalidInput, NotFound
from visor.evaluation.matching import AREA_RANGES, Boxes, match
from visor.evaluation.metrics import accumulate, iou_range, summary
from visor.services.evaluate import Evaluations
from visor.store import Store
from visor.store.samples import SampleFilter
from visor.synthetic import predicted_boxes
from visor.workspace import Dataset, Workspace

DATA = Path(__file__).parent / "data"
BOX_DATASETS = {  # name -> ground-truth boxes per class
    "coco_roboflow_trees": {"Tree": 461},
    "yolo_roboflow_trees": {"Alive": 9, "Dead": 29, "Tree": 63},
    "labelimg_trees": {"Alive": 9, "Dead": 28, "Tree": 61},
    "voc_trees": {"Alive": 9, "Dead": 28, "Tree": 61},
}
SUMMARY_KEYS = [
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
]


def _store(ds: Dataset) -> Store:
    """The store behind a dataset of this process (the tests read its tables directly)."""
    return ds._runner.engine.store  # type: ignore[attr-defined]


def stored_boxes(ds: Dataset, kind: str, source: str | None = None) -> dict[str, list]:
    return (
        _store(ds)
        .query_arrow(
            "SELECT l.id, l.sample_id, s.path, l.class, l.x, l.y, l.w, l.h, l.score, "
            "coalesce(l.iscrowd, false) AS crowd FROM labels l JOIN samples s "
            "ON s.dataset_id = l.dataset_id AND s.id = l.sample_id "
            "WHERE l.dataset_id = ? AND l.kind = ? AND l.x IS NOT NULL"
            + (" AND l.source = ?" if source else "")
            + " ORDER BY l.id",
            [ds.id, kind, *([source] if source else [])],
        )
        .to_pydict()
    )


def write_predictions(ds: Dataset, path: Path, seed: int, **kw) -> Path:
    """Generated predictions for a dataset's boxes (jittered, dropped, duplicated, classes
    swapped, random boxes, tied scores) as a CSV table naming images by path."""
    classes = sorted(ds.row["categories"])
    gt = stored_boxes(ds, "gt")
    cls = np.array([classes.index(c) for c in gt["class"]])
    xywh = np.c_[gt["x"], gt["y"], gt["w"], gt["h"]]
    p = predicted_boxes(np.array(gt["sample_id"]), cls, xywh, len(classes), seed=seed, **kw)
    paths = dict(zip(gt["sample_id"], gt["path"], strict=False))
    table = pa.table(
        {
            "file_name": [paths[i] for i in p["image"]],
            "class": [classes[k] for k in p["cls"]],
            **{k: p[k] for k in "xywh"},
            "score": p["score"],
        }
    )
    pcsv.write_csv(table, path)
    return path


def write_swapped(ds: Dataset, path: Path) -> tuple[dict, list[int], list[int], int]:
    """The YOLO corpus's exact boxes with 9 Dead boxes called Tree, 4 Alive called Dead, the
    first Tree box missed and one Alive box where nothing is, as a CSV table: (the boxes, the
    positions of the Dead, Alive and missed ones)."""
    gt = stored_boxes(ds, "gt")
    classes = list(gt["class"])
    dead = [i for i, c in enumerate(classes) if c == "Dead"][:9]
    alive = [i for i, c in enumerate(classes) if c == "Alive"][:4]
    missed = next(i for i, c in enumerate(classes) if c == "Tree")
    predicted = list(classes)
    for i in dead:
        predicted[i] = "Tree"
    for i in alive:
        predicted[i] = "Dead"
    keep = [i for i in range(len(classes)) if i != missed]
    rows = {
        "file_name": [gt["path"][i] for i in keep] + [gt["path"][0]],
        "class": [predicted[i] for i in keep] + ["Alive"],
        "x": [gt["x"][i] for i in keep] + [0.0],
        "y": [gt["y"][i] for i in keep] + [0.0],
        "w": [gt["w"][i] for i in keep] + [3.0],
        "h": [gt["h"][i] for i in keep] + [3.0],
        "score": [0.9] * len(keep) + [0.5],
    }
    pcsv.write_csv(pa.table(rows), path)
    return gt, dead, alive, missed


def reference(ds: Dataset, source: str, classwise: bool = True) -> COCOeval:
    """pycocotools' COCOeval over the same boxes, in the store's order."""
    classes = sorted(ds.row["categories"])
    gt, dt = stored_boxes(ds, "gt"), stored_boxes(ds, "prediction", source)
    images = [
        r[0] for r in _store(ds).query("SELECT id FROM samples WHERE dataset_id = ?", [ds.id])
    ]
    dataset = {
        "images": [{"id": int(i)} for i in images],
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)],
        "annotations": [
            {
                "id": n + 1,
                "image_id": gt["sample_id"][n],
                "category_id": classes.index(gt["class"][n]) + 1,
                "bbox": [gt[k][n] for k in "xywh"],
                "area": gt["w"][n] * gt["h"][n],
                "iscrowd": int(gt["crowd"][n]),
            }
            for n in range(len(gt["id"]))
        ],
    }
    results = [
        {
            "image_id": dt["sample_id"][n],
            "category_id": classes.index(dt["class"][n]) + 1,
            "bbox": [dt[k][n] for k in "xywh"],
            "score": dt["score"][n],
        }
        for n in range(len(dt["id"]))
    ]
    return coco_eval(dataset, results, classwise)


def coco_eval(
    dataset: dict,
    results: list,
    classwise: bool = True,
    limits: tuple[int, ...] = (1, 10, 100),
    thresholds: np.ndarray | None = None,
) -> COCOeval:
    """pycocotools' COCOeval (evaluate, accumulate, summarize) of results on a COCO dict."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.params.useCats = int(classwise)
        ev.params.maxDets = list(limits)
        if thresholds is not None:
            ev.params.iouThrs = thresholds
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    """The corpus's box datasets in one workspace, each with generated predictions `m1`."""
    from visor.config import Settings

    home = tmp_path_factory.mktemp("evaluate")
    ws = Workspace(Settings(home=home / "home"))
    for seed, name in enumerate(BOX_DATASETS):
        ingest(ws, DATA / name, name)
        ds = ws.dataset(name)
        table = write_predictions(ds, home / f"{name}.csv", seed)
        report = ds.import_predictions(str(table), "m1")
        assert report["skipped_count"] == 0
    yield ws
    ws.close()


@pytest.mark.parametrize("name", list(BOX_DATASETS))
def test_corpus_metrics_equal_pycocotools(corpus: Workspace, name: str) -> None:
    ds = corpus.dataset(name)
    for classwise in (True, False):
        job = ds.evaluate("m1", name=f"m1-{classwise}", classwise=classwise, wait=True)
        assert job["state"] == "done", job["error"]
        ev = reference(ds, "m1", classwise)
        ours = ds.evaluations.get(f"m1-{classwise}")["metrics"]
        assert [ours["summary"][k] for k in SUMMARY_KEYS] == pytest.approx(list(ev.stats), abs=1e-6)
        if classwise:  # per class: AP over thresholds and recall points, area all, 100 dets
            precision = ev.eval["precision"][:, :, :, 0, 2]
            for k, row in enumerate(ours["classes"]):
                p = precision[:, :, k]
                assert row["ap"] == pytest.approx(float(np.mean(p[p > -1])), abs=1e-6)
        # Per-box outcomes at IoU 0.5 are COCO's matches (area all, all detections).
        counts = ours["counts"]
        matched = sum(
            int(np.count_nonzero(e["dtMatches"][0]))
            for e in ev.evalImgs
            if e is not None and e["aRng"] == [0, 1e10]
        )
        assert counts["tp"] == matched
        assert counts["gt"] == sum(BOX_DATASETS[name].values())


def test_matching_equals_pycocotools_on_generated_boxes() -> None:
    """Crowd regions, tied scores, duplicates, class swaps, area ranges, detection limits,
    custom thresholds: the precision and recall arrays equal pycocotools' exactly."""
    rng = np.random.default_rng(7)
    n_img, n_cls = 120, 4
    img = np.repeat(np.arange(n_img), rng.poisson(6, n_img))
    cls = rng.integers(0, n_cls, len(img))
    xywh = np.c_[rng.uniform(0, 300, (len(img), 2)), rng.uniform(3, 150, (len(img), 2))].round(1)
    crowd = rng.random(len(img)) < 0.05
    p = predicted_boxes(img, cls, xywh, n_cls, seed=3, duplicate=0.2)
    pred = np.c_[p["x"], p["y"], p["w"], p["h"]].round(1)
    gt_boxes = Boxes(img, cls, xywh, crowd=crowd)
    dt_boxes = Boxes(p["image"], p["cls"], pred, score=p["score"])
    dataset = {
        "images": [{"id": i} for i in range(n_img)],
        "categories": [{"id": k} for k in range(n_cls)],
        "annotations": [
            {
                "id": n + 1,
                "image_id": int(img[n]),
                "category_id": int(cls[n]),
                "bbox": xywh[n].tolist(),
                "area": float(xywh[n, 2] * xywh[n, 3]),
                "iscrowd": int(crowd[n]),
            }
            for n in range(len(img))
        ],
    }
    results = [
        {
            "image_id": int(p["image"][n]),
            "category_id": int(p["cls"][n]),
            "bbox": pred[n].tolist(),
            "score": float(p["score"][n]),
        }
        for n in range(len(pred))
    ]
    ranges = np.array(list(AREA_RANGES.values()))
    for classwise, limits, thresholds in [
        (True, (1, 10, 100), iou_range()),
        (False, (1, 10, 100), iou_range()),
        (True, (1, 10, 20), iou_range()),
        (True, (1, 10, 100), np.array([0.3, 0.5, 0.75])),
    ]:
        ev = coco_eval(dataset, results, classwise, limits, thresholds)
        m = match(
            gt_boxes,
            dt_boxes,
            thresholds,
            ranges,
            max_det=limits[-1],
            classwise=classwise,
            num_classes=n_cls,
        )
        curves = accumulate(
            m, gt_boxes, dt_boxes, num_classes=n_cls, classwise=classwise, max_dets=limits
        )
        np.testing.assert_array_equal(curves.precision, ev.eval["precision"])
        np.testing.assert_array_equal(curves.recall, ev.eval["recall"])
        if limits[-1] == 100:  # COCOeval.summarize() assumes 100
            stats = summary(curves, thresholds)
            assert [stats[k] for k in SUMMARY_KEYS] == pytest.approx(list(ev.stats), abs=1e-12)


def test_perfect_predictions_score_one_and_every_box_is_tp(corpus: Workspace, tmp_path) -> None:
    ds = corpus.dataset("coco_roboflow_trees")
    gt = stored_boxes(ds, "gt")
    table = pa.table(
        {
            "file_name": gt["path"],
            "class": gt["class"],
            **{k: gt[k] for k in "xywh"},
            "score": [1.0] * len(gt["id"]),
        }
    )
    pq = tmp_path / "perfect.parquet"
    import pyarrow.parquet as parquet

    parquet.write_table(table, pq)
    assert ds.import_predictions(str(pq), "oracle")["predictions"] == 461
    assert ds.evaluate("oracle", wait=True)["state"] == "done"
    result = ds.evaluations.get("oracle")["metrics"]
    assert result["summary"]["AP"] == pytest.approx(1.0)
    assert result["counts"] == {
        "tp": 461,
        "fp": 0,
        "fn": 0,
        "precision": 1.0,
        "recall": 1.0,
        "gt": 461,
        "predictions": 461,
    }
    assert result["confusion"]["matrix"] == [[461, 0], [0, 0]]
    counts = ds.evaluations.sample_counts("oracle").to_pydict()
    assert len(counts["sample_id"]) == 12 and sum(counts["tp"]) == 461
    assert sum(counts["fp"]) + sum(counts["fn"]) == 0


def test_confusions_are_counted_and_their_cells_filter_the_grid(
    corpus: Workspace, tmp_path: Path
) -> None:
    """Exact boxes with known classes swapped: 9 Dead boxes predicted as Tree, 4 Alive as
    Dead; one Tree box missed; one box where nothing is."""
    ds = corpus.dataset("yolo_roboflow_trees")
    gt, dead, alive, missed = write_swapped(ds, tmp_path / "swapped.csv")
    ds.import_predictions(str(tmp_path / "swapped.csv"), "swapped")
    assert ds.evaluate("swapped", wait=True)["state"] == "done"
    metrics = ds.evaluations.get("swapped")["metrics"]
    names = metrics["confusion"]["classes"]
    assert names == ["Alive", "Dead", "Tree"]
    assert metrics["confusion"]["matrix"] == [
        [5, 4, 0, 0],  # Alive: 5 right, 4 called Dead
        [0, 20, 9, 0],  # Dead: 20 right, 9 called Tree
        [0, 0, 62, 1],  # Tree: 62 right, 1 missed
        [1, 0, 0, 0],  # background: 1 Alive box where nothing is
    ]
    cell = ds.evaluations.cell("swapped", "Dead", "Tree")
    assert cell["count"] == 18  # 9 predictions and the 9 boxes they mistook
    dead_samples = {gt["sample_id"][i] for i in dead}
    assert {b["sample_id"] for b in cell["boxes"]} == dead_samples
    stored = Evaluations(_store(ds), ds.row)  # the service, for the tables behind the API
    ev_id = stored.id_of("swapped")
    total, _ = ds.samples(SampleFilter(evaluation="swapped", confusion=("Dead", "Tree")))
    assert total == len(dead_samples)
    total, _ = ds.samples(SampleFilter(evaluation="swapped", outcome="fn"))
    assert total == len({gt["sample_id"][i] for i in [missed, *dead, *alive]})
    by_errors = SampleFilter(evaluation="swapped")
    total, page = ds.samples(by_errors, sort="eval.errors", descending=True)
    found = dict(
        _store(ds).query(
            "SELECT sample_id, fp + fn FROM evaluation_samples WHERE evaluation_id = ?", [ev_id]
        )
    )
    errors = [found.get(s["id"], -1) for s in page]  # samples without boxes come last
    assert errors == sorted(errors, reverse=True) and errors[0] > 0
    outcomes = stored.outcomes("swapped", [gt["sample_id"][missed]])
    missed_id = gt["id"][missed]
    assert outcomes[missed_id]["outcome"] == "fn" and outcomes[missed_id]["cell"] == ["Tree", None]


def test_evaluations_side_by_side_and_by_name(corpus: Workspace) -> None:
    ds = corpus.dataset("labelimg_trees")
    ds.evaluate("m1", name="strict", iou=0.75, wait=True)
    ds.evaluate("m1", name="loose", iou=0.3, iou_thresholds="0.3,0.5", wait=True)
    found = {e["name"]: e for e in ds.evaluations.list()}
    assert {"strict", "loose"} <= set(found)
    assert found["strict"]["counts"]["tp"] < found["loose"]["counts"]["tp"]
    assert found["loose"]["summary"]["AP75"] == -1.0  # 0.75 is not among its thresholds
    ds.evaluations.delete("loose")
    with pytest.raises(NotFound, match="no evaluation 'loose'"):
        ds.evaluations.get("loose")


def test_yolo_prediction_files_are_read_with_the_dataset_class_names(
    corpus: Workspace, tmp_path: Path
) -> None:
    ds = corpus.dataset("yolo_roboflow_trees")
    folder = tmp_path / "predict" / "labels"
    folder.mkdir(parents=True)
    gt = stored_boxes(ds, "gt")
    sizes = dict(
        _store(ds).query("SELECT id, [width, height] FROM samples WHERE dataset_id = ?", [ds.id])
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
    coco_id, split = _store(ds).query_one(
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
    everywhere = ds.evaluate("valid-gt", name="valid-gt-all", wait=True)["result"]
    assert everywhere["counts"]["fn"] == 461 - len(results)
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


def test_evaluate_from_the_cli_and_over_http(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert (
        run_cli(home, "ingest", str(DATA / "yolo_roboflow_trees"), "--name", "trees").returncode
        == 0
    )
    from visor.config import Settings

    ws = Workspace(Settings(home=home))
    table = write_predictions(ws.dataset("trees"), tmp_path / "p.csv", seed=5)
    ws.close()
    done = run_cli(home, "import-predictions", "trees", str(table), "--source", "m1")
    assert done.returncode == 0, done.stderr
    assert "imported 197 predictions on 6 images" in done.stdout
    done = run_cli(home, "evaluate", "trees", "--source", "m1")
    assert done.returncode == 0, done.stderr
    assert (
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = " in done.stdout
    )
    assert "worst classes" in done.stdout
    assert "?dataset=trees&eval=m1" in done.stdout
    done = run_cli(home, "evaluations", "trees")
    assert done.returncode == 0 and "m1" in done.stdout and "AP50" in done.stdout
    done = run_cli(home, "evaluate", "trees", "--source", "nope")
    assert done.returncode == 1 and "no predictions from 'nope'" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    # COCO results of one split of a Roboflow export: --split says whose image ids they are.
    rf = DATA / "coco_roboflow_trees"
    assert run_cli(home, "ingest", str(rf), "--name", "rf").returncode == 0
    for split in ("valid", "test"):
        gt = json.loads((rf / split / "_annotations.coco.json").read_text())
        (tmp_path / f"{split}.json").write_text(
            json.dumps([{**a, "score": 0.5} for a in gt["annotations"]])
        )
    args = ("import-predictions", "rf", str(tmp_path / "valid.json"), "--source", "v")
    done = run_cli(home, *args)
    assert done.returncode == 1 and "pass --split S" in done.stderr, done.stderr
    done = run_cli(home, *args, "--split", "val")
    assert done.returncode == 0, done.stderr
    assert "imported 93 predictions on 2 images from v into rf" in done.stdout
    done = run_cli(home, "evaluate", "rf", "--source", "v", "--split", "val")
    assert done.returncode == 0, done.stderr
    assert (
        "93 true positives, 0 false positives, 0 missed (93 predictions, 93 boxes in split val)"
        in (done.stdout)
    )
    done = run_cli(home, "evaluations", "rf")
    row = r"│ v\.val\s+│ v\s+│ val\s+│ 0\.5 │ 1\.000 │"  # name, source, split, IoU, AP
    assert done.returncode == 0 and re.search(row, done.stdout), done.stdout

    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            job = client.post(
                "/api/datasets/trees/evaluate",
                json={"source": "m1", "name": "agnostic", "classwise": False},
            )
            assert job.status_code == 202
            assert wait_job(client, job.json()["id"])["state"] == "done"
            body = {"path": str(tmp_path / "test.json"), "source": "t", "split": "test"}
            imported = client.post("/api/datasets/rf/import-predictions", json=body)
            assert imported.status_code == 200, imported.text
            assert imported.json()["images"] == 2
            refused = client.post(
                "/api/datasets/rf/import-predictions", json={**body, "source": "t2", "split": None}
            )
            assert refused.status_code == 422 and "pass --split S" in refused.text
            listed = client.get("/api/datasets/trees/evaluations").json()
            assert [e["name"] for e in listed] == ["m1", "agnostic"]
            one = client.get("/api/datasets/trees/evaluations/m1").json()
            assert len(one["metrics"]["curves"]["precision"]["Tree"]) == 101
            page = client.get(
                "/api/datasets/trees/samples",
                params={
                    "evaluation": "m1",
                    "outcome": "fp",
                    "boxes": "all",
                    "sort": "eval.fp",
                    "order": "desc",
                },
            ).json()
            assert page["total"] > 0
            outcomes = {b.get("outcome") for s in page["items"] for b in s["boxes"]}
            assert {"tp", "fp"} <= outcomes
            import pyarrow as pa_

            counts = pa_.ipc.open_stream(
                client.get("/api/datasets/trees/evaluations/m1/samples").content
            ).read_all()
            assert counts.num_rows == 6  # the seventh image has no boxes
            assert sum(counts["tp"].to_pylist()) == one["metrics"]["counts"]["tp"]
            missing = client.get("/api/datasets/trees/evaluations/none")
            assert missing.status_code == 404 and "no evaluation 'none'" in missing.text
        # The same from Python, through the server.
        import visor

        with visor.open(home) as remote:
            assert type(remote).__name__ == "RemoteWorkspace"
            ds = remote.dataset("trees")
            assert ds.evaluate("m1", name="again", iou=0.75, wait=True)["state"] == "done"
            again = ds.evaluations["again"]["metrics"]
            assert again["counts"]["tp"] < one["metrics"]["counts"]["tp"]
            total, _ = ds.samples(SampleFilter(evaluation="m1", outcome="fp"))
            assert total == page["total"]
            cell = ds.evaluations.cell("m1", None, "Tree")
            tree = one["metrics"]["confusion"]["classes"].index("Tree")
            assert cell["count"] == one["metrics"]["confusion"]["matrix"][-1][tree] > 0
            counts = ds.evaluations.sample_counts("m1")
            assert sum(counts["fp"].to_pylist()) == one["metrics"]["counts"]["fp"]
            with pytest.raises(NotFound, match="no evaluation 'none'"):
                ds.samples(SampleFilter(evaluation="none", outcome="fp"))
    finally:
        server.stop()
