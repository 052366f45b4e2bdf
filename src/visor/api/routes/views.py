"""/api/datasets/{name}/views: saved views (filters, a lasso's selection, sort, what the UI
shows), kept across restarts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep

router = APIRouter(prefix="/api/datasets/{name}/views", tags=["views"])


class ViewBody(BaseModel):
    filters: dict[str, Any] = Field(default_factory=dict, description="the samples API's filters")
    selection: str | None = Field(default=None, description="a selection token (a lasso)")
    sort: str = "id"
    order: str = "asc"
    ui: dict[str, Any] = Field(default_factory=dict, description="what the UI shows (its URL)")


@router.get("")
def list_views(dataset: DatasetDep) -> list[dict[str, Any]]:
    return dataset.views.list()


@router.get("/{view}")
def get_view(dataset: DatasetDep, view: str) -> dict[str, Any]:
    return dataset.views.get(view)


@router.put("/{view}")
def save_view(dataset: DatasetDep, view: str, body: ViewBody) -> dict[str, Any]:
    """Save or replace a view (422 naming an unknown filter; 404 an unknown selection)."""
    return dataset.views.save(
        view, filters=body.filters, selection=body.selection, sort=body.sort, order=body.order,
        ui=body.ui,
    )  # fmt: skip


@router.delete("/{view}", status_code=204)
def delete_view(dataset: DatasetDep, view: str) -> Response:
    dataset.views.delete(view)
    return Response(status_code=204)
