"""From a matching to COCO's numbers: precision at 101 recall points, recall, AP and AR per
class, area range and detection limit, and the 12 summary numbers, equal to pycocotools'.

The interpolated precision is found without a search per class: recall only grows when a true
positive arrives, so the first point reaching recall r is the c-th true positive of the class,
c the smallest count with c / positives >= r (found with COCO's own float division).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visor.evaluation.matching import AREA_RANGES, Boxes, Matching

RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)

# The 12 numbers COCOeval.summarize() prints: (name, AP or AR, IoU or None for all, area, limit
# as an index into the detection limits).
COCO_THRESHOLDS = "0.5:0.95:0.05"  # AP and AR are averaged over these IoU thresholds
SUMMARY = (
    ("AP", "ap", None, 0, 2),
    ("AP50", "ap", 0.5, 0, 2),
    ("AP75", "ap", 0.75, 0, 2),
    ("AP_small", "ap", None, 1, 2),
    ("AP_medium", "ap", None, 2, 2),
    ("AP_large", "ap", None, 3, 2),
    ("AR1", "ar", None, 0, 0),
    ("AR10", "ar", None, 0, 1),
    ("AR100", "ar", None, 0, 2),
    ("AR_small", "ar", None, 1, 2),
    ("AR_medium", "ar", None, 2, 2),
    ("AR_large", "ar", None, 3, 2),
)


def iou_range(start: float = 0.5, stop: float = 0.95, step: float = 0.05) -> np.ndarray:
    """IoU thresholds from `start` to `stop` (both included), made as COCOeval makes them."""
    return np.linspace(start, stop, int(np.round((stop - start) / step)) + 1, endpoint=True)


@dataclass(frozen=True)
class Curves:
    precision: np.ndarray  # (T, R, K, A, M): -1 where a class has no ground truth
    recall: np.ndarray  # (T, K, A, M)
    positives: np.ndarray  # (K, A): ground-truth boxes that count
    tp: np.ndarray  # (T, K, A, M)
    fp: np.ndarray  # (T, K, A, M)


def accumulate(
    matching: Matching,
    gt: Boxes,
    dt: Boxes,
    *,
    num_classes: int,
    classwise: bool = True,
    max_dets: tuple[int, ...] = (1, 10, 100),
) -> Curves:
    T, A, M = len(matching.thresholds), len(matching.ranges), len(max_dets)
    K = num_classes if classwise else 1
    R = len(RECALL_POINTS)
    gt_cls = gt.cls if classwise else np.zeros(len(gt), np.int64)
    positives = np.stack(
        [np.bincount(gt_cls[~matching.gt_ignored[a]], minlength=K) for a in range(A)], axis=1
    )
    idx = matching.dt_index
    cls = dt.cls[idx] if classwise else np.zeros(len(idx), np.int64)
    assert dt.score is not None
    # COCO's order: by class, score descending, then image and the place in the image's list.
    order = np.lexsort((matching.rank, dt.image[idx], -dt.score[idx], cls))
    cls, rank = cls[order], matching.rank[order]
    classes = np.arange(K + 1)

    precision = np.zeros((T, R, K, A, M))
    recall = np.zeros((T, K, A, M))
    tp_total = np.zeros((T, K, A, M), np.int64)
    fp_total = np.zeros((T, K, A, M), np.int64)
    for a in range(A):
        rows = np.arange(T) * A + a
        matched = matching.dt_matched[rows][:, order]
        counted = ~matching.dt_ignored[rows][:, order]
        npig = positives[:, a]
        needed = _counts_needed(npig)  # (K, R)
        for m, limit in enumerate(max_dets):
            within = rank < limit
            for t in range(T):
                # Ignored predictions (and those past the limit) count as neither TP nor FP:
                # they only repeat the point before them on the curve, so they are left out.
                keep = np.flatnonzero(counted[t] & within)
                starts = np.searchsorted(cls[keep], classes)
                seg_start, seg_end = starts[:-1], starts[1:]
                count = seg_end - seg_start
                tp = matched[t, keep]
                tpc = np.cumsum(tp, dtype=np.int64)
                tpc -= np.repeat(np.r_[0, tpc][seg_start], count)
                # TP + FP at each point is its place in its class's list: COCO's tp + fp.
                seen = np.arange(1, len(keep) + 1) - np.repeat(seg_start, count)
                ntp = np.where(count > 0, np.r_[tpc, 0][np.maximum(seg_end - 1, 0)], 0)
                tp_total[t, :, a, m], fp_total[t, :, a, m] = ntp, count - ntp
                with np.errstate(divide="ignore", invalid="ignore"):
                    recall[t, :, a, m] = ntp / npig
                pr = tpc / (seen.astype(np.float64) + np.spacing(1))
                precision[t, :, :, a, m] = _interpolated(
                    pr, np.flatnonzero(tp), needed, ntp, seg_start, seg_end
                ).T
        absent = npig == 0
        precision[:, :, absent, a, :] = -1
        recall[:, absent, a, :] = -1
    return Curves(precision, recall, positives, tp_total, fp_total)


def _counts_needed(npig: np.ndarray) -> np.ndarray:
    """(K, R): the fewest true positives c with c / npig >= each recall point, as COCO divides."""
    n = np.maximum(npig, 1).astype(np.float64)[:, None]
    c = np.ceil(RECALL_POINTS[None] * n)
    for _ in range(2):  # the product may round either way: step to the exact count
        c = np.where((c > 0) & ((c - 1) / n >= RECALL_POINTS[None]), c - 1, c)
        c = np.where(c / n < RECALL_POINTS[None], c + 1, c)
    return c.astype(np.int64)


def _interpolated(
    pr: np.ndarray,
    tp_positions: np.ndarray,
    needed: np.ndarray,
    ntp: np.ndarray,
    seg_start: np.ndarray,
    seg_end: np.ndarray,
) -> np.ndarray:
    """(K, R) precision at each recall point: the best precision at or after the first point
    whose recall reaches it; 0 where the recall never does."""
    K, R = needed.shape
    valid = (needed <= ntp[:, None]) & (seg_end > seg_start)[:, None]
    first_tp = np.searchsorted(tp_positions, seg_start)
    nth = np.clip(first_tp[:, None] + needed - 1, 0, max(len(tp_positions) - 1, 0))
    pos = np.where(needed == 0, seg_start[:, None], tp_positions[nth] if len(tp_positions) else 0)
    pos = np.where(valid, pos, seg_end[:, None])
    chunk = np.maximum.reduceat(np.r_[pr, 0.0], pos.ravel()).reshape(K, R)
    chunk = np.where(valid, chunk, 0.0)
    best_after = np.maximum.accumulate(chunk[:, ::-1], axis=1)[:, ::-1]
    return np.where(valid, best_after, 0.0)


def summary(curves: Curves, thresholds: np.ndarray) -> dict[str, float]:
    """COCO's 12 numbers (-1 where nothing counts, as COCOeval prints)."""
    out = {}
    for name, kind, iou, area, limit in SUMMARY:
        values = (curves.precision if kind == "ap" else curves.recall)[..., area, limit]
        if iou is not None:
            values = values[thresholds == iou]
        counted = values[values > -1]
        out[name] = float(np.mean(counted)) if counted.size else -1.0
    return out


def summary_lines(stats: dict[str, float], iou_thresholds: str, max_dets: int) -> list[str]:
    """`summary`'s numbers as COCOeval.summarize() prints them, a line each."""
    span_all = "0.50:0.95" if iou_thresholds == COCO_THRESHOLDS else iou_thresholds
    limits, areas = (1, 10, max_dets), list(AREA_RANGES)
    lines = []
    for key, kind, at_iou, area, limit in SUMMARY:
        title = "Average Precision  (AP)" if kind == "ap" else "Average Recall     (AR)"
        span = span_all if at_iou is None else f"{at_iou:.2f}"
        lines.append(
            f" {title} @[ IoU={span:<9} | area={areas[area]:>6} | "
            f"maxDets={limits[limit]:>3} ] = {stats[key]:0.3f}"
        )
    return lines


def per_class_ap(curves: Curves, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Per class, at the largest detection limit: AP@[all thresholds], AP50, AP75 and AR in
    area "all", and AP in each other area range as `ap_<name>` (-1 for a class without
    ground truth there)."""

    def mean(values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        counted = values > -1
        total = np.where(counted, values, 0).sum(axis=axes)
        n = counted.sum(axis=axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, total / np.maximum(n, 1), -1.0)

    p = curves.precision[..., 0, -1]  # (T, R, K)
    result = {"ap": mean(p, (0, 1)), "ar": mean(curves.recall[..., 0, -1], (0,))}
    for name, iou in (("ap50", 0.5), ("ap75", 0.75)):
        rows = thresholds == iou
        result[name] = mean(p[rows], (0, 1)) if rows.any() else np.full(p.shape[2], -1.0)
    for a, area in enumerate(list(AREA_RANGES)[1 : curves.precision.shape[3]], start=1):
        result[f"ap_{area}"] = mean(curves.precision[..., a, -1], (0, 1))
    return result
