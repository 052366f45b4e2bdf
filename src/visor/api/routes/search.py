"""Nearest neighbours: of a sample, or of an uploaded image."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, UploadFile

from visor.api.deps import DatasetDep, answers
from visor.embedding.models import with_weights_warning
from visor.ops import results
from visor.services.search import MAX_K
from visor.store.samples import SampleFilter

router = APIRouter(prefix="/api/datasets/{name}", tags=["search"])

K = Annotated[int, Query(ge=1, le=MAX_K, description="how many neighbours")]


def neighbour_filters(
    split: str | None = None,
    category: Annotated[str | None, Query(alias="class")] = None,
    tag: str | None = None,
) -> SampleFilter:
    """`split`, `class` and `tag` query parameters: what the neighbours are limited to."""
    return SampleFilter(split=split, category=category, tag=tag)


Filters = Annotated[SampleFilter, Depends(neighbour_filters)]


@router.get("/samples/{sample_id}/similar", **answers(results.Neighbours))
def similar(
    sample_id: int, dataset: DatasetDep, filters: Filters, k: K = 20, model: str | None = None
) -> dict[str, Any]:
    """The k nearest samples by cosine distance (the sample itself excluded), nearest first;
    `split`, `class` and `tag` limit the neighbours. `model`: whose vectors (default: the one
    the dataset was most recently embedded with); `warning` when its weights are random."""
    model = model or dataset.default_model()
    found = dataset.similar(sample_id, k, model, filters)
    return with_weights_warning({"sample_id": sample_id, "model": model, "neighbours": found})


@router.get("/similar", **answers(results.Neighbours))
def similar_to_text(
    dataset: DatasetDep,
    filters: Filters,
    text: Annotated[str, Query(description="what to look for, in words")],
    k: K = 20,
    model: str | None = None,
) -> dict[str, Any]:
    """The k samples whose images are nearest to `text` (a CLIP or SigLIP model's text
    tower), nearest first; `split`, `class` and `tag` limit them."""
    model = model or dataset.default_model()
    found = dataset.similar(text=text, k=k, model=model, filters=filters)
    return with_weights_warning({"text": text, "model": model, "neighbours": found})


@router.post("/similar/upload", **answers(results.Neighbours))
async def similar_to_upload(
    dataset: DatasetDep, file: UploadFile, filters: Filters, k: K = 20, model: str | None = None
) -> dict[str, Any]:
    """Upload an image (multipart field `file`): it is embedded with the same model and its
    k nearest samples returned."""
    data = await file.read()
    model = model or dataset.default_model()
    found = dataset.similar_to_image(data, file.filename or "upload", k, model, filters)
    return with_weights_warning({"model": model, "neighbours": found})
