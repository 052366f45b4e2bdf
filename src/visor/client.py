"""A workspace that a running `visor serve` holds: the same interface as `Workspace` and
`Dataset`, over the server's HTTP API.

DuckDB lets one process write a file. While `visor serve` runs it is that process, and says
where it listens in `$VISOR_HOME/server.json` (URL, pid, token; readable by its owner only).
`find_server` reads that file; the CLI and `visor.open()` then use `RemoteWorkspace`, so every
command runs the same code with or without a server, and its jobs run in the server.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from visor.config import Settings
from visor.errors import Conflict, InvalidInput, NotFound, VisorError
from visor.services.jobs import FINAL_STATES
from visor.services.views import filter_params
from visor.store.samples import SampleFilter

if TYPE_CHECKING:
    from visor.workspace import Workspace

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


class RemoteEvaluations:
    """`Evaluations`' interface (list, get, delete, cell) through a server."""

    def __init__(self, api: _Api, base: str) -> None:
        self.api = api
        self.base = base

    def list(self) -> list[dict[str, Any]]:
        return self.api.call("GET", self.base)

    def sample_counts(self, name: str) -> Any:
        """sample_id, tp, fp, fn, confused per evaluated sample (an Arrow table)."""
        import pyarrow as pa

        return pa.ipc.open_stream(self.api.call("GET", f"{self.base}/{name}/samples")).read_all()

    def get(self, name: str) -> dict[str, Any]:
        return self.api.call("GET", f"{self.base}/{name}")

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.get(name)

    def delete(self, name: str) -> None:
        self.api.call("DELETE", f"{self.base}/{name}")

    def cell(
        self, name: str, gt_class: str | None, pred_class: str | None, limit: int = 1000
    ) -> dict[str, Any]:
        params = {"gt_class": gt_class or "", "pred_class": pred_class or "", "limit": limit}
        return self.api.call("GET", f"{self.base}/{name}/cell", params=params)


class RemoteDataset:
    """`Dataset`'s interface for a dataset in a served workspace."""

    def __init__(self, workspace: RemoteWorkspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        self.api = workspace.api
        self.base = f"/api/datasets/{name}"

    def _finish(self, job: dict[str, Any], wait: bool) -> dict[str, Any]:
        if not wait:
            return job
        job = self.workspace.jobs.wait(job["id"])
        if job["state"] != "done":
            raise VisorError(job.get("error") or f"{job['kind']} job {job['state']}")
        return job

    def info(self) -> dict[str, Any]:
        return self.api.call("GET", self.base)

    @property
    def objects(self) -> RemoteObjects:
        return RemoteObjects(self)

    @property
    def edits(self) -> RemoteEdits:
        return RemoteEdits(self)

    @property
    def views(self) -> RemoteViews:
        return RemoteViews(self)

    def delete(self) -> None:
        self.api.call("DELETE", self.base)

    def embed(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        precision: str | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        recompute: bool = False,
        quality: bool = True,
        objects: bool = False,
        kind: str = "gt",
        source: str | None = None,
        ray: str | None = None,
        ray_actors: int | None = None,
        ray_gpus: float | None = None,
        staging: str | None = None,
        backend: str | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        body = {
            "objects": objects,
            "kind": kind,
            "source": source,
            "quality": quality,
            "model": model,
            "device": device,
            "precision": precision,
            "batch_size": batch_size,
            "workers": workers,
            "recompute": recompute,
            "ray": ray,
            "ray_actors": ray_actors,
            "ray_gpus": ray_gpus,
            "staging": staging,
            "backend": backend,
        }
        job = self.api.call("POST", f"{self.base}/embeddings/generate", json=body)
        return self._finish(job, wait)

    def embedding_status(self) -> dict[str, Any]:
        return self.api.call("GET", f"{self.base}/embeddings/status")

    def embeddings(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample ids (int64) and their vectors (float32), sent as NumPy arrays, not JSON."""
        params = {"model": model} if model else {}
        data = self.api.call("GET", f"{self.base}/embeddings/vectors", params=params)
        with np.load(io.BytesIO(data)) as found:
            return found["ids"], found["vectors"]

    def default_model(self) -> str:
        return str(self.embedding_status()["default_model"] or self._no_vectors())

    def _no_vectors(self) -> str:
        raise Conflict(
            f"dataset {self.name!r} has no vectors yet: run embed first (visor embed {self.name})"
        )

    def import_predictions(
        self,
        path: str,
        source: str,
        *,
        format: str | None = None,
        replace: bool = False,
        names: str | None = None,
        split: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "path": os.path.abspath(path),
            "source": source,
            "format": format,
            "replace": replace,
            "names": os.path.abspath(names) if names else None,
            "split": split,
        }
        return self.api.call("POST", f"{self.base}/predictions", json=body)

    def prediction_sources(self) -> dict[str, int]:
        return self.api.call("GET", f"{self.base}/predictions")

    def compute_quality(self, *, wait: bool = False) -> dict[str, Any]:
        return self._finish(self.api.call("POST", f"{self.base}/quality"), wait)

    def quality(self, examples: int = 12) -> dict[str, Any]:
        return self.api.call("GET", f"{self.base}/quality", params={"examples": examples})

    def labels(self, sample_id: int) -> list[dict[str, Any]]:
        return self.api.call("GET", f"{self.base}/samples/{sample_id}")["labels"]

    def thumbnail_bytes(self, sample_id: int) -> bytes | None:
        try:
            found = self.api.call("GET", f"{self.base}/samples/{sample_id}/thumbnail")
        except VisorError:
            return None
        return found if isinstance(found, bytes) else None

    def find_label_errors(self, model: str | None = None, *, wait: bool = False) -> dict[str, Any]:
        job = self.api.call("POST", f"{self.base}/label-errors", json={"model": model})
        return self._finish(job, wait)

    def export(
        self, out: str, format: str = "coco", *, wait: bool = False, **options: Any
    ) -> dict[str, Any]:
        """`Dataset.export` through the server: `out` is a folder the server writes."""
        filters = options.pop("filters", None)
        body: dict[str, Any] = {"out": out, "format": format, **options}  # view passes through
        if filters is not None:
            body["filters"] = filter_params(filters or SampleFilter())
            if filters.ids is not None:
                raise InvalidInput("an export through the server takes filters, not ids")
        for key in ("exclude_tags", "split_ratios"):
            if body.get(key) is not None:
                body[key] = list(body[key])
        return self._finish(self.api.call("POST", f"{self.base}/export", json=body), wait)

    def find_detection_label_errors(
        self, source: str, *, split: str | None = None, wait: bool = False
    ) -> dict[str, Any]:
        body = {"predictions": source, "split": split}
        job = self.api.call("POST", f"{self.base}/label-errors", json=body)
        return self._finish(job, wait)

    def label_errors(self, examples: int = 12) -> dict[str, Any] | None:
        return self.api.call("GET", f"{self.base}/label-errors", params={"examples": examples})

    def health(self, examples: int = 12) -> dict[str, Any]:
        return self.api.call("GET", f"{self.base}/health", params={"examples": examples})

    def evaluate(self, source: str, *, wait: bool = False, **options: Any) -> dict[str, Any]:
        body = {"source": source, **{k: v for k, v in options.items() if v is not None}}
        return self._finish(self.api.call("POST", f"{self.base}/evaluations", json=body), wait)

    @property
    def evaluations(self) -> RemoteEvaluations:
        return RemoteEvaluations(self.api, f"{self.base}/evaluations")

    def make_map(
        self,
        model: str | None = None,
        method: str = "umap",
        params: dict[str, Any] | None = None,
        *,
        uniqueness: bool = True,
        objects: bool = False,
        wait: bool = False,
    ) -> dict[str, Any]:
        body = {
            "model": model,
            "method": method,
            "params": params or {},
            "uniqueness": uniqueness,
            "objects": objects,
        }
        return self._finish(self.api.call("POST", f"{self.base}/maps", json=body), wait)

    def maps(self) -> list[dict[str, Any]]:
        return self.api.call("GET", f"{self.base}/maps")

    def find_duplicates(
        self,
        model: str | None = None,
        threshold: float | None = None,
        *,
        exact_only: bool = False,
        wait: bool = False,
    ) -> dict[str, Any]:
        body = {"model": model, "threshold": threshold, "exact_only": exact_only}
        return self._finish(self.api.call("POST", f"{self.base}/duplicates", json=body), wait)

    def duplicates(self, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        params = {"offset": offset, "limit": limit}
        return self.api.call("GET", f"{self.base}/duplicates", params=params)

    def compute_uniqueness(
        self, model: str | None = None, k: int = 5, *, wait: bool = False
    ) -> dict[str, Any]:
        job = self.api.call("POST", f"{self.base}/uniqueness", json={"model": model, "k": k})
        return self._finish(job, wait)

    def build_index(self, model: str | None = None, *, wait: bool = False) -> dict[str, Any]:
        return self._finish(
            self.api.call("POST", f"{self.base}/index", json={"model": model}), wait
        )

    def similar(
        self, sample_id: int, k: int = 20, model: str | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"k": k, **({"model": model} if model else {})}
        found = self.api.call("GET", f"{self.base}/samples/{sample_id}/similar", params=params)
        return found["neighbours"]

    def similar_to_image(
        self, data: bytes, name: str, k: int = 20, model: str | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"k": k, **({"model": model} if model else {})}
        found = self.api.call(
            "POST", f"{self.base}/similar", params=params, files={"file": (name, data)}
        )
        return found["neighbours"]

    def samples(
        self,
        filters: SampleFilter | None = None,
        *,
        offset: int = 0,
        limit: int = 100,
        sort: str = "id",
        descending: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """A page of samples matching `filters` (ids too: sent in the body, not the URL)."""
        wanted = filter_params(filters or SampleFilter())
        page = {
            "offset": offset,
            "limit": limit,
            "sort": sort,
            "order": "desc" if descending else "asc",
        }
        if filters is not None and filters.ids is not None:
            body = {**wanted, **page, "ids": [int(i) for i in filters.ids]}
            found = self.api.call("POST", f"{self.base}/samples/query", json=body)
        else:
            found = self.api.call("GET", f"{self.base}/samples", params={**wanted, **page})
        return found["total"], found["items"]

    def add_tags(self, ids: list[int], tags: list[str]) -> dict[str, Any]:
        return self.api.call("POST", f"{self.base}/tags", json={"ids": ids, "tags": tags})


class RemoteWorkspace:
    """`Workspace`'s interface for the workspace a running server holds."""

    def __init__(self, settings: Settings, info: ServerInfo) -> None:
        self.settings = settings
        self.info = info
        self.api = _Api(info)
        self.jobs = RemoteJobs(self.api)

    def close(self) -> None:
        self.api.http.close()

    def __enter__(self) -> RemoteWorkspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def datasets(self) -> list[dict[str, Any]]:
        return self.api.call("GET", "/api/datasets")

    def dataset(self, name: str) -> RemoteDataset:
        self.api.call("GET", f"/api/datasets/{name}")  # NotFound as the direct mode says it
        return RemoteDataset(self, name)

    def ingest(
        self,
        path: str,
        name: str,
        *,
        fmt: str | None = None,
        replace: bool = False,
        thumbnails: bool = False,
    ) -> dict[str, Any]:
        local = path if "://" in path else os.path.abspath(path)  # the server's cwd differs
        body = {
            "name": name,
            "path": local,
            "format": fmt,
            "replace": replace,
            "thumbnails": thumbnails,
        }
        return self.api.call("POST", "/api/datasets", json=body)


def open_workspace(home: str | Path | None = None) -> Workspace | RemoteWorkspace:
    """The workspace under `home` (default: $VISOR_HOME or ./visor-data): through its running
    `visor serve` when there is one, else the store itself (created if needed). Both have the
    same methods."""
    from visor.config import get_settings
    from visor.workspace import Workspace

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


class RemoteObjects:
    """`Objects`' interface (`ds.objects`) for a dataset in a served workspace."""

    def __init__(self, dataset: RemoteDataset) -> None:
        self._ds = dataset
        self.api = dataset.api
        self.base = f"{dataset.base}/objects"

    def status(self) -> list[dict[str, Any]]:
        return list(self.api.call("GET", self.base)["models"])

    def default_model(self) -> str:
        found = self.api.call("GET", self.base).get("default_model")
        if not found:
            raise Conflict(
                f"dataset {self._ds.name!r} has no box vectors yet: run "
                f"visor embed {self._ds.name} --objects"
            )
        return str(found)

    def skipped(self, model: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"model": model} if model else {})}
        return list(self.api.call("GET", f"{self.base}/skipped", params=params))

    def box(self, label_id: int) -> dict[str, Any]:
        return dict(self.api.call("GET", f"{self.base}/{label_id}"))

    def similar(self, label_id: int, k: int = 20, model: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"k": k, **({"model": model} if model else {})}
        found = self.api.call("GET", f"{self.base}/{label_id}/similar", params=params)
        return list(found["neighbours"])

    def analyse(
        self, model: str | None = None, threshold: float | None = None, *, wait: bool = False
    ) -> dict[str, Any]:
        body = {"model": model, "threshold": threshold}
        return self._ds._finish(self.api.call("POST", f"{self.base}/analysis", json=body), wait)

    def report(self, examples: int = 12) -> dict[str, Any] | None:
        return self.api.call("GET", self.base).get("analysis")


class RemoteEdits:
    """`Edits`' interface (`ds.edits`) for a dataset in a served workspace."""

    def __init__(self, dataset: RemoteDataset) -> None:
        self.api = dataset.api
        self.base = f"{dataset.base}/edits"

    def apply(self, changes: list[dict[str, Any]], *, who: str | None = None) -> dict[str, Any]:
        return dict(self.api.call("POST", self.base, json={"changes": changes, "who": who}))

    def set_class(self, label_id: int, cls: str, *, who: str | None = None) -> dict[str, Any]:
        return self.apply([{"action": "set_class", "label_id": label_id, "class": cls}], who=who)

    def delete(self, label_id: int, *, who: str | None = None) -> dict[str, Any]:
        return self.apply([{"action": "delete", "label_id": label_id}], who=who)

    def add(
        self, sample_id: int, cls: str, box: Any = None, *, who: str | None = None
    ) -> dict[str, Any]:
        change = {"action": "add", "sample_id": sample_id, "class": cls, "box": box}
        return self.apply([change], who=who)

    def set_image_class(self, sample_id: int, cls: str, *, who: str | None = None) -> dict:
        change = {"action": "set_image_class", "sample_id": sample_id, "class": cls}
        return self.apply([change], who=who)

    def exclude(self, sample_id: int, *, exclude: bool = True, who: str | None = None) -> dict:
        action = "exclude" if exclude else "include"
        return self.apply([{"action": action, "sample_id": sample_id}], who=who)

    def relabel(
        self, from_class: str, to_class: str, sample_ids: Any = None, *, who: str | None = None
    ) -> dict[str, Any]:
        ids = None if sample_ids is None else [int(i) for i in sample_ids]
        body = {"relabel": {"from_class": from_class, "to_class": to_class, "ids": ids}, "who": who}
        return dict(self.api.call("POST", self.base, json=body))

    def accept_suggestions(self, label_ids: Any, *, who: str | None = None) -> dict[str, Any]:
        body = {"accept": [int(i) for i in label_ids], "who": who}
        return dict(self.api.call("POST", self.base, json=body))

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.api.call("GET", self.base, params={"limit": limit}))

    def batch(self, batch: int) -> list[dict[str, Any]]:
        return list(self.api.call("GET", f"{self.base}/{batch}"))

    def undo(self) -> dict[str, Any]:
        return dict(self.api.call("POST", f"{self.base}/undo"))

    def redo(self) -> dict[str, Any]:
        return dict(self.api.call("POST", f"{self.base}/redo"))

    def revert(self, batch: int) -> dict[str, Any]:
        return dict(self.api.call("POST", f"{self.base}/{batch}/revert"))


class RemoteViews:
    """`Views`' interface (`ds.views`) for a dataset in a served workspace."""

    def __init__(self, dataset: RemoteDataset) -> None:
        self.api = dataset.api
        self.base = f"{dataset.base}/views"

    def save(
        self,
        name: str,
        *,
        filters: SampleFilter | dict[str, Any] | None = None,
        selection: str | None = None,
        sort: str = "id",
        order: str = "asc",
        ui: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params = filters if isinstance(filters, dict) else filter_params(filters or SampleFilter())
        body = {"filters": params, "selection": selection, "sort": sort, "order": order,
                "ui": ui or {}}  # fmt: skip
        return dict(self.api.call("PUT", f"{self.base}/{name}", json=body))

    def list(self) -> list[dict[str, Any]]:
        return list(self.api.call("GET", self.base))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.api.call("GET", f"{self.base}/{name}"))

    def delete(self, name: str) -> None:
        self.api.call("DELETE", f"{self.base}/{name}")
