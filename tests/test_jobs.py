"""Jobs: one at a time per kind and dataset, cancellable, and marked interrupted after a crash."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from visor.services.jobs import JobContext, JobRunner
from visor.store import Store


def _until_cancelled(started: threading.Event):
    def run(ctx: JobContext) -> dict:
        started.set()
        done = 0
        while True:
            done += 1
            ctx.progress(done, total=1_000_000, message="working")
            ctx.check_cancelled()
            time.sleep(0.01)

    return run


def test_same_work_twice_returns_the_running_job_and_cancel_stops_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    runner = JobRunner(store)
    started = threading.Event()
    first = runner.submit("embed", "ds", {}, _until_cancelled(started))
    assert started.wait(10)
    second = runner.submit("embed", "ds", {}, _until_cancelled(threading.Event()))
    assert second.id == first.id
    other = runner.submit("embed", "other", {}, lambda ctx: {"ok": True})
    assert runner.wait(other.id, timeout=10)["state"] == "done"
    runner.cancel(first.id)
    job = runner.wait(first.id, timeout=10)
    assert job["state"] == "cancelled" and job["done"] > 0
    runner.shutdown()
    store.close()


def test_failed_job_keeps_its_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    runner = JobRunner(store)

    def boom(ctx: JobContext) -> None:
        raise ValueError("bad thing")

    job = runner.wait(runner.submit("x", None, {}, boom).id, timeout=10)
    assert job["state"] == "failed" and "ValueError: bad thing" in job["error"]
    runner.shutdown()
    store.close()


def test_a_job_that_ends_in_a_phase_is_not_listed_as_still_in_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    runner = JobRunner(store)

    def phases(last: str | None):
        def run(ctx: JobContext) -> dict:
            ctx.phase("reading")
            ctx.phase("writing results")
            if last is not None:
                ctx.job.message = last
            return {}

        return run

    left = runner.wait(runner.submit("a", None, {}, phases(None)).id, timeout=10)
    said = runner.wait(runner.submit("b", None, {}, phases("wrote 3 rows")).id, timeout=10)
    assert (left["message"], said["message"]) == ("done", "wrote 3 rows")
    runner.shutdown()
    store.close()


def test_jobs_left_running_are_interrupted_on_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    store.cursor().execute(
        "INSERT INTO jobs (id, kind, dataset, state, done, total) "
        "VALUES ('j1', 'embed', 'ds', 'running', 5, 10)"
    )
    runner = JobRunner(store)
    job = runner.get("j1")
    assert job["state"] == "interrupted" and job["done"] == 5
    runner.shutdown()
    store.close()
