"""/api/datasets/{name}/evaluations: evaluate a prediction source (job), list and read the
results, the per-sample counts (binary, for the map) and the boxes of a confusion cell."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep

router = APIRouter(prefix="/api/datasets/{name}/evaluations", tags=["evaluations"])

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class EvaluateRequest(BaseModel):
    source: str = Field(description="the prediction source to evaluate")
    name: str | None = Field(default=None, description="the evaluation's name (default: source)")
    iou: float = Field(default=0.5, description="IoU of per-box outcomes and the confusion matrix")
    iou_thresholds: str = Field(
        default="0.5:0.95:0.05", description="for AP/AR: start:stop:step or a list (0.5,0.75)"
    )
    classwise: bool = Field(default=True, description="false: boxes match across classes")
    max_dets: int = Field(default=100, description="predictions per image (and class) counted")
    split: str | None = Field(default=None, description="only the images of this split")


@router.post("", status_code=202)
def evaluate(dataset: DatasetDep, body: EvaluateRequest) -> dict[str, Any]:
    """Start an evaluation (202 with the job; follow it at /api/jobs/{id}/events). 404 for an
    unknown source."""
    return dataset.evaluate(
        body.source,
        name=body.name,
        iou=body.iou,
        iou_thresholds=body.iou_thresholds,
        classwise=body.classwise,
        max_dets=body.max_dets,
        split=body.split,
    )


@router.get("")
def list_evaluations(dataset: DatasetDep) -> list[dict[str, Any]]:
    """Every evaluation with its 12 summary numbers and counts."""
    return dataset.evaluations.list()


@router.get("/{evaluation}")
def get_evaluation(dataset: DatasetDep, evaluation: str) -> dict[str, Any]:
    """One evaluation: parameters, summary, counts, per-class rows, PR curves at its IoU (101
    recall points) and the confusion matrix (rows ground truth, columns predictions, the last
    of each the background)."""
    return dataset.evaluations.get(evaluation)


@router.delete("/{evaluation}", status_code=204)
def delete_evaluation(dataset: DatasetDep, evaluation: str) -> Response:
    dataset.evaluations.delete(evaluation)
    return Response(status_code=204)


@router.get("/{evaluation}/samples", response_class=Response)
def sample_counts(dataset: DatasetDep, evaluation: str) -> Response:
    """Per evaluated sample: `sample_id` int32, `tp`, `fp`, `fn`, `confused` int32, as an
    Arrow IPC stream in sample id order (to colour the map)."""
    table = dataset.evaluations.sample_counts(evaluation)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue(), media_type=ARROW_STREAM)


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
