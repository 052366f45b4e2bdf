"""The embed job's work on a Ray cluster, with Ray Data: the (sample id, path) rows to embed
in blocks → read and preprocess on CPU tasks with the local pipeline's own code → the model
in a pool of actors (loaded once per actor; `random:` models are seeded, so every actor
gives the same vectors) → each batch's vectors written by its actor as one Parquet shard in
a staging folder (local, s3:// or gs://), whole or not at all. The actors run the job's
backend (OpenVINO on CPU nodes where the job asks for it). The driver gets one small row
per shard (its name and counts) and loads it; this module knows nothing of the store.

Workers read images from the dataset's root themselves (a bucket is read by the workers, not
through the driver) and write shards themselves: a shard's name is its first and last sample
id, so a retried batch writes the same shard again rather than a second one.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from visor.errors import VisorError

if TYPE_CHECKING:
    from visor.embedding.preprocess import Box, Preprocessing

SHARD_SUFFIX = ".parquet"
# A test (or an operator) can make the first model actor to see this file remove it and die,
# as a crashed worker would: Ray restarts the actor and runs its batch again.
FAIL_ONCE_ENV = "VISOR_RAY_FAIL_ONCE"


@dataclass(frozen=True)
class RayPlan:
    """What every task and actor needs, sent to them once."""

    root: str  # the dataset's root (a path or bucket URL), opened by each worker
    model: str
    device: str
    precision: str
    batch_size: int
    staging: str  # folder (path or URL) the shards go to
    actors: int  # model actors in the pool
    gpus_per_actor: float
    cpus_per_actor: float
    decode_tasks: bool  # read and preprocess on CPU tasks (else in the model actors)
    threads: int | None  # torch threads per actor (None: as Ray sets them)
    preprocessing: Preprocessing
    backend: str = "torch"  # as checked by the driver; auto is measured on each node
    cache_dir: str | None = None  # converted models (None: each worker's home/compiled)


def shard_schema() -> pa.Schema:
    return pa.schema(
        [
            ("sample_id", pa.int64()),
            ("label_id", pa.int64()),  # the box, when boxes are embedded (else null)
            ("model", pa.string()),
            ("vector", pa.list_(pa.float32())),  # null where the image failed
            ("error", pa.string()),  # why, for a failed image
        ]
    )


def run(plan: RayPlan, rows: pa.Table) -> Iterator[dict[str, Any]]:
    """Embed `rows` (sample_id, path; with `region_ids` and `region_boxes`, a list of label
    ids and their x, y, w, h flattened, the image's boxes instead of the image) on the
    connected Ray cluster; yields, as each shard is written, {"shard": file name in the
    staging folder, "count": model inputs (images or boxes), "failed": count}."""
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the job's own progress is what the user follows
    context.verbose_progress = False
    # Blocks of a few batches each, cut here (a repartition would need free CPUs while the
    # actors hold them).
    size = plan.batch_size * 2
    blocks = [rows.slice(start, size) for start in range(0, len(rows), size)]
    data: Any = ray.data.from_arrow(blocks)
    if plan.decode_tasks:
        # For GPU actors: images read and preprocessed on CPU tasks, which scale apart.
        decode: Any = _decode  # Ray's typing wants one argument; fn_kwargs gives the second
        data = data.map_batches(
            decode, fn_kwargs={"plan": plan}, batch_size=plan.batch_size, batch_format="numpy",
            num_cpus=1,
        )  # fmt: skip
    # CPU actors decode their own batches with the local pipeline, between forward passes on
    # every core they hold: decoding tasks beside them would take cores from the model.
    embedded = data.map_batches(
        _Embed,
        fn_constructor_args=(plan,),
        batch_size=plan.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(1, plan.actors)),
        num_cpus=plan.cpus_per_actor,
        num_gpus=plan.gpus_per_actor or None,
    )  # a dead actor is restarted and its batch run again (Ray Data's defaults)
    for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
        for shard, count, failed in zip(
            batch["shard"], batch["count"], batch["failed"], strict=True
        ):
            yield {"shard": str(shard), "count": int(count), "failed": int(failed)}


def read_shard(fs: Any, path: str) -> pa.Table:
    with fs.open(path, "rb") as f:
        return pq.read_table(f, schema=shard_schema())


def list_shards(fs: Any, folder: str) -> list[str]:
    """Complete shards in `folder` (a file being written has another suffix), by name."""
    if not fs.exists(folder):
        return []
    found = [p for p in fs.ls(folder, detail=False) if str(p).endswith(SHARD_SUFFIX)]
    return sorted(str(p) for p in found)


_sources: dict[str, Any] = {}
# (sample ids, label ids or -1, vectors, reason or None per input)
_Embedded = tuple[np.ndarray, np.ndarray, np.ndarray, list[Any]]


def _source(root: str) -> Any:
    """The dataset's root, opened once per worker process."""
    from visor.sources import Source

    if root not in _sources:
        _sources[root] = Source(root)
    return _sources[root]


def _regions(batch: dict[str, np.ndarray], row: int) -> tuple[tuple[int, Box], ...]:
    ids = batch["region_ids"][row]
    flat = np.asarray(batch["region_boxes"][row], dtype=np.float64).reshape(-1, 4)
    return tuple((int(k), (b[0], b[1], b[2], b[3])) for k, b in zip(ids, flat, strict=True))


def _decode(batch: dict[str, np.ndarray], plan: RayPlan) -> dict[str, np.ndarray]:
    """Reads and preprocesses a batch of images (the local pipeline's `prepare_inspected`, or
    `prepare_regions` for boxes): uint8 model inputs, and the reason for each input that
    could not be made. One row per image, or per box."""
    from visor.embedding.crops import CropRule

    source = _source(plan.root)
    prep = plan.preprocessing
    boxes = "region_ids" in batch
    samples, labels, crops, errors = [], [], [], []
    for row, (sample_id, path) in enumerate(zip(batch["sample_id"], batch["path"], strict=True)):
        regions = _regions(batch, row) if boxes else ()
        made: list[tuple[int | None, np.ndarray | str]]
        try:
            data = source.read_bytes(str(path))
            if boxes:
                made = list(prep.prepare_regions(data, str(path), regions, CropRule()))
            else:
                made = [(None, prep.prepare_inspected(data, str(path), None)[0])]
        except Exception as e:  # recorded for each of its inputs; the job goes on
            reason = e.message if isinstance(e, VisorError) else (
                f"{path}: cannot read ({type(e).__name__}: {e})"
            )  # fmt: skip
            made = [(k, reason) for k, _ in regions] if boxes else [(None, reason)]
        for label_id, crop in made:
            samples.append(int(sample_id))
            labels.append(-1 if label_id is None else label_id)
            crops.append(None if isinstance(crop, str) else crop)
            errors.append(crop if isinstance(crop, str) else "")
    shape = next((c.shape for c in crops if c is not None), (1, 1, 3))
    pixels = np.stack([c if c is not None else np.zeros(shape, np.uint8) for c in crops])
    return {
        "sample_id": np.asarray(samples, dtype=np.int64),
        "label_id": np.asarray(labels, dtype=np.int64),
        "pixels": pixels,
        "error": np.asarray(errors, dtype=object),
    }


class _Embed:
    """The model, loaded once per actor; writes each batch's vectors as one shard."""

    def __init__(self, plan: RayPlan) -> None:
        import torch

        from visor.embedding.models import load_model
        from visor.sources import filesystem

        self.plan = plan
        if plan.threads:
            torch.set_num_threads(plan.threads)  # Ray gives a worker one thread per CPU it holds
        cache = Path(plan.cache_dir) if plan.cache_dir else None
        self.embedder = load_model(
            plan.model, plan.device, plan.precision, plan.backend, cache_dir=cache
        )
        self.fs, self.folder = filesystem(plan.staging)
        self.local = "://" not in plan.staging or plan.staging.startswith("file://")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        _maybe_fail()
        if "pixels" in batch:
            samples, labels, vectors, reasons = self._forward(batch)
        else:
            samples, labels, vectors, reasons = self._pipeline(batch)
        finite = np.isfinite(vectors).all(axis=1)
        for i in np.flatnonzero(~finite):
            reasons[i] = reasons[i] or "the model gave NaN or infinite values for this input"
        column = [None if reasons[i] else vectors[i] for i in range(len(samples))]
        table = pa.table(
            {
                "sample_id": samples,
                "label_id": pa.array(labels, pa.int64(), mask=labels < 0),
                "model": [self.embedder.name] * len(samples),
                "vector": pa.array(column, pa.list_(pa.float32())),
                "error": pa.array(reasons, pa.string()),
            },
            schema=shard_schema(),
        )
        keys = labels if (labels >= 0).any() else samples
        name = f"{int(keys.min()):012d}-{int(keys.max()):012d}{SHARD_SUFFIX}"
        self._write(name, table)
        failed = sum(r is not None for r in reasons)
        return {"shard": [name], "count": [len(samples)], "failed": [failed]}

    def _forward(self, batch: dict[str, np.ndarray]) -> _Embedded:
        """Model inputs made by the decoding tasks, through the model."""
        import torch

        errors = batch["error"]
        good = np.asarray([not e for e in errors], dtype=bool)
        vectors = np.zeros((len(errors), self.embedder.dim), dtype=np.float32)
        if good.any():
            inputs = torch.from_numpy(np.ascontiguousarray(batch["pixels"][good]))
            vectors[good] = self.embedder.forward(inputs).cpu().numpy()
        samples = batch["sample_id"].astype(np.int64)
        labels = batch["label_id"].astype(np.int64)
        return samples, labels, vectors, [str(e) or None for e in errors]

    def _pipeline(self, batch: dict[str, np.ndarray]) -> _Embedded:
        """(sample id, path[, boxes]) rows through the local pipeline: read, decode (and cut
        the boxes), model; one output per image, or per box."""
        from visor.embedding.pipeline import ImageItem, embed_images

        source = _source(self.plan.root)
        boxes = "region_ids" in batch
        items, sample_of = [], {}
        for row, (sample_id, path) in enumerate(
            zip(batch["sample_id"], batch["path"], strict=True)
        ):
            regions = _regions(batch, row) if boxes else None
            read = partial(source.read_bytes, str(path))
            items.append(ImageItem(int(sample_id), str(path), read, regions=regions))
            for key, _ in regions or ((int(sample_id), None),):
                sample_of[key] = int(sample_id)
        keys = list(sample_of)
        row_of = {key: i for i, key in enumerate(keys)}
        vectors = np.zeros((len(keys), self.embedder.dim), dtype=np.float32)
        reasons: list[Any] = [None] * len(keys)
        for done in embed_images(
            self.embedder, items, batch_size=self.plan.batch_size, workers=self.plan.threads
        ):
            for key, vector in zip(done.keys.tolist(), done.vectors, strict=True):
                vectors[row_of[key]] = vector
            for key, reason in done.failed:
                reasons[row_of[key]] = reason
        samples = np.asarray([sample_of[k] for k in keys], dtype=np.int64)
        labels = np.asarray(keys if boxes else [-1] * len(keys), dtype=np.int64)
        return samples, labels, vectors, reasons

    def _write(self, name: str, table: pa.Table) -> None:
        """Whole or not at all: a local shard is written beside its name and renamed; an
        object store's put shows an object only once it is complete."""
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        path = f"{self.folder}/{name}"
        if self.local:
            os.makedirs(self.folder, exist_ok=True)
            scratch = f"{path}.{uuid.uuid4().hex}.part"
            with open(scratch, "wb") as f:
                f.write(buffer.getvalue())
            os.replace(scratch, path)
        else:
            self.fs.pipe_file(path, buffer.getvalue())


def _maybe_fail() -> None:
    marker = os.environ.get(FAIL_ONCE_ENV)
    if marker:
        try:
            os.remove(marker)
        except FileNotFoundError:
            return
        os._exit(1)  # as a worker killed mid-batch
