"""The embed job on a Ray cluster (`visor embed NAME --ray ADDRESS`): the samples still
without a vector go to Ray Data (`embedding/distributed.py`), whose actors write Parquet
shards to a staging folder; each shard is loaded into the store in one transaction as it is
reported, then removed. Resumable like the local job: shards left by a stopped run are
loaded first, samples that have a vector are never sent, and a sample never gets two."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from visor.embedding import distributed
from visor.embedding.models import load_model
from visor.errors import InvalidInput, VisorError
from visor.services.jobs import JobContext
from visor.sources import Source, filesystem
from visor.store import Store
from visor.store import embeddings as vector_rows

if TYPE_CHECKING:
    from visor.services.embed import EmbedOptions

log = logging.getLogger("visor.ray")
REPORT_LIMIT = 100
# Environment the workers need to read the same buckets the driver reads.
_FORWARDED = re.compile(r"^(VISOR_|AWS_|GOOGLE_|GCS_|STORAGE_EMULATOR_HOST)")
DECODE_TASKS_ENV = "VISOR_RAY_DECODE_TASKS"
INSTALL_HINT = "Ray is not installed: pip install 'visor[ray]' (or pip install 'ray[data]')"


def ray_module() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise InvalidInput(INSTALL_HINT) from None
    return ray


def default_staging(home: str, dataset_id: int, model: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
    return os.path.join(home, "staging", f"dataset-{dataset_id}", slug)


def embed_on_ray(
    store: Store,
    ctx: JobContext,
    dataset: dict[str, Any],
    source: Source,
    options: EmbedOptions,
    staging: str,
) -> dict[str, Any]:
    """Run the embed job for `dataset` on the Ray cluster at `options.ray` ("local" starts
    one for the job; "auto" or "ray://host:port" joins a running one)."""
    ray = ray_module()
    ctx.phase(f"loading {options.model} on {options.device}")
    embedder = load_model(options.model, options.device, options.precision)
    vector_rows.ensure_model(store, embedder.name, embedder.dim)
    dataset_id = int(dataset["id"])
    fs, folder = filesystem(staging)
    vector_rows.clear_errors(store, dataset_id, embedder.name)
    tally = _Tally()
    left = distributed.list_shards(fs, folder)
    if left:
        ctx.phase(f"loading {len(left)} shards left by an earlier run")
        for path in left:
            _load(store, fs, path, dataset_id, embedder.name, embedder.dim, tally)
    todo = vector_rows.missing(store, dataset_id, embedder.name, embedder.dim)
    already = int(dataset["num_samples"]) - len(todo)
    result: dict[str, Any] = {
        "model": embedder.name,
        "dim": embedder.dim,
        "device": embedder.device,
        "precision": embedder.precision,
        "ray": options.ray,
        "staging": staging,
        "skipped_existing": already - tally.embedded,
        "recovered_from_shards": tally.embedded,
    }
    started = time.monotonic()
    if todo:
        assert options.batch_size is not None
        rows = pa.table(
            {
                "sample_id": pa.array([k for k, _ in todo], pa.int64()),
                "path": pa.array([p for _, p in todo], pa.string()),
            }
        )
        ctx.phase(f"starting on Ray ({options.ray})")
        started_here = _connect(ray, options.ray or "local")
        try:
            actors = options.ray_actors or 1
            gpus = options.ray_gpus or 0.0
            # GPU actors hold one core each, with decoding on CPU tasks beside them; a CPU
            # actor holds its share of the cluster's cores and decodes its own batches, unless
            # VISOR_RAY_DECODE_TASKS asks for tasks (then it leaves them a core).
            tasks = bool(gpus) or os.environ.get(DECODE_TASKS_ENV, "") not in ("", "0")
            share = float(ray.cluster_resources().get("CPU", 1)) / actors
            cpus = 1.0 if gpus else max(1.0, share - 1 if tasks else share)
            plan = distributed.RayPlan(
                root=source.uri,
                model=embedder.name,
                device=embedder.device,
                precision=embedder.precision,
                batch_size=options.batch_size,
                staging=staging,
                actors=actors,
                gpus_per_actor=gpus,
                cpus_per_actor=cpus,
                decode_tasks=tasks,
                threads=None if gpus else int(cpus),
                preprocessing=embedder.preprocessing,
            )
            ctx.phase(f"embedding with {embedder.name} on Ray ({options.ray})", total=len(todo))
            done = 0
            first_shard: float | None = None
            for shard in distributed.run(plan, rows):
                path = f"{folder}/{shard['shard']}"
                done += _load(store, fs, path, dataset_id, embedder.name, embedder.dim, tally)
                if first_shard is None:
                    first_shard = time.monotonic() - started
                    result["first_shard_s"] = round(first_shard, 2)
                    result["_first_done"] = done
                ctx.progress(min(done, len(todo)))
                ctx.check_cancelled()
        finally:
            if started_here:
                ray.shutdown()  # stops the cluster's tasks and actors with it
    elapsed = time.monotonic() - started
    ctx.job.message = f"embedded {tally.embedded} images on Ray" + (
        f"; {tally.failed} unreadable" if tally.failed else ""
    )
    result.update(
        embedded=tally.embedded,
        failed_count=tally.failed,
        failed=tally.failures,
        seconds=round(elapsed, 2),
        images_per_s=round(len(todo) / elapsed, 2) if todo and elapsed > 0 else None,
        # after the first shard: the rate once the cluster, workers and model are up
        steady_images_per_s=_steady(result, len(todo), elapsed),
        quality=None,
    )
    return result


def _steady(result: dict[str, Any], total: int, elapsed: float) -> float | None:
    first = result.get("first_shard_s")
    done_first = result.pop("_first_done", None)
    if first is None or done_first is None or elapsed - first <= 0 or total <= done_first:
        return None
    return round((total - done_first) / (elapsed - first), 2)


class _Tally:
    def __init__(self) -> None:
        self.embedded = 0
        self.failed = 0
        self.failures: list[dict[str, Any]] = []


def _connect(ray: Any, address: str) -> bool:
    """Connect to the cluster; True where this job started (and so stops) the connection."""
    if ray.is_initialized():
        return False
    env = {k: v for k, v in os.environ.items() if _FORWARDED.match(k)}
    try:
        ray.init(
            address=None if address == "local" else address,
            runtime_env={"env_vars": env} if env else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except Exception as e:  # Ray raises many kinds for "no cluster there"
        raise VisorError(f"cannot reach the Ray cluster at {address}: {e}") from None
    return True


def _load(
    store: Store, fs: Any, path: str, dataset_id: int, model: str, dim: int, tally: _Tally
) -> int:
    """One shard into the store in one transaction (its vectors, less those of samples that
    have one already; its failures), then removed. Returns the number of images it held."""
    try:
        table = distributed.read_shard(fs, path)
    except Exception as e:  # not a whole Parquet file: its images are embedded again
        log.warning("%s: unreadable shard removed (%s)", path, e)
        fs.rm(path)
        return 0
    if len(table) and table.column("model")[0].as_py() != model:
        raise VisorError(f"{path}: a shard of {table.column('model')[0]} in {model}'s folder")
    ids = table.column("sample_id").to_numpy()
    errors = table.column("error").to_pylist()
    ok = np.asarray([e is None for e in errors], dtype=bool)
    have = vector_rows.present(store, dataset_id, model, dim, ids)
    keep = ok & ~have
    good = table.filter(pa.array(keep))
    vectors = np.asarray(good.column("vector").to_pylist(), dtype=np.float32).reshape(-1, dim)
    failed = [(int(i), str(e)) for i, e, h in zip(ids, errors, have, strict=True) if e and not h]
    vector_rows.write_batch(
        store, dataset_id, model, ids[keep], vectors, failed, job_id=None, replace=False
    )
    fs.rm(path)
    tally.embedded += int(keep.sum())
    tally.failed += len(failed)
    for key, reason in failed:
        if len(tally.failures) < REPORT_LIMIT:
            tally.failures.append({"sample_id": key, "reason": reason})
    return len(ids)
