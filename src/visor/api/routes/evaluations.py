"""/api/datasets/{name}/evaluations: list and read the results, the per-sample counts
(binary, for the map) and the boxes of a confusion cell."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from visor.api.deps import DatasetDep, answers
from visor.ops import reports
from visor.ops.base import ARROW, arrow_bytes

router = APIRouter(prefix="/api/datasets/{name}/evaluations", tags=["evaluations"])


@router.get("", **answers(list[reports.EvaluationRow]))
def list_evaluations(dataset: DatasetDep) -> list[dict[str, Any]]:
    """Every evaluation with its 12 summary numbers and counts."""
    return dataset.evaluations.list()


@router.get("/{evaluation}", **answers(reports.Evaluation))
def get_evaluation(dataset: DatasetDep, evaluation: str) -> dict[str, Any]:
    """One evaluation: parameters, summary, counts, per-class rows, PR curves at its IoU (101
    recall points) and the confusion matrix (rows ground truth, columns predictions, the last
    of each the background)."""
    return dataset.evaluations.get(evaluation)


@router.get("/{evaluation}/samples", response_class=Response)
def sample_counts(dataset: DatasetDep, evaluation: str) -> Response:
    """Per evaluated sample: `sample_id` int32, `tp`, `fp`, `fn`, `confused` int32, as an
    Arrow IPC stream in sample id order (to colour the map)."""
    table = dataset.evaluations.sample_counts(evaluation)
    return Response(arrow_bytes(table), media_type=ARROW)


@router.get("/{evaluation}/cell")
def confusion_cell(
    dataset: DatasetDep,
    evaluation: str,
    gt_class: str = "",
    pred_class: str = "",
    limit: int = 1000,
) -> dict[str, Any]:
    """The boxes of one confusion-matrix cell (empty class: the background)."""
    return dataset.evaluations.cell(evaluation, gt_class or None, pred_class or None, limit)
