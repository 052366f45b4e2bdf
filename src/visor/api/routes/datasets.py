"""/api/datasets: list and show; what an ingest would find. (Ingest, delete and the rest:
the operations' routes.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visor.api.deps import DatasetDep, WorkspaceDep, answers
from visor.ops import results
from visor.ops.results import DatasetSummary

router = APIRouter(tags=["datasets"])


@router.get(
    "/api/datasets",
    response_model=list[DatasetSummary],
    response_model_exclude_unset=True,
)
def list_datasets(workspace: WorkspaceDep) -> list[dict[str, Any]]:
    return workspace.datasets()


@router.get("/api/inspect", **answers(results.Inspection))
def inspect(path: str, workspace: WorkspaceDep) -> dict[str, Any]:
    """What ingesting `path` would find, before importing: `{path, format, images,
    problems}` (422 for a missing path, or one holding no images or annotations)."""
    return workspace.inspect(path)


@router.get("/api/datasets/{name}/predictions")
def prediction_sources(dataset: DatasetDep) -> dict[str, int]:
    """Prediction sources and their number of boxes."""
    return dataset.prediction_sources()


@router.get("/api/datasets/{name}", **answers(results.DatasetInfo))
def get_dataset(dataset: DatasetDep) -> dict[str, Any]:
    return dataset.info()
