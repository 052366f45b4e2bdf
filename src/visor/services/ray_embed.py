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
from visor.embedding.crops import box_problem
from visor.embedding.models import load_model
from visor.errors import InvalidInput, VisorError
from visor.services.jobs import JobContext
from visor.sources import Source, filesystem
from visor.store import Store
from visor.store import embeddings as vector_rows
from visor.store import objects as object_rows

if TYPE_CHECKING:
    from visor.services.embed import EmbedParams

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


def default_staging(home: str, dataset_id: int, model: str, boxes: str | None = None) -> str:
    """`home/staging/dataset-<id>/<model>[-boxes-<kind>[-<source>]]`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model + (f"-boxes-{boxes}" if boxes else ""))
    return os.path.join(home, "staging", f"dataset-{dataset_id}", slug)


def embed_on_ray(
    store: Store,
    ctx: JobContext,
    dataset: dict[str, Any],
    source: Source,
    options: EmbedParams,
    staging: str,
) -> dict[str, Any]:
    """Run the embed job for `dataset` on the Ray cluster at `options.ray` ("local" starts
    one for the job; "auto" or "ray://host:port" joins a running one)."""
    ray = ray_module()
    ctx.phase(f"loading {options.model} on {options.device}")
    # The driver needs the model's name, size and preprocessing: its copy runs on PyTorch
    # (fp32 for an int8 job); the actors run the job's backend and precision.
    driver_precision = "fp32" if options.precision == "int8" else options.precision
    embedder = load_model(str(options.model), options.device, driver_precision)
    precision = "int8" if options.precision == "int8" else embedder.precision
    vector_rows.ensure_model(store, embedder.name, embedder.dim)
    fs, folder = filesystem(staging)
    tally = _Tally()
    target: _Images | _Boxes
    if options.objects:
        target = _Boxes(store, dataset, embedder.name, embedder.dim, options, tally)
    else:
        target = _Images(store, dataset, embedder.name, embedder.dim, tally)
    left = distributed.list_shards(fs, folder)
    if left:
        ctx.phase(f"loading {len(left)} shards left by an earlier run")
        for path in left:
            _load(fs, path, embedder.name, target)
    recovered = tally.embedded
    rows, already = target.todo(ctx.job.id)
    todo = len(rows) if not options.objects else sum(len(r) for r in rows.column("region_ids"))
    result: dict[str, Any] = {
        "model": embedder.name,
        "dim": embedder.dim,
        "device": embedder.device,
        "precision": precision,
        "backend": options.backend,
        "ray": options.ray,
        "staging": staging,
        "skipped_existing": already - recovered,
        "recovered_from_shards": recovered,
        **target.about(),
    }
    started = time.monotonic()
    first_shard: tuple[float, int] | None = None  # (seconds to it, items done with it)
    if todo:
        assert options.batch_size is not None
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
                precision=precision,
                batch_size=options.batch_size,
                staging=staging,
                actors=actors,
                gpus_per_actor=gpus,
                cpus_per_actor=cpus,
                decode_tasks=tasks,
                threads=None if gpus else int(cpus),
                preprocessing=embedder.preprocessing,
                backend=options.backend or "torch",
                # a cluster of this machine shares its home; another node uses its own
                cache_dir=options.cache_dir if options.ray == "local" else None,
            )
            what = "boxes" if options.objects else "images"
            ctx.phase(f"embedding {what} with {embedder.name} on Ray ({options.ray})", total=todo)
            done = 0
            for shard in distributed.run(plan, rows):
                path = f"{folder}/{shard['shard']}"
                done += _load(fs, path, embedder.name, target)
                if first_shard is None:
                    first_shard = (time.monotonic() - started, done)
                    result["first_shard_s"] = round(first_shard[0], 2)
                ctx.progress(min(done, todo))
                ctx.check_cancelled()
        finally:
            if started_here:
                ray.shutdown()  # stops the cluster's tasks and actors with it
                _collect_stale_refs()
    elapsed = time.monotonic() - started
    what = "boxes" if options.objects else "images"
    result.update(
        embedded=tally.embedded,
        failed_count=tally.failed,
        failed=tally.failures,
        seconds=round(elapsed, 2),
        images_per_s=round(todo / elapsed, 2) if todo and elapsed > 0 else None,
        # after the first shard: the rate once the cluster, workers and model are up
        steady_images_per_s=_steady(first_shard, todo, elapsed),
        quality=None,
    )
    return result


def _steady(first_shard: tuple[float, int] | None, total: int, elapsed: float) -> float | None:
    if first_shard is None:
        return None
    seconds, done = first_shard
    if elapsed - seconds <= 0 or total <= done:
        return None
    return round((total - done) / (elapsed - seconds), 2)


class _Tally:
    def __init__(self) -> None:
        self.embedded = 0
        self.failed = 0
        self.failures: list[dict[str, Any]] = []

    def add(self, embedded: int, failures: list[dict[str, Any]]) -> None:
        self.embedded += embedded
        self.failed += len(failures)
        self.failures.extend(failures[: max(0, REPORT_LIMIT - len(self.failures))])


def _collect_stale_refs() -> None:
    """Collects the object references a finished job left in garbage cycles while no
    cluster is connected. Every session numbers its objects alike (a driver's first put has
    the same id in each), so a reference of the previous session collected during the next
    one released the new session's object of that id: its next user failed with "owner
    unknown" (a server process that ran several Ray jobs)."""
    import gc

    gc.collect()


def _connect(ray: Any, address: str) -> bool:
    """Connect to the cluster; True where this job started (and so stops) the connection."""
    if ray.is_initialized():
        return False
    _collect_stale_refs()
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


def _load(fs: Any, path: str, model: str, target: _Images | _Boxes) -> int:
    """One shard into the store in one transaction, then removed. Returns the number of
    model inputs (images or boxes) it held."""
    try:
        table = distributed.read_shard(fs, path)
    except Exception as e:  # not a whole Parquet file: its inputs are embedded again
        log.warning("%s: unreadable shard removed (%s)", path, e)
        fs.rm(path)
        return 0
    if len(table) and table.column("model")[0].as_py() != model:
        raise VisorError(f"{path}: a shard of {table.column('model')[0]} in {model}'s folder")
    target.write(table)
    fs.rm(path)
    return len(table)


def _vectors(table: pa.Table, keep: np.ndarray, dim: int) -> np.ndarray:
    values = table.filter(pa.array(keep)).column("vector").combine_chunks().flatten()
    return values.to_numpy().astype(np.float32, copy=False).reshape(-1, dim)


class _Images:
    """The dataset's images: vectors in `embeddings_<dim>`."""

    def __init__(
        self, store: Store, dataset: dict[str, Any], model: str, dim: int, tally: _Tally
    ) -> None:
        self.store, self.dataset_id, self.model, self.dim = store, int(dataset["id"]), model, dim
        self.num_samples = int(dataset["num_samples"])
        self.tally = tally
        vector_rows.clear_errors(store, self.dataset_id, model)

    def about(self) -> dict[str, Any]:
        return {}

    def todo(self, job_id: str | None) -> tuple[pa.Table, int]:
        """The rows to send, and how many images have a vector already."""
        missing = vector_rows.missing(self.store, self.dataset_id, self.model, self.dim)
        rows = pa.table(
            {
                "sample_id": pa.array([k for k, _ in missing], pa.int64()),
                "path": pa.array([p for _, p in missing], pa.string()),
            }
        )
        return rows, self.num_samples - len(missing)

    def write(self, table: pa.Table) -> None:
        """A shard's vectors, less those of samples that have one already; its failures."""
        ids = table.column("sample_id").to_numpy()
        errors = table.column("error").to_pylist()
        have = vector_rows.present(self.store, self.dataset_id, self.model, self.dim, ids)
        keep = np.asarray([e is None for e in errors], dtype=bool) & ~have
        failed = [
            (int(i), str(e)) for i, e, h in zip(ids, errors, have, strict=True) if e and not h
        ]
        vectors = _vectors(table, keep, self.dim)
        vector_rows.write_batch(
            self.store, self.dataset_id, self.model, ids[keep], vectors, failed,
            job_id=None, replace=False,
        )  # fmt: skip
        self.tally.add(int(keep.sum()), [{"sample_id": k, "reason": r} for k, r in failed])


class _Boxes:
    """The dataset's boxes of a kind (and prediction source): vectors in
    `object_embeddings_<dim>`, each box a crop of its image."""

    def __init__(
        self,
        store: Store,
        dataset: dict[str, Any],
        model: str,
        dim: int,
        options: EmbedParams,
        tally: _Tally,
    ) -> None:
        self.store, self.dataset_id, self.model, self.dim = store, int(dataset["id"]), model, dim
        self.kind, self.source = options.kind, options.source
        self.tally = tally
        object_rows.ensure_table(store, dim)
        self.total = object_rows.count_boxes(store, self.dataset_id, self.kind, self.source)
        if not self.total:
            raise InvalidInput(f"dataset {dataset['name']!r} has no {self.kind} boxes to embed")

    def about(self) -> dict[str, Any]:
        return {"objects": True, "kind": self.kind, "source": self.source, "boxes": self.total}

    def todo(self, job_id: str | None) -> tuple[pa.Table, int]:
        """One row per image with boxes to embed (their label ids and x, y, w, h), and how
        many boxes have a vector already. Boxes no image can crop are recorded now."""
        missing = object_rows.missing(
            self.store, self.dataset_id, self.model, self.dim, self.kind, self.source
        )
        object_rows.clear_errors(self.store, self.dataset_id, self.model, [m[0] for m in missing])
        skipped: list[tuple[int, int, str]] = []
        by_image: dict[int, tuple[str, list[int], list[float]]] = {}
        for label_id, sample_id, path, x, y, w, h in missing:
            box = [float("nan") if v is None else float(v) for v in (x, y, w, h)]
            problem = box_problem(*box)
            if problem:
                skipped.append((label_id, sample_id, f"{path}: {problem}"))
                continue
            entry = by_image.setdefault(sample_id, (path, [], []))
            entry[1].append(label_id)
            entry[2].extend(box)
        if skipped:
            empty = np.zeros(0, np.int64)
            object_rows.write_batch(
                self.store, self.dataset_id, self.model, empty, empty,
                np.zeros((0, self.dim), np.float32), skipped, job_id=job_id,
            )  # fmt: skip
            self.tally.add(0, [{"label_id": k, "sample_id": s, "reason": r} for k, s, r in skipped])
        rows = pa.table(
            {
                "sample_id": pa.array(list(by_image), pa.int64()),
                "path": pa.array([e[0] for e in by_image.values()], pa.string()),
                "region_ids": pa.array([e[1] for e in by_image.values()], pa.list_(pa.int64())),
                "region_boxes": pa.array([e[2] for e in by_image.values()], pa.list_(pa.float64())),
            }
        )
        return rows, self.total - len(missing)

    def write(self, table: pa.Table) -> None:
        labels = table.column("label_id").to_numpy(zero_copy_only=False)
        samples = table.column("sample_id").to_numpy()
        errors = table.column("error").to_pylist()
        have = object_rows.present(self.store, self.dataset_id, self.model, self.dim, labels)
        keep = np.asarray([e is None for e in errors], dtype=bool) & ~have
        failed = [
            (int(k), int(s), str(e))
            for k, s, e, h in zip(labels, samples, errors, have, strict=True)
            if e and not h
        ]
        object_rows.write_batch(
            self.store, self.dataset_id, self.model, labels[keep], samples[keep],
            _vectors(table, keep, self.dim), failed, job_id=None,
        )  # fmt: skip
        self.tally.add(
            int(keep.sum()), [{"label_id": k, "sample_id": s, "reason": r} for k, s, r in failed]
        )
