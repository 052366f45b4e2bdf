"""/api/datasets/{name}/samples: paging with filters, one sample, its image and thumbnail; tags."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from visor.api.deps import DatasetDep
from visor.errors import InvalidInput
from visor.media.images import for_browser
from visor.store.samples import SampleFilter
from visor.workspace import Dataset

router = APIRouter(prefix="/api/datasets/{name}", tags=["samples"])


Boxes = Literal["gt", "prediction", "all"]


class Filters(BaseModel):
    """The filters of a samples query (GET: query parameters; POST: the body)."""

    model_config = ConfigDict(populate_by_name=True)

    split: str | None = None
    category: str | None = Field(default=None, alias="class")
    tag: str | None = None
    filename: str | None = Field(default=None, description="substring of the path")
    has_label: bool | None = None
    duplicate_group: int | None = Field(default=None, description="from the duplicates job")
    has_duplicates: bool | None = None
    uniqueness_min: float | None = Field(default=None, ge=0, le=1)
    uniqueness_max: float | None = Field(default=None, ge=0, le=1)
    selection: str | None = Field(default=None, description="a token from POST /selections")
    label_issue: bool | None = Field(
        default=None, description="a label cleanlab finds likely wrong (from label-errors)"
    )
    leaked: bool | None = Field(
        default=None, description="in a duplicate group whose members sit in several splits"
    )
    detection_issue: bool | None = Field(
        default=None, description="flagged by cleanlab's detection check (label-errors)"
    )
    object_issue: str | None = Field(
        default=None,
        description="holding a box that is an outlier or in a duplicate group (object analysis)",
    )
    quality: str | None = Field(
        default=None, description="an image-quality issue: dark, light, blurry, ... (see /quality)"
    )
    evaluation: str | None = Field(
        default=None, description="an evaluation: its outcomes on boxes, its filters and sorts"
    )
    outcome: str | None = Field(
        default=None,
        description="with evaluation: samples with a tp, fp, fn, error or confused box",
    )
    confusion_gt: str | None = Field(
        default=None,
        description="with evaluation and confusion_pred: a confusion cell's "
        "ground-truth class ('' for the background)",
    )
    confusion_pred: str | None = Field(default=None, description="its predicted class")

    def sample_filter(self, dataset: Dataset, ids: list[int] | None = None) -> SampleFilter:
        if self.selection is not None:
            chosen = dataset.selection(self.selection)
            ids = chosen if ids is None else np.intersect1d(chosen, ids)  # type: ignore[assignment]
        return SampleFilter(
            split=self.split,
            category=self.category,
            tag=self.tag,
            filename=self.filename,
            has_label=self.has_label,
            ids=ids,
            duplicate_group=self.duplicate_group,
            has_duplicates=self.has_duplicates,
            uniqueness_min=self.uniqueness_min,
            uniqueness_max=self.uniqueness_max,
            evaluation=self.evaluation,
            quality_issue=self.quality,
            leaked=self.leaked,
            label_issue=self.label_issue,
            object_issue=self.object_issue,
            detection_issue=self.detection_issue,
            outcome=self.outcome,
            confusion=self._confusion(),
        )

    def _confusion(self) -> tuple[str, str] | None:
        if self.confusion_gt is None and self.confusion_pred is None:
            return None
        return (self.confusion_gt or "", self.confusion_pred or "")


FiltersDep = Annotated[Filters, Query()]


@router.get("/samples")
def list_samples(
    dataset: DatasetDep,
    filters: FiltersDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sort: str = "id",
    order: Literal["asc", "desc"] = "asc",
    boxes: Boxes | None = None,
) -> dict[str, Any]:
    """A page of samples. `sort` is a column (id, filename, path, size_bytes, width, height,
    num_labels, split, uniqueness, duplicate_group) or `metadata.<numeric field>`.
    `duplicate_group` and `has_duplicates` come from the duplicates job, `uniqueness_min`
    and `uniqueness_max` from the uniqueness scores; `selection` names a set of ids posted to
    `/selections`. `boxes` adds each sample's boxes (`gt`, `prediction` or `all`)."""
    return _page(
        dataset,
        filters.sample_filter(dataset),
        offset,
        limit,
        sort,
        order,
        boxes,
        filters.evaluation,
    )


class SampleQuery(Filters):
    """The samples of a set of ids (e.g. a lasso on the map), with the usual filters."""

    ids: list[int] = Field(max_length=1_000_000, description="sample ids to page through")
    sort: str = "id"
    order: Literal["asc", "desc"] = "asc"
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)
    boxes: Boxes | None = None


@router.post("/samples/query")
def query_samples(body: SampleQuery, dataset: DatasetDep) -> dict[str, Any]:
    """Like `GET /samples`, limited to the given ids (too many for a query string)."""
    filters = body.sample_filter(dataset, body.ids)
    return _page(
        dataset,
        filters,
        body.offset,
        body.limit,
        body.sort,
        body.order,
        body.boxes,
        body.evaluation,
    )


def _page(
    dataset: Dataset,
    filters: SampleFilter,
    offset: int,
    limit: int,
    sort: str,
    order: str,
    boxes: str | None,
    evaluation: str | None = None,
) -> dict[str, Any]:
    total, items = dataset.samples(
        filters, offset=offset, limit=limit, sort=sort, descending=order == "desc"
    )
    if boxes is not None:
        ids = [s["id"] for s in items]
        found = dataset.boxes(ids, None if boxes == "all" else boxes)
        outcomes = dataset.evaluations.outcomes(evaluation, ids) if evaluation else {}
        for item in items:
            item["boxes"] = found.get(item["id"], [])
            for box in item["boxes"]:
                box.update(outcomes.get(box["id"], {}))
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get("/samples/ids", response_class=Response)
def sample_ids(dataset: DatasetDep, filters: FiltersDep) -> Response:
    """The ids of every matching sample, ascending, as little-endian int32 bytes
    (`application/octet-stream`): what a map needs to fade the points a filter leaves out."""
    ids = dataset.filtered_ids(filters.sample_filter(dataset))
    return Response(
        ids.astype("<i4").tobytes(),
        media_type="application/octet-stream",
        headers={"X-Total-Count": str(len(ids))},
    )


@router.post("/selections", status_code=201)
async def create_selection(
    dataset: DatasetDep, request: Request, filters: FiltersDep
) -> dict[str, Any]:
    """Keep a set of sample ids (a lasso) under a token that `selection=` can name in samples
    queries, id lists and tag requests. The body: the ids as little-endian int32 bytes
    (`application/octet-stream`; 2 MB for 500K ids), or JSON `{"ids": [...]}`. Tokens are kept
    in the store (the newest 200 of a dataset, and those saved views name); an unknown one
    is a 404. With filters in the query
    string, `matching` says how many of the ids match them (the count a grid shows)."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/octet-stream"):
        if len(body) % 4:
            raise InvalidInput("selection: the body must be int32 ids (a multiple of 4 bytes)")
        ids = np.frombuffer(body, dtype="<i4")
    else:
        try:
            ids = np.asarray(json.loads(body)["ids"], dtype=np.int64)
        except (ValueError, KeyError, TypeError):
            raise InvalidInput('selection: send {"ids": [sample ids]} or int32 bytes') from None
    return await run_in_threadpool(_select, dataset, ids, filters)


def _select(dataset: Dataset, ids: np.ndarray, filters: Filters) -> dict[str, Any]:
    made = dataset.select(ids)
    if filters.model_dump(exclude_none=True):
        chosen = filters.model_copy(update={"selection": made["selection"]})
        made["matching"] = len(dataset.filtered_ids(chosen.sample_filter(dataset)))
    return made


@router.get("/samples/{sample_id}")
def get_sample(sample_id: int, dataset: DatasetDep) -> dict[str, Any]:
    """One sample with its labels; a scored label has `label_quality` (quality, issue, given,
    suggested class and its probability)."""
    return {**dataset.sample(sample_id), "labels": dataset.labels(sample_id)}


@router.get("/samples/{sample_id}/image")
def get_image(sample_id: int, dataset: DatasetDep) -> Response:
    """The image as a browser shows it: the original file, or PNG for types browsers don't
    decode (TIFF)."""
    data, media_type = for_browser(*dataset.image_bytes(sample_id))
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/samples/{sample_id}/thumbnail")
def get_thumbnail(sample_id: int, dataset: DatasetDep, request: Request) -> Response:
    path, etag = dataset.thumbnail(sample_id)
    headers = {"ETag": f'"{etag}"', "Cache-Control": "private, max-age=86400"}
    if request.headers.get("if-none-match", "").strip('"') == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)


class TagRequest(BaseModel):
    """Tags for the samples named by `ids`, or by a `selection` token."""

    ids: list[int] | None = Field(default=None, min_length=1, max_length=1_000_000)
    selection: str | None = None
    tags: list[str] = Field(min_length=1)

    def targets(self, dataset: Dataset) -> list[int] | np.ndarray:
        if (self.ids is None) == (self.selection is None):
            raise InvalidInput("tags: give either ids or a selection")
        return self.ids if self.ids is not None else dataset.selection(str(self.selection))


@router.post("/tags")
def add_tags(body: TagRequest, dataset: DatasetDep) -> dict[str, Any]:
    return {"updated": dataset.add_tags(body.targets(dataset), body.tags)}


@router.delete("/tags")
def remove_tags(body: TagRequest, dataset: DatasetDep) -> dict[str, Any]:
    return {"updated": dataset.remove_tags(body.targets(dataset), body.tags)}
