"""Decoding in worker processes, for a model that outruns one process's decoding (a GPU: one
process decodes about 1,000 images/s whatever its threads, held by the Python side of PIL).

Images are read on the caller's threads (I/O) and their bytes sent to a pool of processes
(started fresh, not forked: the caller runs DuckDB's and torch's threads), which decode,
resize and crop. A crop comes back through a block of shared memory owned by the caller: a
ring of slots, one model input each, so a batch's pixels are written once by the worker and
copied once into the batch. Where a crop does not fit a slot (models whose input follows the
image, box crops), it comes back pickled.

A worker that dies (killed, out of memory) breaks the pool: every decode it held is sent again
to a new pool, in the same order, so nothing is lost and the vectors come out as they would
have. A decode that breaks `MAX_RESTARTS` pools in a row is reported as unreadable.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from multiprocessing import shared_memory
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from visor.embedding.pipeline import ImageItem

MAX_RESTARTS = 3
_Prepared = list[tuple[int, Any, Any]]  # (key, model input or reason, inspected)

# In each worker: the preparing function and the caller's shared block.
_prepare: Callable[[ImageItem, bytes], _Prepared] | None = None
_block: shared_memory.SharedMemory | None = None


def _start(prepare: Callable[[ImageItem, bytes], _Prepared], block: str) -> None:
    global _prepare, _block
    _prepare = prepare
    # Started by spawn, a worker shares the caller's resource tracker: attaching registers the
    # name the caller registered already, and the caller's unlink unregisters it.
    _block = shared_memory.SharedMemory(name=block)


def _work(item: ImageItem, data: bytes, slot: int, slot_bytes: int) -> _Prepared:
    """Prepare one image in a worker; a single crop of slot size goes into `slot`."""
    assert _prepare is not None and _block is not None
    out = _prepare(item, data)
    if slot >= 0 and len(out) == 1 and isinstance(out[0][1], np.ndarray):
        key, crop, seen = out[0]
        if crop.nbytes == slot_bytes and crop.dtype == np.uint8:
            view = np.ndarray(crop.shape, np.uint8, _block.buf, slot * slot_bytes)
            view[...] = crop
            return [(key, ("slot", crop.shape), seen)]
    return out


def _unread() -> bytes:
    raise AssertionError("a worker is sent the bytes, never asked to read them")


class ProcessDecoder:
    """A pool of decoding processes with a shared ring of `slots` crops of `slot_shape`."""

    def __init__(
        self,
        prepare: Callable[[ImageItem, bytes], _Prepared],
        processes: int,
        slots: int,
        slot_shape: tuple[int, ...] | None,
    ) -> None:
        self.prepare = prepare
        self.processes = processes
        self.slot_bytes = int(np.prod(slot_shape)) if slot_shape else 0
        self.block = shared_memory.SharedMemory(create=True, size=max(slots * self.slot_bytes, 1))
        self.free = list(range(slots if self.slot_bytes else 0))
        self.generation = 0
        self.pool = self._pool()

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(self.prepare, self.block.name),
        )

    def submit(self, item: ImageItem, data: Future[bytes]) -> _Decode:
        decode = _Decode(self, item, data)
        decode.send()
        return decode

    def restart(self, generation: int) -> None:
        """A new pool, once per broken one (the decodes it held send themselves again)."""
        if generation == self.generation:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.generation += 1
            self.pool = self._pool()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.block.close()
        self.block.unlink()


class _Decode:
    """One image's decode in the pool: `result()` as the thread pool's future gives it."""

    def __init__(self, owner: ProcessDecoder, item: ImageItem, data: Future[bytes]) -> None:
        self.owner = owner
        self.item = item
        self.data = data
        self.slot = owner.free.pop() if owner.free else -1
        self.tries = 0
        self.future: Future[_Prepared] | None = None
        self.generation = owner.generation
        self.gave_up = False

    def send(self) -> None:
        """Submit to the current pool, or to a new one if it broke meanwhile (a reading error
        is raised by `result`)."""
        if self.data.exception() is not None:
            return
        while not self.gave_up:
            self.generation = self.owner.generation
            try:
                self.future = self.owner.pool.submit(
                    _work, replace(self.item, read=_unread), self.data.result(), self.slot,
                    self.owner.slot_bytes,
                )  # fmt: skip
                return
            except BrokenProcessPool:
                self._broke()

    def _broke(self) -> None:
        """The pool broke under this decode: a new one, unless it has broken too often."""
        self.tries += 1
        if self.tries > MAX_RESTARTS:
            self.gave_up = True
        else:
            self.owner.restart(self.generation)

    def result(self) -> _Prepared:
        try:
            if self.future is None and not self.gave_up:
                self.data.result()  # raises the reading error
            while not self.gave_up:
                assert self.future is not None
                try:
                    out = self.future.result()
                except BrokenProcessPool:
                    self._broke()
                    self.send()
                    continue
                return [(key, self._crop(crop), seen) for key, crop, seen in out]
            reason = f"{self.item.name}: its decoding process died {self.tries} times"
            return [(key, reason, None) for key in self._keys()]
        finally:
            self._release()

    def _keys(self) -> list[int]:
        regions = self.item.regions
        return [self.item.key] if regions is None else [key for key, _ in regions]

    def _crop(self, crop: Any) -> Any:
        if isinstance(crop, tuple) and crop[0] == "slot":
            start = self.slot * self.owner.slot_bytes
            view = np.ndarray(crop[1], np.uint8, self.owner.block.buf, start)
            return view.copy()
        return crop

    def _release(self) -> None:
        if self.slot >= 0:
            self.owner.free.append(self.slot)
            self.slot = -1
