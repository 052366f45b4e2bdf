"""Evaluating a detector: predictions in (COCO results, YOLO .txt, tables), COCO metrics equal
to pycocotools' on the real-data corpus and on generated boxes, per-box outcomes, the confusion
matrix and its cells, sample filters and sorts, the CLI, HTTP, and bad input."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from box_corpus import BOX_DATASETS, DATA, box_corpus, store_of, stored_boxes, write_predictions
from conftest import Server, run_cli, wait_job
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from visor.errors import NotFound
from visor.evaluation.matching import AREA_RANGES, Boxes, match
from visor.evaluation.metrics import accumulate, iou_range, summary
from visor.services.evaluate import Evaluations
from visor.store.samples import SampleFilter
from visor.synthetic import predicted_boxes
from visor.workspace import Dataset, Workspace

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
        r[0] for r in store_of(ds).query("SELECT id FROM samples WHERE dataset_id = ?", [ds.id])
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
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = box_corpus(tmp_path_factory.mktemp("evaluate"))
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
    stored = Evaluations(store_of(ds), ds.row)  # the service, for the tables behind the API
    ev_id = stored.id_of("swapped")
    total, _ = ds.samples(SampleFilter(evaluation="swapped", confusion=("Dead", "Tree")))
    assert total == len(dead_samples)
    total, _ = ds.samples(SampleFilter(evaluation="swapped", outcome="fn"))
    assert total == len({gt["sample_id"][i] for i in [missed, *dead, *alive]})
    by_errors = SampleFilter(evaluation="swapped")
    total, page = ds.samples(by_errors, sort="eval.errors", descending=True)
    found = dict(
        store_of(ds).query(
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
