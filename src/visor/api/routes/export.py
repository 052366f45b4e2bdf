"""/api/datasets/{name}/export: write the dataset (or the samples the filters choose) to a
folder as COCO, YOLO, VOC, class folders or Parquet (a job)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep
from visor.api.routes.samples import Filters

router = APIRouter(prefix="/api/datasets/{name}", tags=["export"])


class ExportRequest(BaseModel):
    out: str = Field(description="a folder the server can write (absent or empty)")
    format: str = Field(default="coco", description="coco, yolo, voc, classification, parquet")
    filters: Filters = Field(
        default_factory=Filters, description="the samples API's filters (selection included)"
    )
    view: str | None = Field(default=None, description="a saved view's samples (not filters)")
    exclude_tags: list[str] = Field(default_factory=list, description="samples left out")
    images: str = Field(default="copy", description="copy, link (symbolic links) or none")
    kind: str = Field(default="gt", description="gt, or prediction (with source)")
    source: str | None = None
    min_score: float | None = Field(default=None, ge=0, le=1)
    dedupe: bool = Field(default=False, description="one member of each duplicate group")
    split_ratios: list[float] | None = Field(
        default=None, description="new splits by ratio: train, val[, test]"
    )
    seed: int = 0
    overwrite: bool = False


@router.post("/export", status_code=202)
def export(dataset: DatasetDep, body: ExportRequest) -> dict[str, Any]:
    """Start an export (202 with the job; 409 when the folder exists and is not empty, unless
    `overwrite`; 422 naming a bad option). The folder appears whole when the job ends."""
    chosen: dict[str, Any] = (
        {"view": body.view} if body.view else {"filters": body.filters.sample_filter(dataset)}
    )
    return dataset.export(
        body.out,
        body.format,
        **chosen,
        exclude_tags=tuple(body.exclude_tags),
        images=body.images,
        kind=body.kind,
        source=body.source,
        min_score=body.min_score,
        dedupe=body.dedupe,
        split_ratios=tuple(body.split_ratios) if body.split_ratios else None,
        seed=body.seed,
        overwrite=body.overwrite,
    )
