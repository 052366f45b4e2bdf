"""The FastAPI application: lifespan, error mapping, routers and the built web UI."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from visor import __version__
from visor.api.events import EventStream, follow_changes
from visor.api.guard import guard
from visor.api.routes import (
    analysis,
    datasets,
    edits,
    embeddings,
    evaluations,
    export,
    jobs,
    maps,
    objects,
    ops,
    samples,
    search,
    views,
)
from visor.client import withdraw_server
from visor.config import Settings, get_settings
from visor.errors import VisorError
from visor.ops.base import errors_text
from visor.workspace import Workspace

log = logging.getLogger("visor.api")


def _warm(workspace: Workspace) -> None:
    try:
        workspace.warm_points()
    except Exception:  # never the server's problem: the points are encoded when asked instead
        log.exception("encoding map points ahead failed")


_NO_UI = """<!doctype html><html><head><title>Visor</title></head>
<body style="font-family:sans-serif"><h1>Visor</h1>
<p>The web UI has not been built. Run <code>make setup</code> in the repository (it builds
<code>frontend/</code> into the package), then restart <code>visor serve</code>.</p>
<p>The HTTP API is up: see <a href="/docs">/docs</a>.</p></body></html>"""


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def static_dir() -> Path:
    return Path(str(resources.files("visor"))) / "static"


def create_app(settings: Settings | None = None, *, any_host: bool = False) -> FastAPI:
    """The app over the workspace in `settings.home`. Only loopback `Host` names are served
    unless `any_host`; changes need the token that `visor serve` records (see `guard`)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.announced = None
        app.state.workspace = Workspace(settings)
        app.state.workspace.serving = True
        announce = getattr(app.state, "announce", None)  # set by `visor serve`
        app.state.announced = announce() if announce else None
        threading.Thread(
            target=_warm, args=(app.state.workspace,), name="warm-points", daemon=True
        ).start()
        try:
            yield
        finally:
            if app.state.announced is not None:  # before uvicorn re-raises a stop signal
                withdraw_server(settings.home, app.state.announced)
            app.state.workspace.close()

    app = FastAPI(
        title="Visor",
        version=__version__,
        lifespan=lifespan,
        description="See and fix image datasets.",
    )

    token = lambda: app.state.announced.token if app.state.announced else None  # noqa: E731
    app.middleware("http")(guard(token, any_host))

    @app.exception_handler(VisorError)
    async def visor_error(request: Request, exc: VisorError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with one line naming each field (as Python and the CLI say it) and pydantic's
        error list."""
        errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
        body = {"code": "invalid_input", "message": errors_text(errors), "errors": errors}
        return JSONResponse({"error": body}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")

    @app.get("/api/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/api/events", tags=["meta"])
    def events(request: Request, since: int = -1) -> EventStream:
        """Server-sent events: `change` `{seq, dataset, what}` whenever a job ends, tags change,
        predictions are imported or a dataset is deleted, whoever did it (the UI, the CLI, a
        notebook); `since` resumes after a known `seq`."""
        changes = request.app.state.workspace.changes
        return EventStream(follow_changes(request, changes, since))

    app.include_router(ops.router())
    app.include_router(datasets.router)
    app.include_router(samples.router)
    app.include_router(jobs.router)
    app.include_router(embeddings.router)
    app.include_router(maps.router)
    app.include_router(search.router)
    app.include_router(analysis.router)
    app.include_router(evaluations.router)
    app.include_router(objects.router)
    app.include_router(export.downloads)
    app.include_router(edits.router)
    app.include_router(views.router)

    ui = settings.ui_dir or static_dir()
    if (ui / "index.html").exists():
        app.mount("/", StaticFiles(directory=ui, html=True), name="ui")
    else:

        @app.get("/", include_in_schema=False)
        def no_ui() -> HTMLResponse:
            return HTMLResponse(_NO_UI)

    return app
