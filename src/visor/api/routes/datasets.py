"""/api/datasets: list, ingest, show, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep, WorkspaceDep

router = APIRouter(prefix="/api/datasets", tags=["datasets"])
inspect_router = APIRouter(tags=["datasets"])


class IngestRequest(BaseModel):
    name: str = Field(description="1-64 letters, digits, '_', '-' or '.'")
    path: str = Field(description="local folder, s3://bucket/prefix or gs://bucket/prefix")
    format: str | None = Field(None, description="coco, yolo, voc, classification or images")
    replace: bool = False
    thumbnails: bool = Field(False, description="make every thumbnail during the job")


@router.get("")
def list_datasets(workspace: WorkspaceDep) -> list[dict[str, Any]]:
    return workspace.datasets()


@inspect_router.get("/api/inspect")
def inspect(path: str, workspace: WorkspaceDep) -> dict[str, Any]:
    """What ingesting `path` would find, before importing: `{path, format, images,
    problems}` (422 for a missing path, or one holding no images or annotations)."""
    return workspace.inspect(path)


@router.post("", status_code=202)
def ingest(body: IngestRequest, workspace: WorkspaceDep) -> dict[str, Any]:
    """Start ingesting a dataset; answers 202 with the job (follow it at /api/jobs/{id}/events)."""
    return workspace.ingest(
        body.path, body.name, fmt=body.format, replace=body.replace, thumbnails=body.thumbnails
    )


class PredictionsRequest(BaseModel):
    path: str = Field(
        description="a file or folder the server can read: COCO results .json, a folder of "
        "YOLO .txt files, or a .parquet/.csv table (file_name, class, x, y, w, h, score)"
    )
    source: str = Field(description="the predictions' name (a model, a run)")
    format: str | None = Field(default=None, description="coco, yolo or table (default: guessed)")
    replace: bool = Field(default=False, description="replace an existing source of this name")
    names: str | None = Field(
        default=None, description="YOLO: the model's data.yaml, when the dataset has no class index"
    )
    split: str | None = Field(
        default=None,
        description="COCO results: the split whose annotation file's image ids they use (needed "
        "where each split's file numbers its images alike)",
    )


@router.post("/{name}/predictions")
def import_predictions(dataset: DatasetDep, body: PredictionsRequest) -> dict[str, Any]:
    """Load predictions as `source` (409 if it exists and `replace` is false); answers with the
    number imported and the boxes skipped, each with its reason."""
    return dataset.import_predictions(
        body.path,
        body.source,
        format=body.format,
        replace=body.replace,
        names=body.names,
        split=body.split,
    )


@router.get("/{name}/predictions")
def prediction_sources(dataset: DatasetDep) -> dict[str, int]:
    """Prediction sources and their number of boxes."""
    return dataset.prediction_sources()


@router.get("/{name}")
def get_dataset(dataset: DatasetDep) -> dict[str, Any]:
    return dataset.info()


@router.delete("/{name}", status_code=204)
def delete_dataset(dataset: DatasetDep) -> Response:
    dataset.delete()
    return Response(status_code=204)
