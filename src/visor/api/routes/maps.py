"""/api/datasets/{name}/maps: make a map (job), list maps, and a map's points in binary."""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep
from visor.errors import InvalidInput

router = APIRouter(prefix="/api/datasets/{name}/maps", tags=["maps"])

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class MapRequest(BaseModel):
    model: str | None = Field(default=None, description="embedding model (default: VISOR_MODEL)")
    method: str = Field(default="umap", description="umap, pca or tsne")
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
    return dataset.make_map(body.model, body.method, body.params)


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
    table = dataset.map_points(_map_id(map_id))
    classes, class_codes = _codes(table.column("class"))
    splits, split_codes = _codes(table.column("split"))
    tags, tag_codes = _codes(table.column("tag"))
    legend = {"class": [None, *classes], "split": [None, *splits], "tag": [None, *tags]}
    out = pa.table(
        {
            "sample_id": table.column("sample_id").cast(pa.int32()),
            "x": table.column("x").cast(pa.float32()),
            "y": table.column("y").cast(pa.float32()),
            "class": pa.array(class_codes.astype(np.uint16)),
            "split": pa.array(split_codes.astype(np.uint8)),
            "tag": pa.array(tag_codes.astype(np.uint16)),
        }
    ).replace_schema_metadata({"visor:legend": json.dumps(legend)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, out.schema) as writer:
        writer.write_table(out.combine_chunks(), max_chunksize=len(out) or None)
    body = sink.getvalue().to_pybytes()
    headers = {"Cache-Control": "no-cache", "X-Points": str(len(out))}
    # Compressing takes longer than sending to a client on this machine (17 MB at 1M points:
    # ~0.4 s of gzip); a client elsewhere gets ~40% fewer bytes.
    local = request.client is not None and request.client.host in ("127.0.0.1", "::1")
    if not local and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=ARROW_STREAM, headers=headers)


def _codes(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """Sorted distinct values and 1-based codes per row (0 where null)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    names = encoded.dictionary.to_pylist()
    order = np.argsort(np.asarray(names, dtype=object)) if names else np.zeros(0, np.int64)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(encoded.is_null())
    codes = np.zeros(len(encoded), dtype=np.int64)
    codes[valid] = rank[indices[valid].astype(np.int64)] + 1
    return [names[i] for i in order], codes


def _map_id(value: str) -> int | None:
    if value == "default":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"map id {value!r}: a number or 'default'") from None
