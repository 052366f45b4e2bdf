"""Server-sent events: a job followed until it ends, and the workspace's changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import EventSourceResponse
from sse_starlette.sse import AppStatus
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from visor.services.changes import Changes
from visor.services.jobs import FINAL_STATES

_INTERVAL_S = 0.25
_RETRY_MS = 2000


class EventStream(EventSourceResponse):
    """An event stream that, once the server is stopping, ends at once with a `retry` (the
    browser comes back when it runs again) rather than with no answer at all: sse-starlette
    ends a stream opened during shutdown before its first byte, which the middleware turns
    into an HTTP 500."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if AppStatus.should_exit:
            stop = Response(f"retry: {_RETRY_MS}\n\n", media_type="text/event-stream")
            await stop(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


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
