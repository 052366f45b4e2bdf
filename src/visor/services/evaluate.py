"""The evaluate job: a prediction source against the ground truth, COCO-style.

Boxes come out of the store as arrays, go through `evaluation.matching` and
`evaluation.metrics`, and the results go back in one transaction: the metrics (the 12 COCO
numbers, per class, by area range, PR curves, the confusion matrix), an outcome per box and
counts per sample. An interrupted evaluation wrote nothing; running it again starts over.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from visor.errors import InvalidInput, NotFound
from visor.evaluation.matching import AREA_RANGES, Boxes, Matching, match, pair_iou
from visor.evaluation.metrics import (
    COCO_THRESHOLDS,
    RECALL_POINTS,
    Curves,
    accumulate,
    iou_range,
    per_class_ap,
    summary,
)
from visor.services.ingest import NAME_PATTERN
from visor.services.jobs import JobContext
from visor.store import Store
from visor.store import evaluations as evaluation_rows
from visor.store import samples as sample_rows

_OUTCOMES = ("tp", "fp", "fn", "ignored")


SPLIT = "only the images of this split (the one the model was run on)"


class EvaluateParams(BaseModel):
    """What an evaluation is asked with: the `evaluate` operation's fields, and what the
    evaluation service reads (`resolved()` fills the default name)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    source: str = Field(description="the prediction source to evaluate")
    evaluation: str | None = Field(
        default=None,
        alias="name",
        description="the evaluation's name (default: the source; with a split, source.split)",
    )
    iou: float = Field(
        default=0.5, gt=0, le=1, description="IoU of per-box outcomes, counts and confusion matrix"
    )
    iou_thresholds: str = Field(
        default=COCO_THRESHOLDS, description="IoU thresholds of AP/AR: start:stop:step or a list"
    )
    classwise: bool = Field(
        default=True, description="match boxes of the same class only (false: across classes)"
    )
    max_dets: int = Field(
        default=100, ge=10, le=10_000, description="predictions counted per image and class"
    )
    split: str | None = Field(default=None, description=SPLIT)

    def resolved(self) -> Self:
        """With its name filled in, and the thresholds checked (fails before a job starts)."""
        name = self.evaluation or self.source
        if self.evaluation is None and self.split is not None:  # beside the whole run
            name += "." + re.sub(r"[^A-Za-z0-9_.-]", "_", self.split)
        if not NAME_PATTERN.match(name):
            raise InvalidInput(f"evaluation name {name!r}: use letters, digits, '_', '-' or '.'")
        thresholds(self.iou_thresholds)
        return self.model_copy(update={"evaluation": name})


def check_split(store: Store, dataset: dict[str, Any], split: str | None) -> None:
    """Refuse a split the dataset doesn't have, naming the ones it has (checked when a job
    is asked for, before it is queued)."""
    if split is None:
        return
    known = sample_rows.splits(store, dataset["id"])
    if split not in known:
        raise InvalidInput(
            f"dataset {dataset['name']!r} has no split {split!r} "
            f"(its splits: {', '.join(known) or 'none'})"
        )


def thresholds(text: str) -> np.ndarray:
    """`0.5:0.95:0.05` (as COCO makes it) or `0.5,0.75`."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            found = iou_range(start, stop, step)
        else:
            found = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise InvalidInput(
            f"iou thresholds {text!r}: use start:stop:step (0.5:0.95:0.05) or a list (0.5,0.75)"
        ) from None
    if not len(found) or not ((found > 0) & (found <= 1)).all() or len(found) > 100:
        raise InvalidInput(f"iou thresholds {text!r}: 1 to 100 values in (0, 1]")
    return found


def evaluate(
    store: Store, ctx: JobContext, dataset: dict[str, Any], options: EvaluateParams
) -> dict[str, Any]:
    started = time.perf_counter()
    options = options.resolved()
    name = str(options.evaluation)
    ctx.phase("reading boxes")
    classes = sorted(dataset["categories"])
    split = options.split
    where = f" in split {split!r}" if split is not None else ""
    gt_ids, gt = _boxes(store, dataset["id"], classes, "gt", None, split)
    dt_ids, dt = _boxes(store, dataset["id"], classes, "prediction", options.source, split)
    if not len(dt):
        raise NotFound(
            f"dataset {dataset['name']!r} has no predictions from {options.source!r}{where}"
        )
    if not len(gt):
        raise InvalidInput(
            f"dataset {dataset['name']!r} has no ground-truth boxes{where} to compare with"
        )
    ctx.check_cancelled()

    ctx.phase(f"matching {len(dt):,} predictions to {len(gt):,} boxes", total=3)
    metric_thr = thresholds(options.iou_thresholds)
    matched = metric_thr == options.iou
    all_thr = metric_thr if matched.any() else np.r_[metric_thr, options.iou]
    at = int(np.flatnonzero(all_thr == options.iou)[0])
    ranges = np.array(list(AREA_RANGES.values()))
    K = len(classes)
    m = match(
        gt,
        dt,
        all_thr,
        ranges,
        max_det=options.max_dets,
        classwise=options.classwise,
        num_classes=K,
    )
    ctx.progress(1)
    ctx.check_cancelled()
    limits = (1, 10, options.max_dets)
    curves = accumulate(m, gt, dt, num_classes=K, classwise=options.classwise, max_dets=limits)
    ctx.progress(2)
    ctx.check_cancelled()
    boxes, samples, confusion = _outcomes(m, at, gt, dt, gt_ids, dt_ids, classes)
    metrics = _metrics(curves, all_thr, len(metric_thr), at, classes, options.classwise, gt, dt)
    metrics["confusion"] = _confusion_matrix(confusion, classes)
    ctx.progress(3)

    ctx.phase("writing results")
    seconds = time.perf_counter() - started
    evaluation_rows.save(
        store,
        dataset["id"],
        {
            "name": name,
            "source": options.source,
            "params": options.model_dump(by_alias=True),
            "metrics": metrics,
            "job_id": ctx.job.id,
            "seconds": round(seconds, 3),
        },
        boxes,
        samples,
    )
    counts = metrics["counts"]
    ctx.job.message = (
        f"{name}: AP {metrics['summary']['AP']:.3f}; {counts['tp']} true positives, "
        f"{counts['fp']} false positives, {counts['fn']} missed"
    )
    return {
        "evaluation": name,
        "source": options.source,
        "split": split,
        "summary": metrics["summary"],
        "counts": metrics["counts"],
        "worst_classes": worst_classes(metrics),
        "seconds": round(time.perf_counter() - started, 3),
    }


def worst_classes(metrics: dict[str, Any], n: int = 5) -> list[dict[str, Any]]:
    ranked = [c for c in metrics["classes"] if c["ap"] is not None and c["ap"] >= 0]
    return sorted(ranked, key=lambda c: (c["ap"], c["class"]))[:n]


def _boxes(
    store: Store,
    dataset_id: int,
    classes: list[str],
    kind: str,
    source: str | None,
    split: str | None,
) -> tuple[np.ndarray, Boxes]:
    """A dataset's boxes of one kind (and source, and split) in id order, images being sample
    ids: (label ids, boxes)."""
    table = evaluation_rows.boxes(store, dataset_id, kind, source, split)
    cols = {c: table[c].to_numpy(zero_copy_only=False) for c in table.column_names if c != "class"}
    found = pc.index_in(table["class"], value_set=pa.array(classes, pa.string()))
    cls = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    known = cls >= 0  # predictions were checked at import; this guards older stores
    xywh = np.stack([cols[c] for c in ("x", "y", "w", "h")], axis=1).astype(np.float64)
    boxes = Boxes(
        image=cols["sample_id"].astype(np.int64)[known],
        cls=cls[known],
        xywh=xywh[known],
        score=cols["score"].astype(np.float64)[known] if kind == "prediction" else None,
        crowd=cols["crowd"].astype(bool)[known] if kind == "gt" else None,
    )
    return cols["id"].astype(np.int64)[known], boxes


def _outcomes(
    m: Matching,
    at: int,
    gt: Boxes,
    dt: Boxes,
    gt_ids: np.ndarray,
    dt_ids: np.ndarray,
    classes: list[str],
) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """Per-box outcomes at the chosen threshold, per-sample counts, and the confusion matrix
    ((K + 1) x (K + 1): ground-truth class by predicted class, the last of each the
    background). A leftover prediction that overlaps a leftover box of another class at the
    threshold is that box's class mistaken for its own."""
    A = len(m.ranges)
    row = at * A  # area "all"
    D = len(dt)
    # Predictions: beyond the detection limit nothing is said (outcome NULL).
    dt_outcome = np.full(D, -1, np.int8)
    evaluated = m.dt_index
    ev_matched = m.dt_matched[row]
    ev_ignored = m.dt_ignored[row]
    dt_outcome[evaluated] = np.where(ev_ignored, 3, np.where(ev_matched, 0, 1))
    dt_match = np.full(D, -1, np.int64)
    dt_match[evaluated] = m.dt_gt[at]
    dt_iou = np.full(D, np.nan)
    dt_iou[evaluated] = m.dt_iou[at]
    G = len(gt)
    gt_outcome = np.where(m.gt_ignored[0], 3, np.where(m.gt_dt[at] >= 0, 0, 2)).astype(np.int8)
    gt_match = np.full(G, -1, np.int64)
    has = m.gt_dt[at] >= 0
    gt_match[has] = evaluated[m.gt_dt[at][has]]
    gt_iou = np.full(G, np.nan)
    gt_iou[has] = dt_iou[gt_match[has]]

    # Confusion: leftover predictions against leftover boxes of any class, at the same IoU.
    fp = np.flatnonzero(dt_outcome == 1)
    fn = np.flatnonzero(gt_outcome == 2)
    pairs = _confusions(gt, dt, fp, fn, m.thresholds[at])
    dt_conf, gt_conf = pairs
    dt_cell_gt = np.where(dt_outcome == 0, dt.cls, -1)
    dt_cell_gt[dt_conf] = gt.cls[gt_conf]
    gt_cell_pred = np.where(gt_outcome == 0, gt.cls, -1)
    gt_cell_pred[gt_conf] = dt.cls[dt_conf]
    dt_match_id = np.where(dt_match >= 0, gt_ids[np.maximum(dt_match, 0)], -1)
    dt_match_id[dt_conf] = gt_ids[gt_conf]
    gt_match_id = np.where(gt_match >= 0, dt_ids[np.maximum(gt_match, 0)], -1)
    gt_match_id[gt_conf] = dt_ids[dt_conf]
    dt_conf_iou = _pair_iou(gt, dt, gt_conf, dt_conf)
    dt_iou[dt_conf] = dt_conf_iou
    gt_iou[gt_conf] = dt_conf_iou

    def column(codes: np.ndarray, names: Sequence[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32), mask=codes < 0), pa.array(list(names))
        ).cast(pa.string())

    boxes = pa.table(
        {
            "sample_id": pa.array(np.r_[dt.image, gt.image].astype(np.int32)),
            "label_id": pa.array(np.r_[dt_ids, gt_ids]),
            "kind": pa.DictionaryArray.from_arrays(
                pa.array(np.r_[np.zeros(D, np.int8), np.ones(G, np.int8)]),
                pa.array(["prediction", "gt"]),
            ).cast(pa.string()),
            "outcome": column(np.r_[dt_outcome, gt_outcome], _OUTCOMES),
            "iou": pa.array(
                np.r_[dt_iou, gt_iou].astype(np.float32), mask=np.isnan(np.r_[dt_iou, gt_iou])
            ),
            "match_id": pa.array(
                np.r_[dt_match_id, gt_match_id], mask=np.r_[dt_match_id, gt_match_id] < 0
            ),
            "gt_class": column(np.r_[dt_cell_gt, gt.cls], classes),
            "pred_class": column(np.r_[dt.cls, gt_cell_pred], classes),
        }
    )
    # Per sample: counts over the evaluated boxes.
    ids, inverse = np.unique(np.r_[dt.image, gt.image], return_inverse=True)
    outcome_all = np.r_[dt_outcome, gt_outcome]
    kind_dt = np.r_[np.ones(D, bool), np.zeros(G, bool)]
    confused = np.zeros(D + G, bool)
    confused[dt_conf] = True

    def count(mask: np.ndarray) -> pa.Array:
        return pa.array(np.bincount(inverse[mask], minlength=len(ids)).astype(np.int32))

    samples = pa.table(
        {
            "sample_id": pa.array(ids.astype(np.int32)),
            "tp": count(kind_dt & (outcome_all == 0)),
            "fp": count(kind_dt & (outcome_all == 1)),
            "fn": count(~kind_dt & (outcome_all == 2)),
            "confused": count(confused),
        }
    )
    K = len(classes)
    counted = (dt_outcome == 0) | (dt_outcome == 1)
    matrix = np.zeros((K + 1, K + 1), np.int64)
    np.add.at(matrix, (np.where(dt_cell_gt >= 0, dt_cell_gt, K)[counted], dt.cls[counted]), 1)
    missed = (gt_outcome == 2) & (gt_cell_pred < 0)
    np.add.at(matrix, (gt.cls[missed], K), 1)
    return boxes, samples, matrix


def _confusions(
    gt: Boxes, dt: Boxes, fp: np.ndarray, fn: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching, in score order, of unmatched predictions to unmatched ground truth of
    any class in the same image: (prediction positions, ground-truth positions)."""
    if not len(fp) or not len(fn):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    sub_gt = Boxes(gt.image[fn], gt.cls[fn], gt.xywh[fn])
    assert dt.score is not None
    sub_dt = Boxes(dt.image[fp], dt.cls[fp], dt.xywh[fp], score=dt.score[fp])
    m = match(
        sub_gt,
        sub_dt,
        np.array([iou]),
        np.array([[0.0, np.inf]]),
        max_det=len(fp),
        classwise=False,
    )
    matched = m.dt_gt[0] >= 0
    return fp[m.dt_index[matched]], fn[m.dt_gt[0][matched]]


def _pair_iou(gt: Boxes, dt: Boxes, g: np.ndarray, d: np.ndarray) -> np.ndarray:
    return pair_iou(dt.xywh[d], gt.xywh[g], np.zeros(len(g), bool))


def _metrics(
    curves: Curves,
    all_thr: np.ndarray,
    n_metric: int,
    at: int,
    classes: list[str],
    classwise: bool,
    gt: Boxes,
    dt: Boxes,
) -> dict[str, Any]:
    metric = Curves(
        curves.precision[:n_metric],
        curves.recall[:n_metric],
        curves.positives,
        curves.tp[:n_metric],
        curves.fp[:n_metric],
    )
    thr = all_thr[:n_metric]
    stats = summary(metric, thr)
    per = per_class_ap(metric, thr)
    # Counts at the chosen threshold, area "all", the largest detection limit.
    tp = curves.tp[at, :, 0, -1]
    fp = curves.fp[at, :, 0, -1]
    positives = curves.positives[:, 0]
    K = len(classes)
    gt_count = np.bincount(gt.cls, minlength=K)
    dt_count = np.bincount(dt.cls, minlength=K)

    def num(value: float) -> float | None:  # unrounded: equal to pycocotools' to the last digit
        return None if value < 0 else float(value)

    def ratio(a: float, b: float) -> float | None:
        return float(a) / float(b) if b else None

    rows = []
    precision_curves = {}
    if classwise:
        for k, name in enumerate(classes):
            rows.append(
                {
                    "class": name,
                    "ap": num(per["ap"][k]),
                    "ap50": num(per["ap50"][k]),
                    "ap75": num(per["ap75"][k]),
                    "ar": num(per["ar"][k]),
                    **{f"ap_{area}": num(per[f"ap_{area}"][k]) for area in list(AREA_RANGES)[1:]},
                    "precision": ratio(tp[k], tp[k] + fp[k]),
                    "recall": ratio(tp[k], positives[k]),
                    "tp": int(tp[k]),
                    "fp": int(fp[k]),
                    "fn": int(positives[k] - tp[k]),
                    "gt": int(gt_count[k]),
                    "predictions": int(dt_count[k]),
                }
            )
            curve = curves.precision[at, :, k, 0, -1]
            if curve[0] >= 0:
                precision_curves[name] = [round(float(v), 5) for v in curve]
    all_tp, all_fp, all_pos = int(tp.sum()), int(fp.sum()), int(positives.sum())
    return {
        "summary": stats,
        "iou": float(all_thr[at]),
        "iou_thresholds": [round(float(t), 6) for t in thr],
        "counts": {
            "tp": all_tp,
            "fp": all_fp,
            "fn": all_pos - all_tp,
            "precision": ratio(all_tp, all_tp + all_fp),
            "recall": ratio(all_tp, all_pos),
            "gt": len(gt),
            "predictions": len(dt),
        },
        "classes": rows,
        "curves": {
            "iou": float(all_thr[at]),
            "recall": [round(float(r), 2) for r in RECALL_POINTS],
            "precision": precision_curves,
        },
    }


def _confusion_matrix(matrix: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Rows: ground truth, columns: predictions; the last row and column are the background
    (a prediction that matched nothing, a box that nothing found)."""
    return {"classes": classes, "matrix": matrix.tolist()}


class Evaluations:
    """A dataset's evaluations, by name (`ds.evaluations`)."""

    def __init__(self, store: Store, dataset: dict[str, Any]) -> None:
        self.store = store
        self.dataset = dataset

    def list(self) -> list[dict[str, Any]]:
        """Every evaluation with its summary and counts (no curves)."""
        return evaluation_rows.list_evaluations(self.store, self.dataset["id"])

    def get(self, name: str) -> dict[str, Any]:
        """One evaluation with all its metrics."""
        found = evaluation_rows.get(self.store, self.dataset["id"], name)
        if found is None:
            raise self._unknown(name)
        return found

    def _unknown(self, name: str) -> NotFound:
        known = ", ".join(e["name"] for e in self.list()) or "none yet"
        return NotFound(
            f"dataset {self.dataset['name']!r} has no evaluation {name!r} (known: {known})"
        )

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.get(name)

    def id_of(self, name: str) -> int:
        """The evaluation's id (without reading its metrics: grid pages ask for it)."""
        found = evaluation_rows.id_of(self.store, self.dataset["id"], name)
        if found is None:
            raise self._unknown(name)
        return found

    def delete(self, name: str) -> None:
        if not evaluation_rows.delete(self.store, self.dataset["id"], name):
            raise self._unknown(name)

    def sample_counts(self, name: str) -> pa.Table:
        """sample_id, tp, fp, fn, confused per evaluated sample."""
        return evaluation_rows.sample_counts(self.store, self.id_of(name))

    def outcomes(self, name: str, sample_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """By label id: outcome, IoU, matched label and confusion cell of each box."""
        return evaluation_rows.outcomes(self.store, self.id_of(name), sample_ids)

    def cell(
        self, name: str, gt_class: str | None, pred_class: str | None, limit: int = 1000
    ) -> dict[str, Any]:
        """The boxes in one confusion-matrix cell (None: the background)."""
        total, boxes = evaluation_rows.cell_labels(
            self.store, self.id_of(name), gt_class, pred_class, limit
        )
        return {"gt_class": gt_class, "pred_class": pred_class, "count": total, "boxes": boxes}
