"""/api/datasets/{name}/duplicates, /uniqueness and /index: start the neighbour analyses (jobs)
and read their results."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep
from visor.services.analysis import DEFAULT_UNIQUENESS_K

router = APIRouter(prefix="/api/datasets/{name}", tags=["duplicates and uniqueness"])

_MODEL = Field(
    default=None,
    description="whose vectors (default: the dataset's most recently embedded model)",
)


class DuplicatesRequest(BaseModel):
    model: str | None = _MODEL
    threshold: float | None = Field(
        default=None,
        description="cosine similarity from which two images are near-duplicates (0.5 to 1); "
        "default: the model's calibrated one, else one from the dataset's nearest-neighbour "
        "similarities",
    )
    exact_only: bool = Field(default=False, description="only byte-identical copies")


class UniquenessRequest(BaseModel):
    model: str | None = _MODEL
    k: int = Field(default=DEFAULT_UNIQUENESS_K, description="neighbours averaged (1 to 100)")


class IndexRequest(BaseModel):
    model: str | None = _MODEL


@router.post("/duplicates", status_code=202)
def find_duplicates(dataset: DatasetDep, body: DuplicatesRequest | None = None) -> dict[str, Any]:
    """Start the duplicates job: exact copies by content hash and near-duplicates by cosine
    similarity ≥ threshold, grouped; sets every sample's `duplicate_group`. 409 when the model
    has no vectors yet (unless exact_only)."""
    body = body or DuplicatesRequest()
    return dataset.find_duplicates(body.model, body.threshold, exact_only=body.exact_only)


@router.get("/duplicates")
def list_duplicates(
    dataset: DatasetDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The duplicate groups found by the last duplicates job, largest first, each with its
    samples and whether all of them are byte-identical (`exact`); `run` says with which model,
    threshold and when."""
    return dataset.duplicates(offset=offset, limit=limit)


@router.post("/uniqueness", status_code=202)
def compute_uniqueness(
    dataset: DatasetDep, body: UniquenessRequest | None = None
) -> dict[str, Any]:
    """Start scoring every embedded sample's `uniqueness` in [0, 1] (mean cosine distance to
    its k nearest neighbours over the dataset's largest); map jobs do this too."""
    body = body or UniquenessRequest()
    return dataset.compute_uniqueness(body.model, body.k)


@router.post("/index", status_code=202)
def build_index(dataset: DatasetDep, body: IndexRequest | None = None) -> dict[str, Any]:
    """Start (re)building the ANN index used for similarity search on large datasets."""
    body = body or IndexRequest()
    return dataset.build_index(body.model)


@router.get("/index")
def index_status(dataset: DatasetDep, model: str | None = None) -> dict[str, Any]:
    """Whether similarity search for `model` is exact or uses the ANN index, and the index."""
    return dataset.index_status(model)


@router.post("/quality", status_code=202)
def compute_quality(dataset: DatasetDep) -> dict[str, Any]:
    """Start the image-quality job (202): statistics of every image not measured yet, then
    each sample's issues."""
    return dataset.compute_quality()


@router.get("/quality")
def quality(dataset: DatasetDep, examples: int = 12) -> dict[str, Any]:
    """Per issue (dark, light, blurry, low_information, low_contrast, grayscale,
    odd_aspect_ratio, odd_size, tiny): `count`, `share` of the measured samples and the ids of
    the worst `examples`; filter samples by one with `quality=<issue>`."""
    return dataset.quality(examples)


@router.get("/health")
def health(dataset: DatasetDep, examples: int = 12) -> dict[str, Any]:
    """What is wrong with the dataset: `rows` of {kind, title, count, share, examples (sample
    ids, worst first), filter (samples query parameters showing them all), detail, warning}, or
    `todo` (the command that computes a signal not computed yet)."""
    return dataset.health(examples)


class LabelErrorsRequest(BaseModel):
    model: str | None = _MODEL
    predictions: str | None = Field(
        default=None,
        description="instead: cleanlab's detection check against this prediction source",
    )
    split: str | None = Field(
        default=None, description="with predictions: only the images of this split"
    )


@router.post("/label-errors", status_code=202)
def find_label_errors(
    dataset: DatasetDep, body: LabelErrorsRequest | None = None
) -> dict[str, Any]:
    """Start scoring every image label and box with cleanlab from its nearest neighbours
    (202; 409 when the model has no vectors); with `predictions`, cleanlab's detection check
    of the boxes against that prediction source."""
    body = body or LabelErrorsRequest()
    if body.predictions is not None:
        return dataset.find_detection_label_errors(body.predictions, split=body.split)
    return dataset.find_label_errors(body.model)


@router.get("/label-errors")
def label_errors(dataset: DatasetDep, examples: int = 12) -> dict[str, Any] | None:
    """The last run: labels `scored` and `flagged`, `flagged_samples`, the worst `examples`
    (sample ids); null before a run. Per label: `label_quality` on GET .../samples/{id}."""
    return dataset.label_errors(examples)
