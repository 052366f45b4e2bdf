"""What the quick operations answer, as pydantic models: the routes declare them, so
`/openapi.json` describes the answers as well as the bodies and the UI's TypeScript types of
them are made, not written by hand. The operations still return plain dicts (the same in
this process and through a server); these models describe them, and allow more fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="allow")


class DatasetRow(Result):
    """A dataset's row: where it came from, its counts and classes, the ingest's report."""

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


class DatasetSummary(DatasetRow):
    """A dataset as the list of datasets shows it."""

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


class ClassCount(Result):
    class_: str | None = Field(alias="class")
    kind: str = Field(description="gt or prediction")
    labels: int
    samples: int = Field(description="samples holding one or more")


class DatasetInfo(DatasetRow):
    """A dataset's row with its samples per split, labels per class, tags and flags."""

    classes: list[ClassCount]
    tags: dict[str, int] = Field(description="samples per tag")
    flags: dict[str, int] = Field(description="samples per flag")


class Box(Result):
    """A box (or an image-level label: no bbox) as the grid and the sample view draw it."""

    id: int
    kind: str = Field(description="gt or prediction")
    source: str
    class_: str | None = Field(alias="class")
    bbox: list[float] | None = Field(description="x, y, w, h in pixels")
    score: float | None
    outcome: Literal["tp", "fp", "fn", "ignored"] | None = Field(
        default=None, description="with an evaluation: what became of the box"
    )
    iou: float | None = None
    match: int | None = Field(default=None, description="the label id it matched")
    cell: list[str | None] | None = Field(
        default=None, description="its confusion cell: (ground-truth, predicted) class"
    )


class LabelQuality(Result):
    quality: float
    issue: bool
    given: str | None = None
    suggested: str | None
    suggested_probability: float | None
    model: str | None = Field(default=None, description="whose vectors scored it")


class Label(Box):
    """A label of one sample."""

    iscrowd: bool | None
    flags: list[str]
    label_quality: LabelQuality | None = Field(
        default=None, description="from label-errors: its quality and the class suggested"
    )


class CheckedBox(Result):
    label_id: int
    signal: Literal["swap", "badloc", "overlooked"]
    score: float
    class_: str | None = Field(alias="class")


class DetectionCheck(Result):
    source: str
    quality: float
    issue: bool
    boxes: list[CheckedBox]


class SampleRow(Result):
    """A sample as a page of samples shows it."""

    id: int
    path: str
    filename: str
    width: int | None
    height: int | None
    size_bytes: int | None
    split: str | None
    classes: list[str]
    tags: list[str]
    flags: list[str]
    num_labels: int | None
    metadata: dict[str, Any]
    duplicate_group: int | None
    uniqueness: float | None
    boxes: list[Box] | None = Field(default=None, description="when asked for (`boxes`)")


class SamplePage(Result):
    total: int
    offset: int | None = None
    limit: int | None = None
    items: list[SampleRow]


class SampleDetail(SampleRow):
    """One sample; its labels where asked for (the sample view's route)."""

    detection_check: DetectionCheck | None = None
    labels: list[Label] | None = None


class Neighbour(Result):
    sample_id: int
    distance: float = Field(description="cosine distance")
    path: str | None


class Neighbours(Result):
    """The nearest samples, nearest first: of a sample, an image or a text."""

    sample_id: int | None = Field(default=None, description="whose neighbours (of a sample)")
    text: str | None = Field(default=None, description="the words searched for (of a text)")
    model: str
    neighbours: list[Neighbour]
    warning: str | None = None


class ObjectBoxRow(Result):
    """A box as the object search sees it."""

    label_id: int
    sample_id: int
    class_: str | None = Field(alias="class")
    kind: str
    source: str
    box: list[float | None] = Field(description="x, y, w, h in pixels")


class NearBox(ObjectBoxRow):
    distance: float = Field(description="cosine distance")


class NearBoxes(Result):
    """The nearest boxes to a box, nearest first."""

    label_id: int
    model: str
    neighbours: list[NearBox]
    warning: str | None = None


class EditMade(Result):
    """An edit batch made (all its changes, or none)."""

    batch: int
    changes: int
    samples: list[int] = Field(description="the samples it changed")


class EditStepped(Result):
    """An edit batch undone, made again or reverted."""

    batch: int
    state: Literal["done", "undone"]
    changes: int


class Inspection(Result):
    """What an ingest of a path would find."""

    path: str
    format: str
    images: int
    problems: int = Field(description="files or annotations that would be skipped")


class ModelVectors(Result):
    model: str
    dim: int
    vectors: int
    errors: int = Field(description="images it could not read")
    samples: int
    missing: int = Field(description="samples without a vector or an error")
    complete: bool
    last_job: dict[str, Any] | None = Field(description="its newest embed job")


class VectorStatus(Result):
    """The dataset's vectors, per model, and the embed jobs running."""

    dataset: str
    samples: int
    models: list[ModelVectors]
    running: list[dict[str, Any]] = Field(description="embed jobs queued or running")
    default_model: str | None = Field(description="what commands use when given no model")


class BoxVectors(Result):
    model: str
    dim: int
    vectors: int
    by_kind: dict[str, int] = Field(description="gt and prediction boxes")
    skipped: int = Field(description="boxes with no vector (too small, outside the image)")


class ObjectVectorStatus(Result):
    """The boxes' vectors per model, the model box commands use, the last object analysis."""

    models: list[BoxVectors]
    default_model: str | None
    analysis: dict[str, Any] | None


class ModelRow(Result):
    name: str
    dim: int
    weights: str = Field(description="the hub id its weights load from, or 'random only'")
    text: bool = Field(description="it embeds words too (text search, zero-shot tags)")


class LoadedModel(Result):
    model: str
    device: str
    precision: str
    backend: str


class BackendSetting(Result):
    setting: str = Field(description="VISOR_EMBED_BACKEND")
    chosen: str | None = Field(description="torch, openvino or auto; None when not installed")
    problem: str | None = Field(description="why the setting can't run, and how to install")


class MeasuredChoice(Result):
    model: str
    precision: str
    fastest: str
    chosen: str = Field(
        description="what auto runs: the fastest, static int8 only from 1.1x the float choice"
    )
    rates: dict[str, float] = Field(description="images/s per backend, measured by auto")
    making_s: float | None = Field(description="seconds making static int8 took")


class Int8Guard(Result):
    """A static int8 model's guard, measured on its calibration images."""

    model: str
    images: int
    cosine_min: float
    cosine_median: float
    k: int
    neighbours: float = Field(description="share of top-k neighbours kept")
    kept: bool
    reason: str | None = None
    against: str | None = Field(default=None, description="the float precision compared with")


class Models(Result):
    """The models known by name and those loaded, and how this process's CPU runs them."""

    models: list[ModelRow]
    loaded: list[LoadedModel]
    backend: BackendSetting
    int8_flags: list[str] = Field(description="the CPU's VNNI/AMX flags: static int8 where any")
    measured: list[MeasuredChoice]
    static_int8: list[Int8Guard]
