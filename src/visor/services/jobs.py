"""Jobs: long work run on a small thread pool, with progress kept in memory and in the store.

A job row survives restarts: jobs left `running` by a process that died become `interrupted`
when the store is next opened by a runner, and can be started again, skipping finished work.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from visor.errors import NotFound, VisorError
from visor.store import Store
from visor.store import jobs as job_rows

log = logging.getLogger("visor.jobs")

FINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})
_PERSIST_EVERY_S = 1.0


class JobCancelled(Exception):
    """Raised inside a job when it has been asked to stop."""


@dataclass
class Job:
    id: str
    kind: str
    dataset: str | None
    params: dict[str, Any]
    state: str = "queued"
    done: int = 0
    total: int | None = None
    message: str = ""
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    rate: float | None = None  # items per second, smoothed
    key: str = ""  # what makes two jobs of a kind on a dataset the same job

    @property
    def eta(self) -> float | None:
        if self.state != "running" or not self.rate or self.total is None:
            return None
        return max(self.total - self.done, 0) / self.rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "dataset": self.dataset,
            "params": self.params,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "message": self.message,
            "error": self.error,
            "result": self.result,
            "rate": round(self.rate, 2) if self.rate else None,
            "eta": round(self.eta, 1) if self.eta is not None else None,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


JobFunction = Callable[["JobContext"], dict[str, Any] | None]


class JobContext:
    """What a running job sees: report progress, and notice when asked to stop."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self._runner = runner
        self.job = job
        self._cancel = threading.Event()
        self._last_persist = 0.0
        self._rate_mark: tuple[float, int] | None = None
        self.phase_message: str | None = None  # the last phase's, to know one left behind

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        job = self.job
        now = time.monotonic()
        if self._rate_mark is None or done < job.done:
            self._rate_mark = (now, done)
        else:
            t0, d0 = self._rate_mark
            if now - t0 >= 0.5:
                instant = (done - d0) / (now - t0)
                job.rate = instant if job.rate is None else 0.7 * job.rate + 0.3 * instant
                self._rate_mark = (now, done)
        job.done = done
        if total is not None:
            job.total = total
        if message is not None:
            job.message = message
        if now - self._last_persist >= _PERSIST_EVERY_S:
            self._last_persist = now
            self._runner._persist(job)

    def phase(self, message: str, total: int | None = None) -> None:
        """Start a new phase of the work: resets the counter and rate."""
        self.job.rate = None
        self._rate_mark = None
        self.job.done = 0
        self.job.total = total
        self.job.message = self.phase_message = message
        self._runner._persist(self.job)


class JobRunner:
    """Runs jobs on a thread pool. One per process; shared by the API, CLI and Python API."""

    def __init__(
        self, store: Store, workers: int = 2, on_end: Callable[[Job], None] | None = None
    ) -> None:
        self.store = store
        self._on_end = on_end
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="visor-job")
        self._lock = threading.Lock()
        self._live: dict[str, JobContext] = {}
        self._finished = threading.Condition(self._lock)
        interrupted = job_rows.mark_interrupted(store)
        if interrupted:
            log.warning(
                "%d job(s) were interrupted by a restart: %s",
                len(interrupted),
                ", ".join(interrupted),
            )

    def submit(
        self,
        kind: str,
        dataset: str | None,
        params: dict[str, Any],
        fn: JobFunction,
        *,
        total: int | None = None,
        key: str = "",
    ) -> Job:
        """Queue `fn`; if a job of the same kind and `key` (e.g. the model) is already queued
        or running on the dataset, return that job instead of starting a second."""
        with self._lock:
            for ctx in self._live.values():
                job = ctx.job
                if (
                    job.kind == kind
                    and job.dataset == dataset
                    and job.key == key
                    and job.state in ("queued", "running")
                ):
                    return job
            job = Job(
                id=uuid.uuid4().hex[:12],
                kind=kind,
                dataset=dataset,
                params=params,
                total=total,
                key=key,
            )
            ctx = JobContext(self, job)
            self._live[job.id] = ctx
        job_rows.insert(self.store, job.to_dict())
        self._pool.submit(self._run, ctx, fn)
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        ctx = self._live.get(job_id)
        if ctx is not None:
            return ctx.job.to_dict()
        row = job_rows.get(self.store, job_id)
        if row is None:
            raise NotFound(f"job {job_id!r} not found")
        return row

    def list(self, dataset: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        rows = job_rows.list_jobs(self.store, dataset=dataset, kind=kind)
        return [self._live[r["id"]].job.to_dict() if r["id"] in self._live else r for r in rows]

    def cancel(self, job_id: str) -> dict[str, Any]:
        ctx = self._live.get(job_id)
        if ctx is None:
            return self.get(job_id)  # already finished (or unknown: NotFound)
        ctx._cancel.set()
        if ctx.job.state == "queued":
            ctx.job.message = "cancelling"
        return ctx.job.to_dict()

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._finished:
            while job_id in self._live and self._live[job_id].job.state not in FINAL_STATES:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._finished.wait(remaining if remaining is not None else 0.5)
        return self.get(job_id)

    def shutdown(self, cancel_running: bool = True) -> None:
        if cancel_running:
            for ctx in list(self._live.values()):
                ctx._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- internals ----------------------------------------------------------------------

    def _persist(self, job: Job) -> None:
        try:
            job_rows.update(self.store, job.to_dict())
        except Exception:  # progress is best-effort; the final state is written again
            log.exception("could not save progress of job %s", job.id)

    def _run(self, ctx: JobContext, fn: JobFunction) -> None:
        job = ctx.job
        try:
            if ctx.cancelled:
                raise JobCancelled
            job.state = "running"
            job.started_at = time.time()
            self._persist(job)
            job.result = fn(ctx)
            job.state = "done"
            if not job.message or job.message == ctx.phase_message:  # "writing results": over
                job.message = "done"
        except JobCancelled:
            job.state = "cancelled"
            job.message = "cancelled; finished work was kept"
        except VisorError as e:
            job.state = "failed"
            job.error = e.message
            job.message = e.message
        except Exception as e:
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())
            job.state = "failed"
            job.error = f"internal error: {type(e).__name__}: {e}"
            job.message = job.error
        job.finished_at = time.time()
        job.rate = None
        self._persist(job)
        with self._finished:
            self._live.pop(job.id, None)
            self._finished.notify_all()
        if self._on_end is not None:
            self._on_end(job)
