"""Server-sent events that follow a job until it ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request

from visor.services.changes import Changes
from visor.services.jobs import FINAL_STATES

_INTERVAL_S = 0.25


def progress_event(job: dict[str, Any]) -> dict[str, Any]:
    return {
        k: job.get(k)
        for k in (
            "id",
            "kind",
            "dataset",
            "state",
            "done",
            "total",
            "rate",
            "eta",
            "message",
            "error",
            "result",
        )
    }


async def follow_job(
    request: Request, current: Callable[[], dict[str, Any]]
) -> AsyncIterator[dict[str, str]]:
    """A `progress` event every 0.25 s while the job runs, then its final state, then the end."""
    while True:
        job = await asyncio.to_thread(current)
        final = job["state"] in FINAL_STATES
        yield {
            "event": "end" if final else "progress",
            "data": json.dumps(progress_event(job), default=str),
        }
        if final or await request.is_disconnected():
            return
        await asyncio.sleep(_INTERVAL_S)


async def follow_changes(
    request: Request, changes: Changes, since: int
) -> AsyncIterator[dict[str, str]]:
    """A `change` event for each change to the workspace after `since`, as it happens (checked
    every 0.25 s), until the client goes; first a `hello` with the current position."""
    seen = changes.seq if since < 0 else since
    yield {"event": "hello", "data": json.dumps({"seq": seen})}
    while not await request.is_disconnected():
        for change in changes.since(seen):
            seen = change["seq"]
            yield {"event": "change", "id": str(seen), "data": json.dumps(change)}
        await asyncio.sleep(_INTERVAL_S)
