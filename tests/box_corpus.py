"""The corpus's box datasets for the evaluation tests: their ground truth as stored, and
generated predictions of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
from conftest import ingest

from visor.config import Settings
from visor.store import Store
from visor.synthetic import predicted_boxes
from visor.workspace import Dataset, Workspace

DATA = Path(__file__).parent / "data"
BOX_DATASETS = {  # name -> ground-truth boxes per class
    "coco_roboflow_trees": {"Tree": 461},
    "yolo_roboflow_trees": {"Alive": 9, "Dead": 29, "Tree": 63},
    "labelimg_trees": {"Alive": 9, "Dead": 28, "Tree": 61},
    "voc_trees": {"Alive": 9, "Dead": 28, "Tree": 61},
}


def store_of(ds: Dataset) -> Store:
    """The store behind a dataset of this process (the tests read its tables directly)."""
    return ds._runner.engine.store  # type: ignore[attr-defined]


def stored_boxes(ds: Dataset, kind: str, source: str | None = None) -> dict[str, list]:
    return (
        store_of(ds)
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


def box_corpus(home: Path) -> Workspace:
    """The corpus's box datasets in one workspace, each with generated predictions `m1`."""
    ws = Workspace(Settings(home=home / "home"))
    for seed, name in enumerate(BOX_DATASETS):
        ingest(ws, DATA / name, name)
        ds = ws.dataset(name)
        table = write_predictions(ds, home / f"{name}.csv", seed)
        report = ds.import_predictions(str(table), "m1")
        assert report["skipped_count"] == 0
    return ws
