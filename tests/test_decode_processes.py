"""Decoding in worker processes: the same batches as threads, and a killed worker loses nothing."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import ingest

from visor.embedding.models import load_model
from visor.embedding.pipeline import Batch, ImageItem, embed_images
from visor.services.quality import inspect
from visor.workspace import Workspace

TINY = "random:dinov2-tiny"


def _items(
    demo_root: Path, kill_at: int | None = None, killed: list[int] | None = None
) -> list[ImageItem]:
    files = sorted(demo_root.rglob("*.jpg"))[:22]
    killed = [] if killed is None else killed

    def reader(path: Path, index: int):  # type: ignore[no-untyped-def]
        def read() -> bytes:
            if index == kill_at and not killed:
                workers = multiprocessing.active_children()
                if workers:  # a decoding process dies while others decode
                    os.kill(workers[0].pid or 0, signal.SIGKILL)
                    killed.append(index)
            return path.read_bytes()

        return read

    items = [ImageItem(i, f.name, reader(f, i)) for i, f in enumerate(files)]
    items.insert(7, ImageItem(99, "broken.jpg", lambda: b"not an image"))
    return items


def _run(items: list[ImageItem], processes: int) -> list[Batch]:
    embedder = load_model(TINY, "cpu", "fp32")
    return list(embed_images(embedder, items, batch_size=4, processes=processes, inspect=inspect))


@pytest.fixture(scope="module")
def threads(demo_root: Path) -> list[Batch]:
    return _run(_items(demo_root), 0)


def _same(got: list[Batch], want: list[Batch]) -> None:
    assert [b.keys.tolist() for b in got] == [b.keys.tolist() for b in want]
    assert [b.failed for b in got] == [b.failed for b in want]
    assert [b.inspected for b in got] == [b.inspected for b in want]
    np.testing.assert_allclose(
        np.concatenate([b.vectors for b in got]), np.concatenate([b.vectors for b in want]),
        atol=1e-5,
    )  # fmt: skip


def test_processes_give_the_same_vectors_in_the_same_order(
    demo_root: Path, threads: list[Batch]
) -> None:
    assert sum(len(b.keys) for b in threads) == 22
    assert [k for b in threads for k, _ in b.failed] == [99]
    _same(_run(_items(demo_root), 2), threads)
    assert not multiprocessing.active_children()  # the pool is gone with the run


def test_a_killed_worker_loses_nothing(demo_root: Path, threads: list[Batch]) -> None:
    killed: list[int] = []
    _same(_run(_items(demo_root, 12, killed), 2), threads)
    assert killed == [12]  # the pool did lose a worker on the way


def test_the_embed_job_in_processes_writes_the_same_vectors(
    workspace: Workspace, demo_root: Path
) -> None:
    ingest(workspace, demo_root, "ds")
    ds = workspace.dataset("ds")
    threads = ds.embed(TINY, precision="fp32", processes=0, wait=True)["result"]
    ids, want = ds.embeddings(TINY)
    quality = ds.quality()
    job = ds.embed(TINY, precision="fp32", processes=2, recompute=True, wait=True)["result"]
    assert job["embedded"] == threads["embedded"] == 40
    got_ids, got = ds.embeddings(TINY)
    assert got_ids.tolist() == ids.tolist()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert ds.quality() == quality  # measured again, from the workers' decodes
