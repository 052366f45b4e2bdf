"""/api/datasets/{name}/samples: paging with filters, one sample, its image and thumbnail;
selections."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from visor import ops
from visor.api.deps import ContextDep, DatasetDep, answers
from visor.errors import InvalidInput
from visor.media.images import for_browser
from visor.ops import results
from visor.ops.base import Context
from visor.services import samples as sample_service
from visor.services.evaluate import Evaluations
from visor.store import samples as sample_rows
from visor.store.samples import SampleFilter

router = APIRouter(prefix="/api/datasets/{name}", tags=["samples"])


Boxes = Literal["gt", "prediction", "all"]


# The filters as query parameters: every field of the filter model but `ids` (a body's).
Filters = create_model(  # type: ignore[call-overload]
    "Filters",
    __config__=ConfigDict(populate_by_name=True),
    **{
        name: (field.annotation, field)
        for name, field in SampleFilter.model_fields.items()
        if name != "ids"
    },
)
FiltersDep = Annotated[Filters, Query()]


def sample_filter(filters: BaseModel, ids: list[int] | None = None) -> SampleFilter:
    """The filter model of a request's filters (a body's other fields left out)."""
    given = filters.model_dump(exclude_none=True, include=set(Filters.model_fields))
    return SampleFilter.model_validate({**given, "ids": ids})


@router.get("/samples", **answers(results.SamplePage))
def list_samples(
    ctx: ContextDep,
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
    chosen = sample_filter(filters)
    return _page(ctx, chosen, offset, limit, sort, order, boxes, chosen.evaluation)


class SampleQuery(Filters):
    """The samples of a set of ids (e.g. a lasso on the map), with the usual filters."""

    ids: list[int] = Field(max_length=1_000_000, description="sample ids to page through")
    sort: str = "id"
    order: Literal["asc", "desc"] = "asc"
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)
    boxes: Boxes | None = None


@router.post("/samples/query", **answers(results.SamplePage))
def query_samples(body: SampleQuery, ctx: ContextDep) -> dict[str, Any]:
    """Like `GET /samples`, limited to the given ids (too many for a query string)."""
    filters = sample_filter(body, body.ids)
    return _page(
        ctx, filters, body.offset, body.limit, body.sort, body.order, body.boxes, filters.evaluation
    )


def _page(
    ctx: Context,
    filters: SampleFilter,
    offset: int,
    limit: int,
    sort: str,
    order: str,
    boxes: str | None,
    evaluation: str | None = None,
) -> dict[str, Any]:
    op = ops.Samples(
        filters=filters, offset=offset, limit=limit, sort=sort, descending=order == "desc"
    )
    items = (page := op.run(ctx, None))["items"]
    if boxes is not None:
        ids = [s["id"] for s in items]
        found = sample_rows.boxes(ctx.store, ctx.id, ids, None if boxes == "all" else boxes)
        outcomes = (
            Evaluations(ctx.store, ctx.dataset).outcomes(evaluation, ids) if evaluation else {}
        )
        for item in items:
            item["boxes"] = found.get(item["id"], [])
            for box in item["boxes"]:
                box.update(outcomes.get(box["id"], {}))
    return {"total": page["total"], "offset": offset, "limit": limit, "items": items}


@router.get("/samples/ids", response_class=Response)
def sample_ids(ctx: ContextDep, filters: FiltersDep) -> Response:
    """The ids of every matching sample, ascending, as little-endian int32 bytes
    (`application/octet-stream`): what a map needs to fade the points a filter leaves out."""
    ids = sample_rows.filtered_ids(
        ctx.store, ctx.id, ctx.filters(sample_filter(filters), known=False)
    )
    return Response(
        ids.astype("<i4").tobytes(),
        media_type="application/octet-stream",
        headers={"X-Total-Count": str(len(ids))},
    )


@router.post("/selections", status_code=201)
async def create_selection(
    ctx: ContextDep, request: Request, filters: FiltersDep
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
    return await run_in_threadpool(_select, ctx, ids, filters)


def _select(ctx: Context, ids: np.ndarray, filters: BaseModel) -> dict[str, Any]:
    made = ctx.select(ids)
    if filters.model_dump(exclude_none=True):
        chosen = sample_filter(filters).model_copy(update={"selection": made["selection"]})
        made["matching"] = len(
            sample_rows.filtered_ids(ctx.store, ctx.id, ctx.filters(chosen, known=False))
        )
    return made


@router.get("/samples/{sample_id}", **answers(results.SampleDetail))
def get_sample(sample_id: int, dataset: DatasetDep) -> dict[str, Any]:
    """One sample with its labels; a scored label has `label_quality` (quality, issue, given,
    suggested class and its probability)."""
    return {**dataset.sample(sample_id), "labels": dataset.labels(sample_id)}


@router.get("/samples/{sample_id}/image")
def get_image(sample_id: int, ctx: ContextDep) -> Response:
    """The image as a browser shows it: the original file, or PNG for types browsers don't
    decode (TIFF)."""
    found = sample_service.image_bytes(ctx.store, ctx.source(), ctx.dataset, sample_id)
    data, media_type = for_browser(*found)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/samples/{sample_id}/thumbnail")
def get_thumbnail(sample_id: int, ctx: ContextDep, request: Request) -> Response:
    path, etag = sample_service.thumbnail(
        ctx.store, ctx.settings, ctx.source(), ctx.dataset, sample_id
    )
    headers = {"ETag": f'"{etag}"', "Cache-Control": "private, max-age=86400"}
    if request.headers.get("if-none-match", "").strip('"') == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)
