"""/api/datasets/{name}/views: saved views as the UI reads them (saving and deleting: the
operations' routes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visor.api.deps import DatasetDep
from visor.ops.results import SavedView

router = APIRouter(prefix="/api/datasets/{name}/views", tags=["views"])


@router.get("", response_model=list[SavedView], response_model_exclude_unset=True)
def list_views(dataset: DatasetDep) -> list[dict[str, Any]]:
    return dataset.views.list()


@router.get("/{view}", response_model=SavedView, response_model_exclude_unset=True)
def get_view(dataset: DatasetDep, view: str) -> dict[str, Any]:
    return dataset.views.get(view)
