"""/api/datasets/{name}/maps: list maps, and a map's points in binary."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi import APIRouter, Request, Response

from visor.api.deps import ContextDep, DatasetDep
from visor.errors import InvalidInput, NotFound
from visor.ops.results import ClusterList, MapRow
from visor.services import maps as map_service

router = APIRouter(prefix="/api/datasets/{name}/maps", tags=["maps"])

ARROW_STREAM = "application/vnd.apache.arrow.stream"


@router.get("", response_model=list[MapRow], response_model_exclude_unset=True)
def list_maps(dataset: DatasetDep) -> list[dict[str, Any]]:
    return dataset.maps()


@router.get("/{map_id}", response_model=MapRow, response_model_exclude_unset=True)
def get_map(dataset: DatasetDep, map_id: str) -> dict[str, Any]:
    """One map's model, method, parameters and size; `default` for the default map."""
    return dataset.map(_map_id(map_id))


@router.get("/{map_id}/points", response_class=Response)
def points(ctx: ContextDep, map_id: str, request: Request) -> Response:
    """Every point of a map as an Arrow IPC stream (`application/vnd.apache.arrow.stream`),
    one record batch with columns `sample_id` int32, `x` float32, `y` float32, `class` uint16,
    `split` uint8 and `tag` uint16, in sample id order. `class` (the sample's first class),
    `split` and `tag` (its first tag) are codes into the legends stored as JSON in the schema
    metadata (`visor:legend`), where code 0 means none. `default` before any map: 204, empty.
    Sent gzip-compressed (level 1) when the client accepts it and is not on this machine."""
    chosen = _map_id(map_id)
    try:
        body, count = map_service.cached_points(ctx.store, ctx.engine.points, ctx.dataset, chosen)
    except NotFound:
        if chosen is not None:
            raise
        return Response(status_code=204)  # no map yet: nothing to draw, and not an error
    headers = {"Cache-Control": "no-cache", "X-Points": str(count)}
    # Compressing takes longer than sending to a client on this machine (17 MB at 1M points:
    # ~0.4 s of gzip); a client elsewhere gets ~40% fewer bytes.
    local = request.client is not None and request.client.host in ("127.0.0.1", "::1")
    if not local and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=ARROW_STREAM, headers=headers)


@router.get("/{map_id}/clusters", response_model=ClusterList, response_model_exclude_unset=True)
def clusters(dataset: DatasetDep, map_id: str) -> dict[str, Any]:
    """The map's density clusters (from the clusters job), largest first; `clusters` null
    when it was never clustered."""
    return dataset.clusters(_map_id(map_id))


def _map_id(value: str) -> int | None:
    if value == "default":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"map id {value!r}: a number or 'default'") from None
