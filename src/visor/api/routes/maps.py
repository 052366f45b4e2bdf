"""/api/datasets/{name}/maps: make a map (job), list maps, and a map's points in binary."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep
from visor.errors import InvalidInput

router = APIRouter(prefix="/api/datasets/{name}/maps", tags=["maps"])

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class MapRequest(BaseModel):
    model: str | None = Field(
        default=None,
        description="whose vectors (default: the dataset's most recently embedded model)",
    )
    method: str = Field(default="umap", description="umap, pca or tsne")
    uniqueness: bool = Field(default=True, description="also score every sample's uniqueness")
    objects: bool = Field(default=False, description="a point per box (box vectors)")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="umap: n_neighbors, min_dist, n_epochs, pca_dims, random_state; "
        "tsne: perplexity, max_iter, pca_dims, random_state; pca: random_state",
    )


@router.post("", status_code=202)
def make_map(dataset: DatasetDep, body: MapRequest | None = None) -> dict[str, Any]:
    """Start a map job (202 with the job; follow it at /api/jobs/{id}/events). 409 when the
    model has no vectors in this dataset yet."""
    body = body or MapRequest()
    return dataset.make_map(
        body.model, body.method, body.params, uniqueness=body.uniqueness, objects=body.objects
    )


@router.get("")
def list_maps(dataset: DatasetDep) -> list[dict[str, Any]]:
    return dataset.maps()


@router.get("/{map_id}")
def get_map(dataset: DatasetDep, map_id: str) -> dict[str, Any]:
    """One map's model, method, parameters and size; `default` for the default map."""
    return dataset.map(_map_id(map_id))


@router.put("/{map_id}/default")
def set_default(dataset: DatasetDep, map_id: int) -> dict[str, Any]:
    return dataset.set_default_map(map_id)


@router.get("/{map_id}/points", response_class=Response)
def points(dataset: DatasetDep, map_id: str, request: Request) -> Response:
    """Every point of a map as an Arrow IPC stream (`application/vnd.apache.arrow.stream`),
    one record batch with columns `sample_id` int32, `x` float32, `y` float32, `class` uint16,
    `split` uint8 and `tag` uint16, in sample id order. `class` (the sample's first class),
    `split` and `tag` (its first tag) are codes into the legends stored as JSON in the schema
    metadata (`visor:legend`), where code 0 means none. Sent gzip-compressed (level 1) when the
    client accepts it and is not on this machine."""
    body, count = dataset.map_points_stream(_map_id(map_id))
    headers = {"Cache-Control": "no-cache", "X-Points": str(count)}
    # Compressing takes longer than sending to a client on this machine (17 MB at 1M points:
    # ~0.4 s of gzip); a client elsewhere gets ~40% fewer bytes.
    local = request.client is not None and request.client.host in ("127.0.0.1", "::1")
    if not local and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=ARROW_STREAM, headers=headers)


def _map_id(value: str) -> int | None:
    if value == "default":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"map id {value!r}: a number or 'default'") from None
