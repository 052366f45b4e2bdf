"""/api/datasets/{name}/export: write the dataset (or the samples the filters choose) to a
folder as COCO, YOLO, VOC, class folders or Parquet (a job)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep, WorkspaceDep
from visor.api.routes.samples import Filters
from visor.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/datasets/{name}", tags=["export"])


class ExportRequest(BaseModel):
    out: str | None = Field(
        default=None, description="a folder the server can write (absent or empty)"
    )
    download: bool = Field(
        default=False, description="instead of `out`: a zip to download (GET /api/exports/...)"
    )
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
    if body.download == (body.out is not None):
        raise InvalidInput("give a folder (out) or ask for a download, one of the two")
    options = dict(
        **chosen,
        exclude_tags=tuple(body.exclude_tags),
        images=body.images,
        kind=body.kind,
        source=body.source,
        min_score=body.min_score,
        dedupe=body.dedupe,
        split_ratios=tuple(body.split_ratios) if body.split_ratios else None,
        seed=body.seed,
    )
    if body.download:
        return dataset.export_download(body.format, **options)
    assert body.out is not None
    return dataset.export(body.out, body.format, overwrite=body.overwrite, **options)


downloads = APIRouter(prefix="/api/exports", tags=["export"])


@downloads.get("/{file}")
def download(file: str, workspace: WorkspaceDep) -> FileResponse:
    """A finished export's zip (from an export with `download`)."""
    folder = (workspace.settings.home / "exports").resolve()
    path = (folder / file).resolve()
    if path.parent != folder or path.suffix != ".zip" or not path.is_file():
        raise NotFound(f"export {file!r} not found")
    return FileResponse(path, media_type="application/zip", filename=file)
