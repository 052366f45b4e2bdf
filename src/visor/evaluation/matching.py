"""COCO-style greedy matching of predicted boxes to ground truth, vectorised.

The rules are pycocotools' COCOeval for boxes: within each image (and class, unless agnostic)
predictions are taken in score order, at most `max_det` of them; each takes the unmatched ground
truth box with the highest IoU at or above the threshold, preferring boxes that count over
ignored ones (crowd regions, or outside the area range); a crowd region can take any number of
predictions and its IoU is the overlap over the prediction's area.

Instead of COCOeval's loops per image, class, threshold and prediction, matching runs in rounds:
round r matches the r-th prediction of every group at once, for every IoU threshold and every
area range at once (a row each). Groups never share boxes, so a round has no conflicts.
This module knows arrays only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# COCO's area ranges (in pixels², both ends included) and their names.
AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e10),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}


@dataclass(frozen=True)
class Boxes:
    """Boxes in their original order (that order breaks ties, as the order in a COCO file does).

    `image` and `cls` are integer keys; `cls` indexes the class list; boxes are x, y, w, h.
    `score` is for predictions, `crowd` for ground truth; `area` defaults to w * h."""

    image: np.ndarray
    cls: np.ndarray
    xywh: np.ndarray
    score: np.ndarray | None = None
    crowd: np.ndarray | None = None
    area: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.image)

    @property
    def areas(self) -> np.ndarray:
        return self.area if self.area is not None else self.xywh[:, 2] * self.xywh[:, 3]

    @property
    def crowds(self) -> np.ndarray:
        return self.crowd if self.crowd is not None else np.zeros(len(self), bool)


@dataclass(frozen=True)
class Matching:
    """The outcome of matching, one row per (IoU threshold, area range): row = t * A + a.

    Predictions are those evaluated (at most `max_det` per group), listed in `dt_index`
    (positions in the input) with their `rank` in their group."""

    thresholds: np.ndarray  # (T,)
    ranges: np.ndarray  # (A, 2)
    dt_index: np.ndarray  # (D,) int64
    rank: np.ndarray  # (D,) int64
    dt_matched: np.ndarray  # (T*A, D) bool
    dt_ignored: np.ndarray  # (T*A, D) bool: matched to an ignored box, or unmatched off-range
    dt_gt: np.ndarray  # (T, D) int64: the matched ground truth (area "all"), -1 if none
    dt_iou: np.ndarray  # (T, D) float64: IoU with that box, NaN if none
    gt_ignored: np.ndarray  # (A, G) bool
    gt_dt: np.ndarray  # (T, G) int64: position in dt_index of the matching prediction, -1


def group_keys(boxes: Boxes, classwise: bool, num_classes: int) -> np.ndarray:
    image = boxes.image.astype(np.int64)
    return image * max(num_classes, 1) + boxes.cls if classwise else image


def pair_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of each row of `dt` with the same row of `gt` (both x, y, w, h), computed with the
    same operations as COCO's C code so that equal boxes give bit-equal values (ties matter)."""
    w = np.minimum(dt[:, 2] + dt[:, 0], gt[:, 2] + gt[:, 0]) - np.maximum(dt[:, 0], gt[:, 0])
    h = np.minimum(dt[:, 3] + dt[:, 1], gt[:, 3] + gt[:, 1]) - np.maximum(dt[:, 1], gt[:, 1])
    inter = w * h
    da = dt[:, 2] * dt[:, 3]
    union = np.where(crowd, da, da + gt[:, 2] * gt[:, 3] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where((w > 0) & (h > 0), iou, 0.0)


def ranked_predictions(
    dt: Boxes, classwise: bool, num_classes: int, max_det: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions in evaluation order (group, score descending, then class and input order),
    the first `max_det` of each group: (positions in the input, group keys, ranks)."""
    assert dt.score is not None
    groups = group_keys(dt, classwise, num_classes)
    # lexsort is stable: equal keys keep the input order. Within a class-wise group the
    # class is the same, so only the agnostic order needs it.
    keys = (-dt.score, groups) if classwise else (dt.cls, -dt.score, groups)
    order = np.lexsort(keys)
    groups = groups[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = rank < max_det
    return order[keep], groups[keep], rank[keep]


def match(
    gt: Boxes,
    dt: Boxes,
    thresholds: np.ndarray,
    ranges: np.ndarray,
    *,
    max_det: int = 100,
    classwise: bool = True,
    num_classes: int = 1,
) -> Matching:
    thresholds = np.asarray(thresholds, np.float64)
    ranges = np.asarray(ranges, np.float64).reshape(-1, 2)
    T, A, G = len(thresholds), len(ranges), len(gt)
    rows = T * A
    dt_index, dt_groups, rank = ranked_predictions(dt, classwise, num_classes, max_det)
    D = len(dt_index)

    gt_area, dt_area = gt.areas, dt.areas[dt_index]
    crowd = gt.crowds.astype(bool)
    off_gt = (gt_area[None] < ranges[:, :1]) | (gt_area[None] > ranges[:, 1:])
    gt_ignored = crowd[None] | off_gt  # (A, G)

    # Ground truth sorted by group, then class and input order (COCO's order within a group).
    gt_groups = group_keys(gt, classwise, num_classes)
    gt_order = np.lexsort((gt_groups,) if classwise else (gt.cls, gt_groups))
    sorted_groups = gt_groups[gt_order]
    first = np.searchsorted(sorted_groups, dt_groups, "left")
    count = np.searchsorted(sorted_groups, dt_groups, "right") - first

    # Every (prediction, ground truth) pair of a group; only pairs that can match are kept.
    pair_dt = np.repeat(np.arange(D), count)
    within = np.arange(len(pair_dt)) - np.repeat(np.cumsum(count) - count, count)
    pair_gt = gt_order[np.repeat(first, count) + within]  # by COCO's order of the boxes
    iou = pair_iou(dt.xywh[dt_index[pair_dt]], gt.xywh[pair_gt], crowd[pair_gt])
    floor = np.minimum(thresholds, 1 - 1e-10)
    can = iou >= (floor.min() if T else np.inf)
    pair_dt, pair_gt, iou = pair_dt[can], pair_gt[can], iou[can]
    # Pairs come by prediction, then COCO's order of the boxes: only the round is sorted.
    order = np.argsort(rank[pair_dt], kind="stable")
    pair_dt, pair_gt, iou = pair_dt[order], pair_gt[order], iou[order]

    dt_matched = np.zeros((rows, D), bool)
    dt_ignored = np.zeros((rows, D), bool)
    dt_gt = np.full((T, D), -1, np.int64)
    dt_iou = np.full((T, D), np.nan)
    gt_dt = np.full((T, G), -1, np.int64)
    taken = np.zeros((rows, G), bool)
    row_floor = np.repeat(floor, A)[:, None]
    row_area = np.tile(np.arange(A), T)
    all_rows = row_area == 0  # rows of the first range ("all") give the per-box outcomes
    round_of = rank[pair_dt]
    bounds = np.flatnonzero(np.r_[True, round_of[1:] != round_of[:-1], True])
    if not len(round_of):
        bounds = bounds[:1]
    for s, e in itertools.pairwise(bounds):
        p_dt, p_gt, p_iou = pair_dt[s:e], pair_gt[s:e], iou[s:e]
        seg = np.flatnonzero(np.r_[True, p_dt[1:] != p_dt[:-1]])
        seg_of = np.repeat(np.arange(len(seg)), np.diff(np.r_[seg, len(p_dt)]))
        ignored = gt_ignored[:, p_gt][row_area]
        valid = (p_iou[None] >= row_floor) & (~taken[:, p_gt] | crowd[p_gt][None])
        counts = valid & ~ignored
        has_counting = np.maximum.reduceat(counts, seg, axis=1)
        cand = valid & (counts == has_counting[:, seg_of])
        key = np.where(cand, p_iou[None], -1.0)
        best = np.maximum.reduceat(key, seg, axis=1)
        win = cand & (key == best[:, seg_of])
        # Among equal IoUs COCO keeps the last box in its order.
        pick = np.maximum.reduceat(np.where(win, np.arange(len(p_dt))[None], -1), seg, axis=1)
        r, k = np.nonzero(pick >= 0)
        pair = pick[r, k]
        g, d = p_gt[pair], p_dt[pair]
        taken[r, g] = True
        dt_matched[r, d] = True
        dt_ignored[r, d] = gt_ignored[row_area[r], g]
        first_range = all_rows[r]
        t = r[first_range] // A
        dt_gt[t, d[first_range]] = g[first_range]
        dt_iou[t, d[first_range]] = p_iou[pair[first_range]]
        gt_dt[t, g[first_range]] = d[first_range]

    off_dt = (dt_area[None] < ranges[:, :1]) | (dt_area[None] > ranges[:, 1:])  # (A, D)
    dt_ignored |= ~dt_matched & off_dt[row_area]
    return Matching(
        thresholds, ranges, dt_index, rank, dt_matched, dt_ignored, dt_gt, dt_iou, gt_ignored, gt_dt
    )
