"""/api/datasets/{name}/embeddings: start the embed job, follow it (SSE), status, failures;
/api/models: the model registry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from visor import ops
from visor.api.deps import DatasetDep, WorkspaceDep, answers
from visor.api.events import EventStream, follow_job
from visor.errors import NotFound
from visor.services.jobs import FINAL_STATES

router = APIRouter(tags=["embeddings"])


@router.get("/api/datasets/{name}/embeddings/progress")
def progress(
    dataset: DatasetDep, workspace: WorkspaceDep, request: Request, model: str | None = None
) -> EventStream:
    """Server-sent events for the dataset's running (else latest) embed job: a `progress`
    event every 0.25 s with done, total, rate, eta, state and message, then one `end`."""
    runner = workspace.engine.jobs
    jobs = [
        j
        for j in runner.list(dataset=dataset.name, kind="embed")
        if model is None or (j["params"] or {}).get("model") == model
    ]
    if not jobs:
        raise NotFound(
            f"dataset {dataset.name!r} has no embed job"
            + (f" for model {model!r}" if model else "")
            + "; start one with POST /api/datasets/{name}/embed"
        )
    job = next((j for j in jobs if j["state"] not in FINAL_STATES), jobs[0])
    return EventStream(follow_job(request, lambda: runner.get(job["id"])))


@router.get("/api/datasets/{name}/embeddings/status", **answers(ops.results.VectorStatus))
def status(dataset: DatasetDep) -> dict[str, Any]:
    """Per model: dim, vectors stored, samples, unreadable images, complete, last job."""
    return dataset.embedding_status()


@router.get("/api/datasets/{name}/embeddings/vectors", response_class=Response)
def vectors(dataset: DatasetDep, model: str | None = None) -> Response:
    """A model's vectors (default: the dataset's most recently embedded one) as a NumPy `.npz`
    file: `ids` (int64) and `vectors` (float32, n x d), read with `numpy.load`."""
    op = ops.Vectors(model=model)
    return Response(op.encode(dataset.embeddings(model)), media_type=op.media_type)


@router.get("/api/datasets/{name}/embeddings/errors")
def errors(
    dataset: DatasetDep,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[dict[str, Any]]:
    """The images the model could not embed: sample id, path and reason."""
    return dataset.embedding_errors(model, limit=limit)


@router.get("/api/models", **answers(ops.results.Models))
def models(workspace: WorkspaceDep) -> dict[str, Any]:
    """Models known by name and those loaded in the server; the backend its CPU runs them
    on, its int8 path, what auto measured (the same as POST /api/models)."""
    return workspace.models()
