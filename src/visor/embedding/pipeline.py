"""Images in, vectors out: decoding on worker threads feeding batches to the model.

A pure function of (images → vectors) that knows nothing of the store or jobs, so it can run
unchanged inside another executor. Worker threads read, decode (JPEG draft mode) and crop
while the model runs on the previous batch; PIL and torch both release the GIL for the heavy
parts. On CUDA a batch is copied from pinned memory without blocking, and a batch's vectors
are fetched only after the next batch has been queued, so copies overlap compute.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from visor.embedding.crops import CropRule
from visor.embedding.processes import ProcessDecoder
from visor.errors import VisorError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from visor.embedding.models import Embedder
    from visor.embedding.preprocess import Box, Preprocessing

log = logging.getLogger("visor.pipeline")


@dataclass(frozen=True)
class ImageItem:
    """One image to embed: a key (sample id), a name for messages, and how to read its bytes.
    With `regions`, the image is not embedded itself: each (key, box) is, as a crop cut from
    the same decode (the keys are then the boxes' own, e.g. label ids). `inspect`: whether
    the pipeline's `inspect` looks at this image (its answer is None where not)."""

    key: int
    name: str
    read: Callable[[], bytes]
    regions: tuple[tuple[int, Box], ...] | None = None
    inspect: bool = True

    @property
    def weight(self) -> int:
        """How many model inputs the item gives."""
        return 1 if self.regions is None else max(len(self.regions), 1)


@dataclass
class Batch:
    """Vectors for `keys` (float32, one row each) and the items that could not be read."""

    keys: np.ndarray
    vectors: np.ndarray
    failed: list[tuple[int, str]] = field(default_factory=list)
    inspected: list[Any] = field(default_factory=list)  # `inspect`'s answers, one per key

    @property
    def count(self) -> int:
        return len(self.keys) + len(self.failed)


def default_workers() -> int:
    return max(2, min(16, (os.cpu_count() or 2)))


def embed_images(
    embedder: Embedder,
    items: Iterable[ImageItem],
    *,
    batch_size: int = 32,
    workers: int | None = None,
    inspect: Callable[[Image.Image], Any] | None = None,
    crop_rule: CropRule = CropRule(),
    processes: int = 0,
) -> Generator[Batch, None, None]:
    """Yield one `Batch` per model batch, in input order. Unreadable images never stop the
    run: they come back in `Batch.failed` with a reason. Closing the iterator stops the workers.
    `inspect` is called on each decoded image (before resizing, on the decoding thread); its
    answers come back in `Batch.inspected`.

    Items with regions give one vector per region that has a crop (`crop_rule`); a region
    without one (a zero-size box, a box outside the image) comes back in `Batch.failed` with
    its reason, and so does each region of an unreadable image. Batches are full whatever
    the number of regions per image (the rest of an image's regions go to the next batch).

    On CUDA out-of-memory the batch size halves (down to 1) and the run goes on.

    `processes` > 0 decodes in that many worker processes instead of threads (`processes.py`:
    crops through shared memory; a killed worker's images decoded again): the same batches,
    for a model that outruns one process's decoding. `prepare`'s parts must then pickle.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    workers = workers or default_workers()
    preprocessing = embedder.preprocessing
    prepare = partial(_prepare_item, preprocessing, inspect, crop_rule)
    runner = _ModelRunner(embedder, batch_size)
    # Reading (I/O: local disk or object store) always runs two batches ahead. Decoding runs
    # ahead too when the model is on a GPU, which computes while the CPU decodes. On a CPU the
    # two would share the cores, and a decoding thread that pre-empts one of torch's threads
    # stalls them all: decoding the next batch on every core between forward passes costs less.
    ahead = 0 if embedder.device == "cpu" else 2
    readers = ThreadPoolExecutor(max_workers=max(4, workers), thread_name_prefix="visor-read")
    decoders = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="visor-decode")
    shape = preprocessing.input_hw
    in_processes = (
        ProcessDecoder(prepare, processes, 4 * batch_size, shape and (*shape, 3))
        if processes > 0
        else None
    )
    queue: deque[_InFlight] = deque()
    source = iter(items)

    # Read-ahead and decode-ahead are counted in model inputs, so an image with many boxes
    # counts as many images would.
    def read(count: int) -> None:
        while sum(entry.item.weight for entry in queue) < count:
            item = next(source, None)
            if item is None:
                return
            queue.append(_InFlight(item, readers.submit(item.read)))

    def decode(count: int) -> None:
        weight = 0
        for entry in queue:
            if weight >= count:
                return
            weight += entry.item.weight
            if entry.crop is None:
                entry.crop = (
                    in_processes.submit(entry.item, entry.data)
                    if in_processes is not None
                    else decoders.submit(_prepare, prepare, entry)
                )

    pending: tuple[np.ndarray, list[tuple[int, str]], _Pending, list[Any]] | None = None
    # Inputs beyond a full batch (an image's boxes do not stop at a batch's edge) wait for
    # the next one, so the model always sees full batches.
    carried: tuple[list[int], list[np.ndarray], list[Any]] = ([], [], [])
    try:
        while True:
            read(3 * runner.batch_size)
            if not queue and not carried[0]:
                break
            decode(runner.batch_size)
            keys, crops, inspected = carried
            failed: list[tuple[int, str]] = []
            while queue and len(keys) + len(failed) < runner.batch_size:
                entry = queue.popleft()
                assert entry.crop is not None
                item = entry.item
                try:
                    for key, crop, seen in entry.crop.result():
                        if isinstance(crop, str):
                            failed.append((key, crop))
                        else:
                            crops.append(crop)
                            inspected.append(seen)
                            keys.append(key)
                    continue
                except VisorError as e:
                    reason = e.message
                except Exception as e:  # a reader error we did not foresee: record, go on
                    reason = f"{item.name}: cannot read ({type(e).__name__}: {e})"
                if item.regions is None:
                    failed.append((item.key, reason))
                else:
                    failed.extend((key, reason) for key, _ in item.regions)
            size = runner.batch_size
            carried = (keys[size:], crops[size:], inspected[size:])
            keys, crops, inspected = keys[:size], crops[:size], inspected[:size]
            read(3 * runner.batch_size)
            decode(ahead * runner.batch_size)
            launched = runner.launch(crops) if crops else None
            # On a CPU the model is done with this batch: the next one decodes while the
            # caller stores the last one's vectors (on the job thread, one core).
            decode(runner.batch_size)
            if pending is not None:
                yield _finish(*pending)
            empty = _Pending(None, embedder.dim)
            pending = (np.asarray(keys, dtype=np.int64), failed, launched or empty, inspected)
        if pending is not None:
            yield _finish(*pending)
    finally:
        decoders.shutdown(wait=True, cancel_futures=True)
        readers.shutdown(wait=True, cancel_futures=True)
        if in_processes is not None:
            in_processes.close()


_Prepared = list[tuple[int, "np.ndarray | str", Any]]  # (key, model input or reason, inspected)


class _Decoded(Protocol):
    def result(self) -> _Prepared: ...


@dataclass
class _InFlight:
    item: ImageItem
    data: Future[bytes]
    crop: _Decoded | None = None


def _prepare_item(
    preprocessing: Preprocessing,
    inspect: Callable[[Image.Image], Any] | None,
    rule: CropRule,
    item: ImageItem,
    data: bytes,
) -> _Prepared:
    if item.regions is None:
        look = inspect if item.inspect else None
        crop, seen = preprocessing.prepare_inspected(data, item.name, look)
        return [(item.key, crop, seen)]
    regions = preprocessing.prepare_regions(data, item.name, item.regions, rule)
    return [(key, crop, None) for key, crop in regions]


def _prepare(prepare: Callable[[ImageItem, bytes], _Prepared], entry: _InFlight) -> _Prepared:
    return prepare(entry.item, entry.data.result())


def _finish(
    keys: np.ndarray, failed: list[tuple[int, str]], pending: _Pending, inspected: list[Any]
) -> Batch:
    return Batch(keys=keys, vectors=pending.result(), failed=failed, inspected=inspected)


class _Pending:
    """Vectors being computed (possibly asynchronously on a GPU)."""

    def __init__(self, output: torch.Tensor | None, dim: int = 0, event: object = None) -> None:
        self._output = output
        self._dim = dim
        self._event = event

    def result(self) -> np.ndarray:
        if self._output is None:
            return np.zeros((0, self._dim), dtype=np.float32)
        if self._event is not None:
            self._event.synchronize()  # type: ignore[attr-defined]
        return self._output.numpy()


class _ModelRunner:
    def __init__(self, embedder: Embedder, batch_size: int) -> None:
        self.embedder = embedder
        self.batch_size = batch_size
        self.cuda = embedder.device.startswith("cuda")

    def launch(self, crops: list[np.ndarray]) -> _Pending:
        import torch

        host = torch.from_numpy(np.stack(crops))
        if self.cuda:
            host = host.pin_memory()
        out = self._forward(host)
        if not self.cuda:
            return _Pending(out.cpu())
        fetched = out.to("cpu", non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return _Pending(fetched, event=event)

    def _forward(self, host: torch.Tensor) -> torch.Tensor:
        import torch

        try:
            return self.embedder.forward(host)
        except torch.OutOfMemoryError:
            if len(host) <= 1:
                raise VisorError(
                    f"out of memory on {self.embedder.device} even with batch size 1"
                ) from None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.batch_size = max(1, min(self.batch_size, len(host) // 2))
            log.warning("out of memory: batch size lowered to %d", self.batch_size)
            parts, start = [], 0
            while start < len(host):  # a nested failure lowers batch_size for what follows
                size = self.batch_size
                parts.append(self._forward(host[start : start + size]))
                start += size
            return torch.cat(parts)
