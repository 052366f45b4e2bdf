"""/api/datasets/{name}: the reports of the checks (duplicates, index, quality, health, label
errors), as the UI reads them. (Starting the checks: the operations' routes.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from visor.api.deps import DatasetDep, answers
from visor.ops import reports

router = APIRouter(prefix="/api/datasets/{name}", tags=["reports"])


@router.get("/duplicates", **answers(reports.DuplicatesReport))
def list_duplicates(
    dataset: DatasetDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The duplicate groups found by the last duplicates job, largest first, each with its
    samples and whether all of them are byte-identical (`exact`); `run` says with which model,
    threshold and when."""
    return dataset.duplicates(offset=offset, limit=limit)


@router.get("/index")
def index_status(dataset: DatasetDep, model: str | None = None) -> dict[str, Any]:
    """Whether similarity search for `model` is exact or uses the ANN index, and the index."""
    return dataset.index_status(model)


@router.get("/quality", **answers(reports.Quality))
def quality(dataset: DatasetDep, examples: int = 12) -> dict[str, Any]:
    """Per issue (dark, light, blurry, low_information, low_contrast, grayscale,
    odd_aspect_ratio, odd_size, tiny): `count`, `share` of the measured samples and the ids of
    the worst `examples`; filter samples by one with `quality=<issue>`."""
    return dataset.quality(examples)


@router.get("/health", **answers(reports.Health))
def health(dataset: DatasetDep, examples: int = 12) -> dict[str, Any]:
    """What is wrong with the dataset: `rows` of {kind, title, count, share, examples (sample
    ids, worst first), filter (samples query parameters showing them all), detail, warning}, or
    `todo` (the command that computes a signal not computed yet)."""
    return dataset.health(examples)


@router.get("/label-errors")
def label_errors(dataset: DatasetDep, examples: int = 12) -> dict[str, Any] | None:
    """The last run: labels `scored` and `flagged`, `flagged_samples`, the worst `examples`
    (sample ids); null before a run. Per label: `label_quality` on GET .../samples/{id}."""
    return dataset.label_errors(examples)
