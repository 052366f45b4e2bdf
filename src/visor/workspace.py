"""The Python API: `visor.open()` gives a workspace; `workspace.dataset(name)` a `Dataset`.

`Workspace` holds the store in this process (the store's one writer); `RemoteWorkspace`
(`visor.client`) reaches the one a running `visor serve` holds. Both are `Workspaces`: the
same methods, each building an operation for their runner.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from visor import ops
from visor.config import Settings, get_settings
from visor.dataset import Dataset
from visor.errors import VisorError
from visor.ops.base import Engine, make
from visor.ops.runner import LocalRunner, Runner
from visor.services import maps as map_service
from visor.services.changes import Changes
from visor.services.jobs import JobRunner
from visor.store import Store
from visor.store import datasets as dataset_rows
from visor.store.db import default_memory_limit

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("visor")


class Workspaces:
    """What a workspace offers in every mode: its datasets, ingest, read-only SQL."""

    settings: Settings
    runner: Runner

    @property
    def jobs(self) -> Any:
        """The jobs: get(id), list(dataset, kind), cancel(id), wait(id)."""
        return self.runner.jobs

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Workspaces:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset, with its samples per split, vectors per model and number of maps."""
        return self.runner.run(ops.Datasets())

    def dataset(self, name: str) -> Dataset:
        """The dataset `name` (NotFound naming it when there is none)."""
        return Dataset(self.runner, self.runner.run(ops.Find(), name))

    def ingest(
        self,
        root: str,
        name: str,
        *,
        fmt: str | None = None,
        replace: bool = False,
        thumbnails: bool = False,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Start ingesting `root` as `name`; returns the job. With `thumbnails`, every
        thumbnail is made during the job instead of on first request."""
        op = make(ops.Ingest, path=str(root), name=name, format=fmt, replace=replace,
                  thumbnails=thumbnails)  # fmt: skip
        return self.runner.run(op, wait=wait)

    def demo(
        self,
        images: int = 2000,
        name: str = "demo",
        *,
        model: str | None = None,
        fresh: bool = False,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Start building the demo (synthetic shapes under home: ingested, embedded, mapped,
        deduplicated; one job); returns the job. A finished one is left as it is."""
        return self.runner.run(make(ops.Demo, images=images, name=name, model=model,
                                    fresh=fresh), wait=wait)  # fmt: skip

    def inspect(self, root: str) -> dict[str, Any]:
        """The format an ingest of `root` would detect, and its number of images."""
        return self.runner.run(make(ops.Inspect, path=str(root)))

    def models(self) -> dict[str, Any]:
        """The embedding models known by name and those loaded; the backend this machine's
        CPU runs them on (a server's, through one), its int8 path, and what auto measured."""
        return self.runner.run(ops.Models())

    def sql(self, query: str) -> pa.Table:
        """The result of one read-only SELECT over the store (DuckDB), as an Arrow table;
        any other statement is refused."""
        return self.runner.run(make(ops.Sql, query=query))


class Workspace(Workspaces):
    """The store (one DuckDB file under `home`) and the job runner that works on it."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        memory = self.settings.db_memory or default_memory_limit()
        self.store = Store(self.settings.db_path, memory_limit=memory)
        changes = Changes()
        jobs = JobRunner(
            self.store,
            workers=self.settings.job_workers,
            on_end=lambda job: changes.record(job.dataset, f"{job.kind} {job.state}"),
        )
        self.engine = Engine(self.store, self.settings, jobs, changes)
        self.local = LocalRunner(self.engine)
        self.runner = self.local

    @property
    def changes(self) -> Changes:
        return self.engine.changes

    @property
    def serving(self) -> bool:
        return self.engine.serving

    @serving.setter
    def serving(self, value: bool) -> None:
        self.engine.serving = value

    def close(self) -> None:
        self.engine.jobs.shutdown()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def context(self, name: str) -> ops.Context:
        """What this process holds for dataset `name` (the HTTP routes' binary reads)."""
        return self.local.context(name)

    def warm_points(self) -> None:
        """Encode every dataset's default map's points now, so that the first page to show a
        map does not wait for it (a server calls this at start, in the background)."""
        for row in dataset_rows.list_datasets(self.store):
            try:
                map_service.cached_points(self.store, self.engine.points, row, None)
            except VisorError as e:  # no map, or deleted meanwhile: the page will say
                log.info("map points of %s not encoded ahead: %s", row["name"], e.message)
