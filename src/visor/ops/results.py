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


class ClassShare(Result):
    class_: str = Field(alias="class")
    share: float = Field(description="of the cluster's members holding the class")


class Cluster(Result):
    """A density cluster of a map."""

    cluster: int = Field(description="its id on the map (the samples filter `cluster`)")
    label: str = Field(description="what its members share: class and share, folder, split, tag")
    size: int
    centroid: list[float] = Field(description="x, y: where its label goes")
    bounds: list[float] = Field(description="x0, y0, x1, y1")
    outline: list[list[float]] = Field(description="its members' convex hull, x, y corners")
    classes: list[ClassShare] = Field(description="its most common classes")
    split: str | None
    folder: str | None
    tag: str | None
    mixed: bool = Field(description="no class holds 60% of its members")
    words: dict[str, Any] | None = Field(
        default=None, description="with a vocabulary: the likeliest word and its probability"
    )


class ClusterList(Result):
    """A map's last clustering."""

    map_id: int
    clusters: list[Cluster] | None = Field(description="largest first; null: never clustered")
    points: int | None = None
    min_cluster_size: int | None = None
    min_samples: int | None = None
    noise: int | None = Field(default=None, description="points in no cluster")
    message: str | None = Field(default=None, description="why there are none, when so")


class Count(Result):
    """How many rows a write changed."""

    count: int
