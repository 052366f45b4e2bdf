"""What an evaluation keeps of every box and image: the outcome of each box at the chosen IoU
(true positive, false positive, missed, ignored; its match and IoU), counts per image, and the
confusion of classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from visor.evaluation.matching import Boxes, Matching, match, pair_iou

_OUTCOMES = ("tp", "fp", "fn", "ignored")


def outcomes(
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
