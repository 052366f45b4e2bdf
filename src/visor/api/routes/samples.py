"""/api/datasets/{name}/samples: paging with filters, one sample, its image and thumbnail; tags."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep
from visor.store.samples import SampleFilter
from visor.workspace import Dataset

router = APIRouter(prefix="/api/datasets/{name}", tags=["samples"])

_MEDIA_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
}


@router.get("/samples")
def list_samples(
    dataset: DatasetDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    split: str | None = None,
    category: Annotated[str | None, Query(alias="class")] = None,
    tag: str | None = None,
    filename: str | None = None,
    has_label: bool | None = None,
    duplicate_group: int | None = None,
    has_duplicates: bool | None = None,
    uniqueness_min: Annotated[float | None, Query(ge=0, le=1)] = None,
    uniqueness_max: Annotated[float | None, Query(ge=0, le=1)] = None,
    sort: str = "id",
    order: Literal["asc", "desc"] = "asc",
) -> dict[str, Any]:
    """A page of samples. `sort` is a column (id, filename, path, size_bytes, width, height,
    num_labels, split, uniqueness, duplicate_group) or `metadata.<numeric field>`.
    `duplicate_group` and `has_duplicates` come from the duplicates job, `uniqueness_min`
    and `uniqueness_max` from the uniqueness scores."""
    filters = SampleFilter(
        split=split,
        category=category,
        tag=tag,
        filename=filename,
        has_label=has_label,
        duplicate_group=duplicate_group,
        has_duplicates=has_duplicates,
        uniqueness_min=uniqueness_min,
        uniqueness_max=uniqueness_max,
    )
    return _page(dataset, filters, offset, limit, sort, order)


class SampleQuery(BaseModel):
    """The samples of a selection (e.g. a lasso on the map), with the usual filters."""

    ids: list[int] = Field(max_length=1_000_000, description="sample ids to page through")
    split: str | None = None
    category: str | None = Field(default=None, alias="class")
    tag: str | None = None
    filename: str | None = None
    sort: str = "id"
    order: Literal["asc", "desc"] = "asc"
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)


@router.post("/samples/query")
def query_samples(body: SampleQuery, dataset: DatasetDep) -> dict[str, Any]:
    """Like `GET /samples`, limited to the given ids (too many for a query string)."""
    filters = SampleFilter(
        split=body.split,
        category=body.category,
        tag=body.tag,
        filename=body.filename,
        ids=body.ids,
    )
    return _page(dataset, filters, body.offset, body.limit, body.sort, body.order)


def _page(
    dataset: Dataset, filters: SampleFilter, offset: int, limit: int, sort: str, order: str
) -> dict[str, Any]:
    total, items = dataset.samples(
        filters, offset=offset, limit=limit, sort=sort, descending=order == "desc"
    )
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get("/samples/{sample_id}")
def get_sample(sample_id: int, dataset: DatasetDep) -> dict[str, Any]:
    return {**dataset.sample(sample_id), "labels": dataset.labels(sample_id)}


@router.get("/samples/{sample_id}/image")
def get_image(sample_id: int, dataset: DatasetDep) -> Response:
    data, path = dataset.image_bytes(sample_id)
    media_type = _MEDIA_TYPES.get(path.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/samples/{sample_id}/thumbnail")
def get_thumbnail(sample_id: int, dataset: DatasetDep, request: Request) -> Response:
    path, etag = dataset.thumbnail(sample_id)
    headers = {"ETag": f'"{etag}"', "Cache-Control": "private, max-age=86400"}
    if request.headers.get("if-none-match", "").strip('"') == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)


class TagRequest(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=1_000_000)
    tags: list[str] = Field(min_length=1)


@router.post("/tags")
def add_tags(body: TagRequest, dataset: DatasetDep) -> dict[str, Any]:
    return {"updated": dataset.add_tags(body.ids, body.tags)}


@router.delete("/tags")
def remove_tags(body: TagRequest, dataset: DatasetDep) -> dict[str, Any]:
    return {"updated": dataset.remove_tags(body.ids, body.tags)}
