"""The embed job: every sample of a dataset without a vector from the model → the pipeline →
vectors committed batch by batch, so a stopped or killed job keeps its work and a new one
embeds only what is missing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from visor.embedding import int8
from visor.embedding.backends import check_backend
from visor.embedding.models import (
    DEFAULT_MODEL,
    Embedder,
    check_model_name,
    load_model,
    resolve_device,
)
from visor.embedding.models import resolve_precision as check_precision
from visor.embedding.pipeline import ImageItem, default_workers, embed_images
from visor.errors import InvalidInput
from visor.quality.images import ImageStats
from visor.services import objects as object_service
from visor.services import quality as quality_service
from visor.services.jobs import JobContext
from visor.sources import Source
from visor.store import Store
from visor.store import embeddings as vector_rows
from visor.store import quality as quality_rows
from visor.store import samples as sample_rows

if TYPE_CHECKING:
    from visor.embedding.preprocess import Preprocessing

MAX_BATCH_SIZE = 4096
REPORT_LIMIT = 100  # unreadable images listed in the job result; the count is exact


class EmbedParams(BaseModel):
    """What an embed job is asked with: the `embed` operation's fields, and what the job
    reads once `resolved()` has filled in the automatic values."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    model: str | None = Field(
        default=None,
        description="dinov2-small|base|large|giant, random:<name>, a folder or a hub id "
        "(default: the setting VISOR_MODEL)",
    )
    device: str | None = Field(default=None, description="auto|cuda|cuda:N|mps|cpu")
    precision: str | None = Field(
        default=None,
        description="auto|fp32|fp16|bf16|int8 (int8: OpenVINO on a CPU; static int8 "
        "calibrated on the dataset's images where the CPU has VNNI or AMX, else int8 weights; "
        "auto uses it there when it keeps the neighbours and runs 1.1x as fast)",
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BATCH_SIZE,
        description="images per batch (auto: 32 on a CPU, 128 on a GPU)",
    )
    workers: int | None = Field(default=None, ge=1, le=64, description="decoding threads (auto)")
    processes: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="decoding processes, 0 for threads (auto: one per core on a GPU, threads "
        "on a CPU)",
    )
    recompute: bool = Field(default=False, description="embed every image again")
    quality: bool = Field(
        default=True, description="measure image quality from the same decode (visor quality)"
    )
    objects: bool = Field(default=False, description="embed every box (a crop of its image)")
    kind: Literal["gt", "prediction"] = Field(
        default="gt", description="with objects: gt|prediction boxes"
    )
    source: str | None = Field(
        default=None, description="with kind prediction: only this prediction source"
    )
    ray: str | None = Field(
        default=None,
        description="run on a Ray cluster: local (started for the job), auto, or ray://host:port",
    )
    ray_actors: int | None = Field(
        default=None, ge=1, le=1024, description="with ray: model actors (1)"
    )
    ray_gpus: float | None = Field(
        default=None, ge=0, le=8, description="with ray: GPUs per model actor (0)"
    )
    staging: str | None = Field(
        default=None,
        description="with ray: folder or s3:// / gs:// URL the workers write shards to",
    )
    backend: str | None = Field(
        default=None,
        description="auto|torch|openvino: how the model runs on a CPU (auto: the faster of the "
        "two on this machine, measured on first use)",
    )
    cache_dir: str | None = Field(
        default=None, description="where converted models are kept (default: home/compiled)"
    )

    def resolved(self) -> Self:
        """Validated, with automatic values filled in (fails fast, before a job starts)."""
        model = check_model_name(self.model or DEFAULT_MODEL)
        device = resolve_device(self.device)
        precision = check_precision(self.precision, device)
        batch = self.batch_size if self.batch_size is not None else (32 if device == "cpu" else 128)
        workers = self.workers if self.workers is not None else default_workers()
        processes = self.processes
        if processes is None:  # a GPU outruns one process's decoding; a CPU shares its cores
            processes = 0 if device in ("cpu", "mps") else min(os.cpu_count() or 1, 32)
        if self.source is not None and (not self.objects or self.kind != "prediction"):
            raise InvalidInput("a prediction source goes with objects of kind 'prediction'")
        if self.objects and self.recompute:
            raise InvalidInput(
                "recompute is for images; box vectors are kept per box (a replaced prediction "
                "source gets new boxes, embedded as new)"
            )
        if self.ray is not None:
            self._check_ray()
        backend = check_backend(self.backend, device, precision)
        return self.model_copy(
            update=dict(
                model=model,
                backend=backend,
                device=device,
                # as asked: auto is resolved where the model loads, which may choose int8
                precision=self.precision or "auto",
                batch_size=batch,
                workers=workers,
                processes=processes,
                quality=self.quality and not self.objects and self.ray is None,
                ray_actors=self.ray_actors or 1 if self.ray is not None else None,
            )
        )

    def _check_ray(self) -> None:
        from visor.services.ray_embed import ray_module

        if not self.ray or not self.ray.strip():
            raise InvalidInput("ray: give local, auto or ray://host:port")
        if self.recompute:
            raise InvalidInput("--recompute runs locally; --ray embeds what is missing")
        ray_module()  # installed, or a clear error before the job starts


def model_for(
    options: EmbedParams,
    calibration: Callable[[Preprocessing], np.ndarray] | None = None,
    images: Callable[[Embedder], int] | None = None,
) -> Embedder:
    """The checked options' model, run by their backend (static int8 calibrated on
    `calibration`'s images where it is asked for or chosen, and where it pays for itself on
    the job's `images`, `embedding/choice.py`)."""
    cache = Path(options.cache_dir) if options.cache_dir else None
    return load_model(
        str(options.model),
        options.device,
        options.precision,
        options.backend,
        cache_dir=cache,
        calibration=calibration,
        images=images,
    )


def calibration_images(
    store: Store, dataset_id: int, source: Source, workers: int
) -> Callable[[Preprocessing], np.ndarray]:
    """The dataset's first images (by sample id, `int8.CALIBRATION_IMAGES` of them, the
    unreadable left out) as model inputs: the same set on every run over the same dataset."""

    def decode(preprocessing: Preprocessing) -> np.ndarray:
        rows = sample_rows.paths(store, dataset_id, limit=int8.CALIBRATION_IMAGES)

        def one(path: str) -> np.ndarray | None:
            try:
                return preprocessing.prepare(source.read_bytes(path), path)
            except Exception:  # unreadable: the job reports it with the others
                return None

        with ThreadPoolExecutor(max_workers=workers) as pool:
            crops = [c for c in pool.map(one, [path for _, path in rows]) if c is not None]
        height, width = preprocessing.input_hw or (224, 224)
        return np.stack(crops) if crops else np.zeros((0, height, width, 3), np.uint8)

    return decode


def _finite_only(
    keys: np.ndarray, vectors: np.ndarray, failed: list[tuple[int, str]]
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Moves images whose vector has NaN or infinite values (e.g. an fp16 overflow) to the
    failures, so the store only ever holds finite vectors."""
    finite = np.isfinite(vectors).all(axis=1)
    if finite.all():
        return keys, vectors, failed
    reason = "the model gave NaN or infinite values for this image"
    bad = [(int(k), reason) for k in keys[~finite]]
    return keys[finite], vectors[finite], [*failed, *bad]


def embed_dataset(
    store: Store,
    ctx: JobContext,
    dataset: dict[str, Any],
    source: Source,
    options: EmbedParams,
) -> dict[str, Any]:
    """Run the embed job for `dataset` (a datasets row) with checked `options`."""
    if options.ray is not None:
        from visor.services.ray_embed import embed_on_ray

        assert options.staging is not None
        return embed_on_ray(store, ctx, dataset, source, options, options.staging)
    if options.objects:
        return object_service.embed_objects(store, ctx, dataset, source, options)
    ctx.phase(f"loading {options.model} on {options.device}")
    assert options.workers is not None
    dataset_id = int(dataset["id"])
    read: list[list[tuple[int, str]]] = []

    def images(model: Embedder) -> list[tuple[int, str]]:
        """(sample id, path) of the images this job embeds with `model`, read once: asked
        while the model loads (int8 weighs their number) or after."""
        if not read:
            vector_rows.ensure_model(store, model.name, model.dim)
            if options.recompute:
                read.append(sample_rows.paths(store, dataset_id))
            else:
                read.append(vector_rows.missing(store, dataset_id, model.name, model.dim))
        return read[0]

    embedder = model_for(
        options,
        calibration_images(store, dataset_id, source, options.workers),
        lambda model: len(images(model)),
    )
    todo = images(embedder)
    already = int(dataset["num_samples"]) - len(todo)
    vector_rows.clear_errors(store, dataset_id, embedder.name)
    ctx.phase(
        f"embedding with {embedder.name} on {embedder.device} ({embedder.precision})"
        + (f"; {already} already done" if already else ""),
        total=len(todo),
    )
    # Quality statistics depend on the image alone: measured once, by whichever job decodes
    # it first (a second model's job, or --recompute, runs at the rate without them).
    todo_ids = np.fromiter((key for key, _ in todo), np.int64, len(todo))
    new = np.zeros(len(todo), bool)
    if options.quality:
        new = ~np.isin(todo_ids, quality_rows.measured_ids(store, dataset_id))
    items = (
        ImageItem(key, path, partial(source.read_bytes, path), inspect=bool(look))
        for (key, path), look in zip(todo, new, strict=True)
    )
    done = embedded = 0
    failures: list[dict[str, Any]] = []
    failed_count = 0
    paths = dict(todo)
    started = time.monotonic()
    assert options.batch_size is not None
    batches = embed_images(
        embedder,
        items,
        batch_size=options.batch_size,
        workers=options.workers,
        inspect=quality_service.inspect if options.quality else None,
        processes=options.processes or 0,
    )
    measured = 0
    try:
        for batch in batches:
            keys, vectors, failed = _finite_only(batch.keys, batch.vectors, batch.failed)
            vector_rows.write_batch(
                store,
                dataset_id,
                embedder.name,
                keys,
                vectors,
                failed,
                job_id=ctx.job.id,
                replace=options.recompute,
            )
            pairs = zip(batch.keys.tolist(), batch.inspected, strict=True)
            seen = [(k, s) for k, s in pairs if s is not None]
            if seen:
                quality_rows.add_stats(
                    store,
                    dataset_id,
                    [k for k, _ in seen],
                    ImageStats.columns([s for _, s in seen]),
                )
                measured += len(seen)
            done += batch.count
            embedded += len(keys)
            failed_count += len(failed)
            for key, reason in failed:
                if len(failures) < REPORT_LIMIT:
                    failures.append({"sample_id": key, "path": paths[key], "reason": reason})
            ctx.progress(done)
            ctx.check_cancelled()
    finally:
        batches.close()
    elapsed = time.monotonic() - started
    quality = None
    if measured:
        quality = {**quality_service.update_issues(store, dataset_id), "measured_now": measured}
    elif options.quality:
        quality = quality_service.summary(store, dataset_id)
    return {
        "model": embedder.name,
        "dim": embedder.dim,
        "device": embedder.device,
        "precision": embedder.precision,
        "backend": embedder.backend,
        **({"backend_facts": embedder.backend_facts} if embedder.backend_facts else {}),
        "embedded": embedded,
        "skipped_existing": already,
        "failed_count": failed_count,
        "failed": failures,
        "seconds": round(elapsed, 2),
        "images_per_s": round(done / elapsed, 2) if elapsed > 0 else None,
        "quality": quality,
    }
