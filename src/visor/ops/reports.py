"""What the reports answer, as pydantic models (see `results.py`): image quality, health,
duplicates and evaluations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from visor.ops.results import Result


class QualityIssue(Result):
    issue: str
    count: int
    share: float = Field(description="of the measured samples")
    examples: list[int] = Field(description="sample ids, worst first")


class Quality(Result):
    """Per image-quality issue: how many samples have it."""

    dataset: str
    samples: int
    measured: int
    issues: list[QualityIssue]


class HealthRow(Result):
    kind: str
    title: str
    count: int | None
    share: float | None
    examples: list[int] | None = Field(default=None, description="sample ids, worst first")
    filter: dict[str, str | int | float | bool] | None = Field(
        default=None, description="the samples query showing them all"
    )
    detail: dict[str, Any] | None = None
    warning: str | None = None
    note: int | None = Field(default=None, description="its warning's number among the notes")
    todo: str | None = Field(default=None, description="the command that computes it")
    choices: list[str] | None = Field(default=None, description="prediction sources to pick")


class Health(Result):
    """What is wrong with a dataset, per kind of problem."""

    dataset: str
    samples: int
    rows: list[HealthRow]
    notes: list[str]


class Histogram(Result):
    edges: list[float]
    counts: list[int]


class NearestSimilarity(Result):
    count: int
    percentiles: dict[str, float] | None = None
    histogram: Histogram | None = None


class DuplicatePair(Result):
    a: int
    b: int
    similarity: float
    splits: list[str | None]
    cross_split: bool
    paths: list[str | None]


class DuplicatesSummary(Result):
    groups: int
    exact_groups: int | None = None
    samples_in_groups: int
    removable: int | None
    near_pairs: int | None = None
    hashed: int | None = None
    neighbours_reused: bool | None = None
    threshold_rule: str | None = None
    threshold_warning: str | None = None
    nearest_similarity: NearestSimilarity | None = None
    closest_pairs: list[DuplicatePair] | None = None
    lookalike_clusters: int | None = None
    samples_in_lookalike_clusters: int | None = None
    seconds: float | None = None


class DuplicatesParams(Result):
    model: str | None = None
    threshold: float | None = Field(default=None, description="null: chosen from the data")


class DuplicatesRun(Result):
    kind: str
    model: str | None
    params: DuplicatesParams
    summary: DuplicatesSummary
    job_id: str | None
    created_at: datetime | None
    warning: str | None = None


class Lookalike(Result):
    cluster: int
    size: int
    samples: list[dict[str, Any]] = Field(description="sample_id and path of each")


class DuplicatesReport(Result):
    """A page of the last duplicates run's groups, its look-alike clusters, its closest pairs."""

    total: int
    offset: int
    limit: int
    run: DuplicatesRun | None
    groups: list[dict[str, Any]]
    lookalikes: list[Lookalike]
    closest_pairs: list[DuplicatePair]


class Counts(Result):
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    gt: int
    predictions: int


class ClassMetrics(Result):
    class_: str = Field(alias="class")
    ap: float | None
    ap50: float | None
    ap75: float | None
    ar: float | None
    ap_small: float | None
    ap_medium: float | None
    ap_large: float | None
    precision: float | None
    recall: float | None
    tp: int
    fp: int
    fn: int
    gt: int
    predictions: int


class Curves(Result):
    iou: float
    recall: list[float]
    precision: dict[str, list[float]] = Field(description="per class, at each recall")


class Confusion(Result):
    classes: list[str]
    matrix: list[list[int]] = Field(description="rows ground truth, columns predictions")


class Metrics(Result):
    summary: dict[str, float] = Field(description="COCO's twelve numbers")
    iou: float
    iou_thresholds: list[float]
    counts: Counts
    classes: list[ClassMetrics]
    curves: Curves
    confusion: Confusion
    warning: str | None = Field(
        default=None,
        description="the source predicted on some splits only, and the others' boxes count as "
        "missed",
    )
    predicted_splits: list[str | None] | None = Field(
        default=None, description="with the warning: the splits the source predicted on"
    )


class EvaluationParams(Result):
    source: str
    name: str | None = None
    iou: float
    iou_thresholds: str | None = None
    classwise: bool
    max_dets: int | None = None
    split: str | None = None


class EvaluationRow(Result):
    """An evaluation as the list shows it."""

    id: int
    name: str
    source: str
    params: EvaluationParams
    job_id: str | None
    seconds: float | None
    created_at: datetime | None
    summary: dict[str, float] | None = None
    counts: Counts | None = None


class Evaluation(EvaluationRow):
    """One evaluation with all its metrics."""

    metrics: Metrics
