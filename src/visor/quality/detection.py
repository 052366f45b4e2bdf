"""Likely label errors in a detection dataset from a model's predictions: cleanlab's
object-detection scores (overlooked boxes, swapped classes, bad localisation) and its verdict
per image.

Arrays in, arrays out: boxes as flat arrays grouped by image; where they come from and where
the answers go is the caller's."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool

import numpy as np


@dataclass(frozen=True)
class Boxes:
    """Boxes of many images: `image` (which image, 0..n-1), `cls` (class index), `xywh`
    (n, 4) pixels, `score` (predictions only)."""

    image: np.ndarray
    cls: np.ndarray
    xywh: np.ndarray
    score: np.ndarray | None = None


@dataclass(frozen=True)
class DetectionIssues:
    quality: np.ndarray  # (images,) cleanlab's label quality score per image, in [0, 1]
    issue: np.ndarray  # (images,) bool: cleanlab flags the image's labels
    swap: np.ndarray  # per label box: low = its class is likely wrong (NaN: no score)
    badloc: np.ndarray  # per label box: low = likely badly placed
    overlooked: np.ndarray  # per predicted box: low = likely a box the labels miss


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.asarray(xywh, dtype=np.float64).copy()
    out[:, 2:] += out[:, :2]
    return out


def detection_issues(
    labels: Boxes, predictions: Boxes, num_images: int, num_classes: int
) -> DetectionIssues:
    """cleanlab's object-detection label-issue scores for `num_images` images."""
    from cleanlab.object_detection.filter import find_label_issues
    from cleanlab.object_detection.rank import (
        compute_badloc_box_scores,
        compute_overlooked_box_scores,
        compute_swap_box_scores,
        get_label_quality_scores,
    )

    assert predictions.score is not None
    lab_order = np.lexsort((np.arange(len(labels.image)), labels.image))
    # cleanlab reads an image's predictions class by class: order them so, to map back.
    pred_order = np.lexsort((np.arange(len(predictions.image)), predictions.cls, predictions.image))
    lab_xyxy, pred_xyxy = _xyxy(labels.xywh), _xyxy(predictions.xywh)
    lab_starts = np.searchsorted(labels.image[lab_order], np.arange(num_images + 1))
    pred_starts = np.searchsorted(predictions.image[pred_order], np.arange(num_images + 1))
    given: list[dict[str, np.ndarray]] = []
    predicted: list[np.ndarray] = []
    for i in range(num_images):
        rows = lab_order[lab_starts[i] : lab_starts[i + 1]]
        given.append({"bboxes": lab_xyxy[rows].reshape(-1, 4), "labels": labels.cls[rows]})
        mine = pred_order[pred_starts[i] : pred_starts[i + 1]]
        per_class = np.empty(num_classes, dtype=object)
        for k in range(num_classes):
            chosen = mine[predictions.cls[mine] == k]
            per_class[k] = np.column_stack([pred_xyxy[chosen], predictions.score[chosen]]).reshape(
                -1, 5
            )
        predicted.append(per_class)
    with warnings.catch_warnings():  # cleanlab warns about images it cannot score
        warnings.simplefilter("ignore")
        quality = get_label_quality_scores(given, predicted, verbose=False)
        with _pool_in_threads():
            issue = find_label_issues(given, predicted)
        swap = compute_swap_box_scores(labels=given, predictions=predicted)
        badloc = compute_badloc_box_scores(labels=given, predictions=predicted)
        overlooked = compute_overlooked_box_scores(labels=given, predictions=predicted)
    return DetectionIssues(
        quality=np.asarray(quality, dtype=np.float64),
        issue=np.asarray(issue, dtype=bool),
        swap=_back(swap, lab_order, len(labels.image)),
        badloc=_back(badloc, lab_order, len(labels.image)),
        overlooked=_back(overlooked, pred_order, len(predictions.image)),
    )


_SWAP = threading.Lock()


@contextmanager
def _pool_in_threads() -> Iterator[None]:
    """cleanlab's `find_label_issues` computes its per-class AP in a process pool (of one
    process, never closed). Forking a process that runs threads (the server's, DuckDB's) can
    leave the child waiting forever on a lock it copied held: a job hung that way. The same
    work runs in a pool of one thread instead."""
    import cleanlab.object_detection.filter as od

    with _SWAP:
        original = od.Pool
        od.Pool = ThreadPool
        try:
            yield
        finally:
            od.Pool = original


def _back(per_image: list[np.ndarray], order: np.ndarray, n: int) -> np.ndarray:
    """Per-image score lists (in `order`) back to one score per input box."""
    out = np.full(n, np.nan)
    parts = [np.asarray(s, dtype=np.float64).ravel() for s in per_image]
    flat = np.concatenate(parts) if parts else np.zeros(0)
    out[order] = flat
    return out
