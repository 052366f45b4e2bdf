"""The evaluate job: a prediction source against the ground truth, COCO-style.

Boxes come out of the store as arrays, go through `evaluation.matching` and
`evaluation.metrics`, and the results go back in one transaction: the metrics (the 12 COCO
numbers, per class, by area range, PR curves, the confusion matrix), an outcome per box and
counts per sample. An interrupted evaluation wrote nothing; running it again starts over.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from visor.errors import InvalidInput, NotFound
from visor.evaluation.matching import AREA_RANGES, Boxes, match
from visor.evaluation.metrics import (
    COCO_THRESHOLDS,
    RECALL_POINTS,
    Curves,
    accumulate,
    iou_range,
    per_class_ap,
    summary,
)
from visor.evaluation.outcomes import outcomes
from visor.services.ingest import NAME_PATTERN
from visor.services.jobs import JobContext
from visor.store import Store
from visor.store import evaluations as evaluation_rows
from visor.store import samples as sample_rows

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
    boxes, samples, confusion = outcomes(m, at, gt, dt, gt_ids, dt_ids, classes)
    metrics = _metrics(curves, all_thr, len(metric_thr), at, classes, options.classwise, gt, dt)
    metrics["confusion"] = _confusion_matrix(confusion, classes)
    if split is None:
        predicted, warning = unpredicted_warning(store, dataset["id"], options.source)
        if warning is not None:
            metrics.update(warning=warning, predicted_splits=predicted)
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
    return {
        "evaluation": name,
        "source": options.source,
        "split": split,
        "summary": metrics["summary"],
        "counts": metrics["counts"],
        "worst_classes": worst_classes(metrics),
        "warning": metrics.get("warning"),
        "seconds": round(time.perf_counter() - started, 3),
    }


def unpredicted_warning(
    store: Store, dataset_id: int, source: str
) -> tuple[list[str | None], str | None]:
    """The splits `source` predicted on, and where that is some of them only (a model run on
    its validation split) the warning that, evaluated on the whole dataset, the other splits'
    boxes count as missed, as pycocotools counts them, with the split to evaluate instead."""
    predicted, others = evaluation_rows.unpredicted_splits(store, dataset_id, source)
    if not others or not predicted:
        return predicted, None

    def named(splits: Iterable[str | None]) -> str:
        listed = [s or "(none)" for s in splits]
        return ("split " if len(listed) == 1 else "splits ") + ", ".join(listed)

    images = sum(n for _, n, _ in others)
    boxes = sum(b for _, _, b in others)
    instead = (
        f"evaluate on split {predicted[0]} alone (--split {predicted[0]}) to score only the "
        "images it ran on"
        if len(predicted) == 1 and predicted[0] is not None
        else "evaluate one split at a time (--split S) to score only the images it ran on"
    )
    return predicted, (
        f"{source} has predictions on images of {named(predicted)} only: the {boxes} "
        f"ground-truth boxes on the {images} images of {named(s for s, _, _ in others)} "
        f"count as missed; {instead}"
    )


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
