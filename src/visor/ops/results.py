"""What the quick operations answer, as pydantic models: the routes declare them, so
`/openapi.json` describes the answers as well as the bodies and the UI's TypeScript types of
them are made, not written by hand. The operations still return plain dicts (the same in
this process and through a server); these models describe them, and allow more fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="allow")


class DatasetSummary(Result):
    """A dataset as the list of datasets shows it."""

    id: int
    name: str
    root: str
    format: str
    created_at: str | None
    num_samples: int
    num_labels: int
    categories: list[str]
    report: dict[str, Any] | None
    splits: dict[str, int] = Field(description="samples per split ('(none)': without one)")
    vectors: dict[str, int] = Field(description="vectors per embedding model")
    maps: int


class ViewUi(Result):
    """What the UI keeps with a view (any client may keep more)."""

    query: str | None = Field(default=None, description="the UI's URL state")


class SavedView(Result):
    """A saved view: what the grid shows (filters, selection, sort) and the UI's own state."""

    name: str
    filters: dict[str, Any]
    selection: str | None
    sort: str
    order: str
    ui: ViewUi
    updated_at: str | None = None


class MapRow(Result):
    """A map of a dataset's vectors."""

    id: int
    dataset_id: int
    model: str
    method: str
    params: dict[str, Any]
    num_points: int
    is_default: bool
    job_id: str | None
    seconds: float | None
    created_at: str | None
    objects: bool = Field(description="a point per box, not per image")
    warning: str | None = Field(default=None, description="the vectors came from random weights")


class Count(Result):
    """How many rows a write changed."""

    count: int
