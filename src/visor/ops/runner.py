"""Running operations in this process: check, then run at once (quick ones) or as a job.

`finish` is the one rule for `wait=True` in every mode: the finished job, or `JobFailed`
with the job's message when it failed or was cancelled.
"""

from __future__ import annotations

from typing import Any, Protocol

from visor.errors import NotFound
from visor.ops.base import Context, Engine, JobFailed, Op
from visor.services.jobs import JobContext, JobRunner
from visor.store import datasets as dataset_rows


class Jobs(Protocol):
    def get(self, job_id: str) -> dict[str, Any]: ...
    def list(self, dataset: str | None = None, kind: str | None = None) -> list[dict[str, Any]]: ...
    def cancel(self, job_id: str) -> dict[str, Any]: ...
    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]: ...


class Runner(Protocol):
    """What runs an operation: `LocalRunner` here, the client's over a server's HTTP API."""

    @property
    def jobs(self) -> Jobs: ...

    def run(self, op: Op, dataset: str | None = None, *, wait: bool = False) -> Any: ...


def finish(jobs: Jobs, job: dict[str, Any], wait: bool) -> dict[str, Any]:
    """The job as submitted, or with `wait` as it ended; JobFailed unless it is done."""
    if not wait:
        return job
    job = jobs.wait(job["id"])
    if job["state"] != "done":
        raise JobFailed(job)
    return job


class LocalRunner:
    """Runs operations on the engine of this process (the store's one writer)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def jobs(self) -> JobRunner:
        return self.engine.jobs

    def context(self, dataset: str | None) -> Context:
        if dataset is None:
            return Context(self.engine, None, self)
        row = dataset_rows.get_by_name(self.engine.store, dataset)
        if row is None:
            raise NotFound(f"dataset {dataset!r} not found")
        return Context(self.engine, row, self)

    def run(self, op: Op, dataset: str | None = None, *, wait: bool = False) -> Any:
        """A quick operation's result, or a job operation's job (see `finish`)."""
        ctx = self.context(dataset)
        checked = op.check(ctx)
        if not checked.job:
            return checked.run(ctx, None)

        def work(job: JobContext) -> Any:
            result = checked.run(ctx, job)
            job.job.message = checked.summary(result) or job.job.message
            return result

        job = self.jobs.submit(
            checked.name,
            checked.job_dataset(dataset),
            checked.job_params(),
            work,
            key=checked.key(),
        )
        return finish(self.jobs, job.to_dict(), wait)
