"""The label-errors job: for every image-level label (from the image's vector) and every
ground-truth box (from the box's own vector, `visor embed --objects`), out-of-sample class
probabilities from its nearest neighbours, and cleanlab's verdict on the label. Images vote
among images and boxes among boxes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from visor.embedding.models import with_weights_warning
from visor.errors import InvalidInput
from visor.quality.detection import Boxes, detection_issues
from visor.quality.labels import NEIGHBOURS, label_issues, neighbour_probabilities
from visor.services.ivf import IvfShape, reduce_dims
from visor.services.jobs import JobContext
from visor.services.search import EXACT_GRAPH_LIMIT, neighbour_graph, unit_rows
from visor.store import Store
from visor.store import embeddings as vector_rows
from visor.store import evaluations as evaluation_rows
from visor.store import label_quality as label_rows
from visor.store import objects as object_rows


@dataclass(frozen=True)
class _Scored:
    rows: pa.Table | None  # label_quality rows (without dataset_id)
    labels: int  # labels of this kind
    not_embedded: int
    lonely: list[str]  # classes with one example: not scored


# Label votes need each item's neighbourhood, not exact distances: beyond exact search, the
# neighbours are looked for among PCA-reduced vectors, in an IVF index of twice the usual
# lists of which 2 are probed (at 1M x 384: 83 s -> 30 s; 95% of the neighbours found are
# in the item's own cluster, 97% with the usual search; bench/label_errors.py).
REDUCED_DIMS = 64
LABEL_PROBES = 2


def label_neighbours(
    unit: np.ndarray, progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `NEIGHBOURS` nearest other rows (and similarities) for label votes."""
    n = len(unit)
    if n <= EXACT_GRAPH_LIMIT:
        return neighbour_graph(unit, NEIGHBOURS, progress)
    if unit.shape[1] > REDUCED_DIMS:
        unit = unit_rows(reduce_dims(unit, REDUCED_DIMS))
    lists = int(min(max(round(2 * math.sqrt(n)), 1), 4096))
    shape = IvfShape(lists, min(LABEL_PROBES, lists))
    return neighbour_graph(unit, NEIGHBOURS, progress, shape=shape)


def _score(
    ctx: JobContext,
    model: str,
    label_ids: np.ndarray,
    sample_ids: np.ndarray,
    names: np.ndarray,
    vector_of: np.ndarray,  # row of `vectors` per label, -1 where it has none
    vectors: np.ndarray,
    what: str,
) -> _Scored:
    embedded = vector_of >= 0
    present, counts = np.unique(names[embedded], return_counts=True)
    lonely = present[counts < 2].tolist()  # one example: nothing else can vote for it
    scored = embedded & ~np.isin(names, lonely)
    if scored.sum() < 3 or len(np.unique(names[scored])) < 2:
        return _Scored(None, len(label_ids), int((~embedded).sum()), lonely)
    unit = unit_rows(vectors[vector_of[scored]])
    ctx.phase(f"finding each {what}'s {NEIGHBOURS} nearest neighbours", total=len(unit))
    neighbours, similarities = label_neighbours(unit, lambda done, total: ctx.progress(done, total))
    ctx.check_cancelled()
    ctx.phase(f"scoring {what} labels with cleanlab")
    kept_classes, given = np.unique(names[scored], return_inverse=True)
    probabilities = neighbour_probabilities(neighbours, similarities, given, len(kept_classes))
    found = label_issues(given, probabilities)
    rows = pa.table(
        {
            "label_id": pa.array(label_ids[scored].astype(np.int64)),
            "sample_id": pa.array(sample_ids[scored].astype(np.int32)),
            "model": pa.repeat(pa.scalar(model), int(scored.sum())),
            "quality": pa.array(found.quality.astype(np.float32)),
            "issue": pa.array(found.issue),
            "given": pa.array(kept_classes[given].astype(str)),
            "suggested": pa.array(kept_classes[found.suggested].astype(str)),
            "suggested_probability": pa.array(
                found.probabilities[np.arange(len(given)), found.suggested].astype(np.float32)
            ),
        }
    )
    return _Scored(rows, len(label_ids), int((~embedded).sum()), lonely)


def find_label_errors(
    store: Store, ctx: JobContext, dataset: dict[str, Any], model: str
) -> dict[str, Any]:
    started = time.monotonic()
    ctx.phase("reading labels and vectors")
    reason = not_applicable(store, dataset)
    if reason:
        raise InvalidInput(reason)
    dataset_id = int(dataset["id"])
    parts: dict[str, _Scored] = {}
    labels = label_rows.image_labels(store, dataset_id)
    if labels.num_rows:
        ids, vectors = vector_rows.vectors(store, dataset_id, model)  # ids ascending
        sample_of = labels["sample_id"].to_numpy()
        parts["images"] = _score(
            ctx, model, labels["id"].to_numpy(), sample_of,
            np.asarray(labels["class"].to_pylist(), dtype=str), _rows_of(ids, sample_of),
            vectors, "image",
        )  # fmt: skip
    boxes = label_rows.box_labels(store, dataset_id)
    if boxes.num_rows:
        found = object_rows.vectors(store, dataset_id, model, "gt")
        label_ids = boxes["id"].to_numpy()
        parts["boxes"] = _score(
            ctx, model, label_ids, boxes["sample_id"].to_numpy(),
            np.asarray(boxes["class"].to_pylist(), dtype=str),
            _rows_of(found.label_ids, label_ids), found.vectors, "box",
        )  # fmt: skip
    tables = [p.rows for p in parts.values() if p.rows is not None]
    if not tables:
        raise InvalidInput(_too_few(dataset["name"], model, parts))
    rows = pa.concat_tables(tables)
    label_rows.save(store, dataset_id, rows)
    lonely = sorted({c for p in parts.values() for c in p.lonely})
    flagged = int(np.asarray(rows["issue"]).sum())
    return with_weights_warning(
        {
            "model": model,
            "labels": sum(p.labels for p in parts.values()),
            "scored": rows.num_rows,
            "flagged": flagged,
            "not_embedded": sum(p.not_embedded for p in parts.values()),
            "classes_with_one_example": lonely,
            "by_kind": {
                kind: {
                    "labels": p.labels,
                    "scored": 0 if p.rows is None else p.rows.num_rows,
                    "flagged": 0 if p.rows is None else int(np.asarray(p.rows["issue"]).sum()),
                    "not_embedded": p.not_embedded,
                }
                for kind, p in parts.items()
            },
            "seconds": round(time.monotonic() - started, 2),
        }
    )


BOX_ISSUE_BELOW = 0.5  # a box of a flagged image is named when its score is below this


def find_detection_label_errors(
    store: Store, ctx: JobContext, dataset: dict[str, Any], source: str, split: str | None = None
) -> dict[str, Any]:
    """The detection label check: cleanlab's object-detection scores of the ground-truth
    boxes against the predictions of `source` (overlooked boxes, swapped classes, bad
    localisation), a score and verdict per image, and the boxes behind each verdict. `split`:
    only its images (those the model ran on: elsewhere every box would look unseen)."""
    started = time.monotonic()
    dataset_id = int(dataset["id"])
    ctx.phase("reading boxes and predictions")
    gt = evaluation_rows.boxes(store, dataset_id, "gt", None, split)
    predicted = evaluation_rows.boxes(store, dataset_id, "prediction", source, split)
    where = f" in split {split!r}" if split is not None else ""
    if not predicted.num_rows:
        raise InvalidInput(f"dataset {dataset['name']!r} has no predictions from {source!r}{where}")
    if not gt.num_rows:
        raise InvalidInput(f"dataset {dataset['name']!r} has no ground-truth boxes{where} to check")
    gt_samples, pred_samples = gt["sample_id"].to_numpy(), predicted["sample_id"].to_numpy()
    samples = np.union1d(gt_samples, pred_samples)
    names = [*gt["class"].to_pylist(), *predicted["class"].to_pylist()]
    classes = np.unique(np.asarray(names, dtype=str))

    def boxes(table: pa.Table, image: np.ndarray, scored: bool) -> Boxes:
        xywh = np.column_stack([table[c].to_numpy() for c in ("x", "y", "w", "h")])
        return Boxes(
            image=np.searchsorted(samples, image),
            cls=np.searchsorted(classes, np.asarray(table["class"].to_pylist(), dtype=str)),
            xywh=xywh,
            score=table["score"].to_numpy(zero_copy_only=False) if scored else None,
        )

    ctx.phase(f"scoring {len(samples)} images with cleanlab's detection check")
    found = detection_issues(
        boxes(gt, gt_samples, False), boxes(predicted, pred_samples, True), len(samples),
        len(classes),
    )  # fmt: skip
    ctx.check_cancelled()
    # One row per box and signal: ground-truth boxes have swap and badloc scores, predicted
    # boxes an overlooked score (a low one: a box the labels may be missing).
    n_gt, n_pred = gt.num_rows, predicted.num_rows
    sample_of = np.concatenate([gt_samples, gt_samples, pred_samples])
    label_of = np.concatenate([gt["id"].to_numpy()] * 2 + [predicted["id"].to_numpy()])
    signal = np.asarray(["swap"] * n_gt + ["badloc"] * n_gt + ["overlooked"] * n_pred)
    scores = np.concatenate([found.swap, found.badloc, found.overlooked])
    image_flagged = found.issue[np.searchsorted(samples, sample_of)]
    keep = ~np.isnan(scores)
    table = pa.table(
        {
            "sample_id": pa.array(sample_of[keep].astype(np.int32)),
            "label_id": pa.array(label_of[keep].astype(np.int64)),
            "source": pa.repeat(pa.scalar(source), int(keep.sum())),
            "signal": pa.array(signal[keep]),
            "score": pa.array(scores[keep].astype(np.float32)),
            "issue": pa.array(image_flagged[keep] & (scores[keep] < BOX_ISSUE_BELOW)),
        }
    )
    images = pa.table(
        {
            "sample_id": pa.array(samples.astype(np.int32)),
            "source": pa.repeat(pa.scalar(source), len(samples)),
            "quality": pa.array(found.quality.astype(np.float32)),
            "issue": pa.array(found.issue),
        }
    )
    label_rows.save_detection(store, dataset_id, images, table)
    flagged_boxes = np.asarray(table["issue"])
    signals = np.asarray(table["signal"])
    return {
        "source": source,
        "split": split,
        "images": len(samples),
        "flagged": int(found.issue.sum()),
        "boxes_flagged": {
            name: int((flagged_boxes & (signals == name)).sum())
            for name in ("overlooked", "swap", "badloc")
        },
        "seconds": round(time.monotonic() - started, 2),
    }


def _rows_of(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Per wanted key, its row in the ascending `keys`, or -1 where it is not there."""
    if not len(keys):
        return np.full(len(wanted), -1, np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, at, -1)


def _too_few(name: str, model: str, parts: dict[str, _Scored]) -> str:
    boxes = parts.get("boxes")
    if boxes is not None and boxes.not_embedded == boxes.labels and "images" not in parts:
        return (
            f"dataset {name!r}: its boxes have no vectors from {model!r} yet; label errors of "
            f"boxes need a vector per box (visor embed {name} --objects --model {model})"
        )
    return (
        f"dataset {name!r}: label errors need at least 3 embedded labels (images or boxes) in "
        "at least 2 classes with 2 or more examples each"
    )


def not_applicable(store: Store, dataset: dict[str, Any]) -> str | None:
    """Why label errors can't be found in this dataset, or None when they can (it has
    ground-truth labels)."""
    _, labels = label_rows.ground_truth_counts(store, dataset["id"])
    if labels:
        return None
    return f"dataset {dataset['name']!r} has no labels: label errors do not apply to it"


def summary(store: Store, dataset_id: int, examples: int = 12) -> dict[str, Any] | None:
    found = label_rows.summary(store, dataset_id, examples)
    detection = label_rows.detection_summary(store, dataset_id, examples)
    if found is None and detection is None:
        return None
    out: dict[str, Any] = with_weights_warning(found) if found else {}
    if detection is not None:
        out["detection"] = detection
    return out
