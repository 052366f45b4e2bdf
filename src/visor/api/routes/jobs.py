"""/api/jobs: list, show, follow (SSE), cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from visor.api.deps import WorkspaceDep
from visor.api.events import EventStream, follow_job

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("")
def list_jobs(
    workspace: WorkspaceDep, dataset: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    return workspace.jobs.list(dataset=dataset, kind=kind)


@router.get("/{job_id}")
def get_job(job_id: str, workspace: WorkspaceDep) -> dict[str, Any]:
    return workspace.jobs.get(job_id)


@router.get("/{job_id}/events")
def job_events(job_id: str, request: Request, workspace: WorkspaceDep) -> EventStream:
    """Server-sent events: `progress` while the job runs, then one `end` event."""
    workspace.jobs.get(job_id)  # 404 before the stream starts
    return EventStream(follow_job(request, lambda: workspace.jobs.get(job_id)))


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, workspace: WorkspaceDep) -> dict[str, Any]:
    return workspace.jobs.cancel(job_id)
