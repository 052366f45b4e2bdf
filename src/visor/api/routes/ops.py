"""Every operation's route, made from the registry: `POST /api/datasets/{name}/{op}` (or
`POST /api/{op}` for the workspace's), the operation's model as the body. A job operation
answers 202 with the job (follow it at /api/jobs/{id}/events); the others 200 with their
result (JSON, or Arrow IPC / bytes for the few whose result is a table or a file)."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from visor.ops.base import JSON, OPS, Op
from visor.workspace import Workspace


class Job(BaseModel):
    """A job as `GET /api/jobs/{id}` shows it."""

    id: str
    kind: str
    dataset: str | None
    params: dict[str, Any]
    state: str
    done: int
    total: int | None
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    rate: float | None
    eta: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None


def _respond(op: Op, result: Any, seq: int) -> Response:
    """The answer; a quick operation's carries `X-Visor-Seq`, the workspace's change count
    once it was done: a page that fetches again after it has every change up to that one, and
    can pass over their events (`GET /api/events`) rather than fetch twice."""
    if op.job:
        return JSONResponse(result, status_code=202)
    if op.media_type == JSON:
        response: Response = JSONResponse(jsonable_encoder(result))
    else:
        response = Response(op.encode(result), media_type=op.media_type)
    response.headers["X-Visor-Seq"] = str(seq)
    return response


def _route(cls: type[Op]) -> Any:
    optional = all(not f.is_required() for f in cls.model_fields.values())

    async def endpoint(request: Request, **kwargs: Any) -> Response:
        op = kwargs["body"] or cls()
        workspace: Workspace = request.app.state.workspace
        result = await run_in_threadpool(workspace.runner.run, op, kwargs.get("name"))
        return _respond(op, result, workspace.changes.seq)

    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter(
            "body",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=cls | None if optional else cls,
            default=Body(default=None) if optional else Body(),
        ),
    ]
    if cls.scope == "dataset":
        params.append(inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, annotation=str))
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = cls.__name__
    endpoint.__doc__ = cls.__doc__
    return endpoint


def router() -> APIRouter:
    made = APIRouter()
    for (scope, name), cls in sorted(OPS.items()):
        path = f"/api/datasets/{{name}}/{name}" if scope == "dataset" else f"/api/{name}"
        made.add_api_route(
            path,
            _route(cls),
            methods=["POST"],
            status_code=202 if cls.job else 200,
            response_model=Job if cls.job else cls.result,
            tags=["jobs" if cls.job else "operations"],
            summary=(cls.__doc__ or name).strip().splitlines()[0],
            name=f"op:{scope}:{name}",
        )
    return made
