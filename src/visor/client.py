"""A workspace that a running `visor serve` holds: the same interface as `Workspace` and
`Dataset`, over the server's HTTP API.

DuckDB lets one process write a file. While `visor serve` runs it is that process, and says
where it listens in `$VISOR_HOME/server.json` (URL, pid, token; readable by its owner only).
`find_server` reads that file; the CLI and `visor.open()` then use `RemoteWorkspace`: the same
`Workspaces` and `Dataset` classes with a runner that posts each operation to the server, so
every command runs the same code with or without a server, and its jobs run in the server.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from visor.config import Settings
from visor.errors import Conflict, InvalidInput, NotFound, VisorError
from visor.ops.base import Op
from visor.ops.runner import finish
from visor.services.jobs import FINAL_STATES
from visor.workspace import Workspace, Workspaces

SERVER_FILE = "server.json"


@dataclass(frozen=True)
class ServerInfo:
    url: str
    pid: int
    token: str
    started: float


def server_file(home: Path) -> Path:
    return home / SERVER_FILE


def announce_server(home: Path, url: str) -> ServerInfo:
    """Record a server starting for `home` (mode 0600: the token is its owner's)."""
    info = ServerInfo(
        url=url, pid=os.getpid(), token=secrets.token_urlsafe(24), started=time.time()
    )
    home.mkdir(parents=True, exist_ok=True)
    path = server_file(home)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(info), f)
    os.replace(temporary, path)
    return info


def withdraw_server(home: Path, info: ServerInfo) -> None:
    """Remove the record of a server that stops, if it is still this server's."""
    path = server_file(home)
    try:
        if json.loads(path.read_text()).get("pid") == info.pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def find_server(home: Path) -> ServerInfo | None:
    """The server recorded for `home` when it is alive and answers; None otherwise (a stale
    record, of a dead process or one that does not answer, is ignored)."""
    try:
        info = ServerInfo(**json.loads(server_file(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not _alive(info.pid):
        return None
    try:
        answer = httpx.get(f"{info.url}/api/health", timeout=2)
    except httpx.HTTPError:
        return None
    return info if answer.status_code == 200 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Api:
    """HTTP calls to the server, with its errors turned back into Visor's."""

    def __init__(self, info: ServerInfo) -> None:
        self.info = info
        self.http = httpx.Client(
            base_url=info.url, headers={"X-Visor-Token": info.token}, timeout=600
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise VisorError(
                f"the Visor server at {self.info.url} stopped answering ({type(e).__name__}); "
                "start it again, or stop it to use the store directly"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code} from {self.info.url}{path}"
            kind = {404: NotFound, 409: Conflict, 422: InvalidInput}.get(
                response.status_code, VisorError
            )
            raise kind(message)
        if response.status_code == 204:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content


class RemoteJobs:
    def __init__(self, api: _Api) -> None:
        self.api = api

    def get(self, job_id: str) -> dict[str, Any]:
        return self.api.call("GET", f"/api/jobs/{job_id}")

    def list(self, dataset: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("dataset", dataset), ("kind", kind)) if v}
        return self.api.call("GET", "/api/jobs", params=params)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.api.call("POST", f"/api/jobs/{job_id}/cancel")

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        while job["state"] not in FINAL_STATES:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.1)
            job = self.get(job_id)
        return job


class RemoteRunner:
    """Runs operations in a server: POST the operation's JSON to its route."""

    def __init__(self, api: _Api) -> None:
        self.api = api
        self._jobs = RemoteJobs(api)

    @property
    def jobs(self) -> RemoteJobs:
        return self._jobs

    def run(self, op: Op, dataset: str | None = None, *, wait: bool = False) -> Any:
        where = f"/api/datasets/{quote(dataset, safe='')}" if dataset is not None else "/api"
        body = op.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        found = op.decode(self.api.call("POST", f"{where}/{op.name}", json=body))
        return finish(self.jobs, found, wait) if op.job else found


class RemoteWorkspace(Workspaces):
    """The workspace a running server holds, through its HTTP API."""

    def __init__(self, settings: Settings, info: ServerInfo) -> None:
        self.settings = settings
        self.info = info
        self.api = _Api(info)
        self.runner = RemoteRunner(self.api)

    def close(self) -> None:
        self.api.http.close()


def open_workspace(home: str | Path | None = None) -> Workspace | RemoteWorkspace:
    """The workspace under `home` (default: $VISOR_HOME or ./visor-data): through its running
    `visor serve` when there is one, else the store itself (created if needed). Both have the
    same methods."""
    from visor.config import get_settings

    settings = get_settings()
    if home is not None:
        settings = settings.model_copy(update={"home": Path(home)})
    server = find_server(settings.home)
    return RemoteWorkspace(settings, server) if server else Workspace(settings)


class Launched(str):
    """A running server's URL; shown as a link in Jupyter."""

    def _repr_html_(self) -> str:
        return f'<a href="{self}" target="_blank">Visor at {self}</a>'


def launch(port: int | None = None, home: str | Path | None = None, wait: float = 60) -> Launched:
    """The URL of the server for the workspace under `home`: the running one, else a new
    `visor serve` started in the background (on `port`, default VISOR_PORT, or a free port
    when that one is taken). What FiftyOne users know as `launch_app()`."""
    import socket
    import subprocess
    import sys

    from visor.config import get_settings

    settings = get_settings()
    if home is not None:
        settings = settings.model_copy(update={"home": Path(home)})
    running = find_server(settings.home)
    if running is not None:
        return Launched(running.url)
    if port is None:
        port = settings.port
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:  # taken: let the system pick one
                with socket.socket() as free:
                    free.bind(("127.0.0.1", 0))
                    port = int(free.getsockname()[1])
    log = settings.home / "server.log"
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "visor", "serve", "--port", str(port)],
            env={**os.environ, "VISOR_HOME": str(settings.home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the notebook's cell (and a Ctrl-C in it)
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise VisorError(f"visor serve stopped at once; its output is in {log}")
        found = find_server(settings.home)
        if found is not None:
            return Launched(found.url)
        time.sleep(0.2)
    raise VisorError(f"visor serve did not answer within {wait:.0f} s; its output is in {log}")
