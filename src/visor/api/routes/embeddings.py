"""/api/datasets/{name}/embeddings: start the embed job, follow it (SSE), status, failures;
/api/models: the model registry."""

from __future__ import annotations

import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from visor.api.deps import DatasetDep
from visor.api.events import follow_job
from visor.embedding.models import describe_models, loaded_models
from visor.errors import NotFound
from visor.services.jobs import FINAL_STATES

router = APIRouter(tags=["embeddings"])


class EmbedRequest(BaseModel):
    model: str | None = Field(
        default=None,
        description="registry name (dinov2-base), random:<name>, a folder or a hub id",
    )
    batch_size: int | None = Field(
        default=None, description="images per model batch (auto if unset)"
    )
    device: str | None = Field(default=None, description="auto, cuda, cuda:N, mps or cpu")
    precision: str | None = Field(
        default=None, description="auto, fp32, fp16, bf16 or int8 (OpenVINO, CPU)"
    )
    workers: int | None = Field(default=None, description="decoding threads (auto if unset)")
    recompute: bool = Field(
        default=False, description="embed every image again, not only missing ones"
    )
    quality: bool = Field(default=True, description="measure image quality from the same decode")
    objects: bool = Field(default=False, description="embed every box (a crop) instead")
    kind: str = Field(default="gt", description="with objects: gt or prediction boxes")
    ray: str | None = Field(
        default=None, description="run on a Ray cluster: local (started for the job), auto, "
        "or ray://host:port"
    )  # fmt: skip
    backend: str | None = Field(
        default=None,
        description="auto, torch or openvino: how the model runs on a CPU (auto: the faster, "
        "measured on first use)",
    )
    ray_actors: int | None = Field(default=None, description="model actors on Ray (1)")
    ray_gpus: float | None = Field(default=None, description="GPUs per model actor (0)")
    staging: str | None = Field(
        default=None, description="folder or s3:// / gs:// URL for Ray's shards"
    )
    source: str | None = Field(default=None, description="with kind prediction: one source")


@router.post("/api/datasets/{name}/embeddings/generate", status_code=202)
def generate(dataset: DatasetDep, body: EmbedRequest | None = None) -> dict[str, Any]:
    """Start embedding the images that have no vector yet; answers 202 with the job. The same
    request while that job runs answers with the running job."""
    body = body or EmbedRequest()
    return dataset.embed(
        body.model,
        device=body.device,
        precision=body.precision,
        batch_size=body.batch_size,
        workers=body.workers,
        recompute=body.recompute,
        quality=body.quality,
        objects=body.objects,
        kind=body.kind,
        source=body.source,
        ray=body.ray,
        ray_actors=body.ray_actors,
        ray_gpus=body.ray_gpus,
        staging=body.staging,
        backend=body.backend,
    )


@router.get("/api/datasets/{name}/embeddings/progress")
def progress(
    dataset: DatasetDep, request: Request, model: str | None = None
) -> EventSourceResponse:
    """Server-sent events for the dataset's running (else latest) embed job: a `progress`
    event every 0.25 s with done, total, rate, eta, state and message, then one `end`."""
    jobs = dataset.embed_jobs(model)
    if not jobs:
        raise NotFound(
            f"dataset {dataset.name!r} has no embed job"
            + (f" for model {model!r}" if model else "")
            + "; start one with POST /api/datasets/{name}/embeddings/generate"
        )
    job = next((j for j in jobs if j["state"] not in FINAL_STATES), jobs[0])
    runner = dataset.workspace.jobs
    return EventSourceResponse(follow_job(request, lambda: runner.get(job["id"])))


@router.get("/api/datasets/{name}/embeddings/status")
def status(dataset: DatasetDep) -> dict[str, Any]:
    """Per model: dim, vectors stored, samples, unreadable images, complete, last job."""
    return dataset.embedding_status()


@router.get("/api/datasets/{name}/embeddings/vectors", response_class=Response)
def vectors(dataset: DatasetDep, model: str | None = None) -> Response:
    """A model's vectors (default: the dataset's most recently embedded one) as a NumPy `.npz`
    file: `ids` (int64) and `vectors` (float32, n x d), read with `numpy.load`."""
    ids, found = dataset.embeddings(model)
    out = io.BytesIO()
    np.savez(out, ids=ids, vectors=found)
    return Response(out.getvalue(), media_type="application/octet-stream")


@router.get("/api/datasets/{name}/embeddings/errors")
def errors(
    dataset: DatasetDep,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[dict[str, Any]]:
    """The images the model could not embed: sample id, path and reason."""
    return dataset.embedding_errors(model, limit=limit)


@router.get("/api/models")
def models() -> dict[str, Any]:
    """Models known by name, and those loaded in this process."""
    return {"models": describe_models(), "loaded": loaded_models()}
