"""Nearest neighbours by cosine distance over a dataset's vectors.

Two searchers with one interface (`vector_of`, `query`):
- `VectorIndex`, exact: an in-memory, L2-normalised float32 matrix, one matrix-vector product
  per query (faster than DuckDB's array_cosine_distance scan). Its cost grows with n: measured
  here at 100K x 768, p50 29 ms (`bench/search.py`).
- `AnnIndex`, approximate: a FAISS inverted-file index (IVF, inner product on unit vectors
  held in float16: no float32 copy of the vectors) with about sqrt(n) lists, of which
  `nprobe` (2%, at least 8) are scanned per query.
  Chosen over HNSW (FAISS's and usearch's) by measurement at 100K x 768 on this 2-core
  machine: IVF builds in ~2 s where HNSW took 61 s (FAISS) and 75-90 s (usearch), and answers
  in ~1.5 ms at recall@10 0.999 (HNSW: 0.4-0.8 ms); at 1M an HNSW build would take ~12 min.
  At 1M x 768 (1000 lists, built in 33 s) scanning 2% of the lists answers in 8.4 ms p50 at
  recall@10 0.99 (4%: 16.4 ms, 0.991; 1%: 4.3 ms, 0.985). It is built as a job, kept on
  disk beside its vectors' version, and used only while that version is current.

`neighbour_graph` finds every vector's nearest neighbours at once (for duplicates and
uniqueness): exactly up to `EXACT_GRAPH_LIMIT` vectors, with an IVF index above.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from visor.errors import InvalidInput
from visor.services.ivf import CHUNK, IvfShape, f32, faiss_module, ivf_index, training_rows
from visor.services.jobs import JobContext
from visor.store import Store
from visor.store import embeddings as vector_rows

MAX_K = 1000
EXACT_GRAPH_LIMIT = 10_000
EXACT_SUBSET_LIMIT = 50_000  # a filter leaving fewer vectors than this is searched exactly
# A text query scans this share of the index's lists. At 1M x 512 (1000 lists), queries at
# cosine 0.3 from an image (as a CLIP text is from the images it describes) find of their
# exact 10 nearest: 20% of the lists 0.757 (10.0 ms), 40% 0.921 (18.6 ms), 60% 0.975
# (28.1 ms), all 1.0 (46.4 ms); an image query's 2%: ~0.4 (`bench/text_search.py`, 2 cores
# of an Intel Xeon with AMX).
WIDE_SHARE = 0.6


class Searcher(Protocol):
    def vector_of(self, sample_id: int) -> np.ndarray | None: ...

    def query(
        self,
        vector: np.ndarray,
        k: int,
        *,
        exclude: int | None = None,
        allowed: np.ndarray | None = None,
        wide: bool = False,
    ) -> list[tuple[int, float]]: ...


def check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k={k}: ask for 1 to {MAX_K} neighbours")
    return k


@dataclass
class VectorIndex:
    """Sample ids (ascending) and their unit-length vectors."""

    ids: np.ndarray
    unit: np.ndarray

    @classmethod
    def from_vectors(cls, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        return cls(ids.astype(np.int64), unit_rows(vectors))

    def vector_of(self, sample_id: int) -> np.ndarray | None:
        row = _position(self.ids, sample_id)
        return None if row is None else self.unit[row]

    def query(
        self,
        vector: np.ndarray,
        k: int,
        *,
        exclude: int | None = None,
        allowed: np.ndarray | None = None,
        wide: bool = False,
    ) -> list[tuple[int, float]]:
        """The k nearest (sample id, cosine distance), nearest first; `allowed` is a sorted
        array of sample ids the answer is limited to."""
        q = _unit(vector)
        if allowed is None:
            rows = np.arange(len(self.ids))
            scores = self.unit @ q
        else:  # only the allowed rows are scored (both id arrays are sorted)
            pos = np.searchsorted(self.ids, allowed)
            inside = pos < len(self.ids)
            pos = pos[inside]
            rows = pos[self.ids[pos] == allowed[inside]]
            scores = self.unit[rows] @ q
        if exclude is not None:
            keep = self.ids[rows] != exclude
            rows, scores = rows[keep], scores[keep]
        if not len(rows):
            return []
        k = min(k, len(rows))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(rows) else np.arange(len(rows))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[rows[t]]), float(1.0 - scores[t])) for t in top]


def _position(sorted_ids: np.ndarray, sample_id: int) -> int | None:
    """Where `sample_id` is in an ascending id array, or None."""
    pos = int(np.searchsorted(sorted_ids, sample_id))
    return pos if pos < len(sorted_ids) and sorted_ids[pos] == sample_id else None


def _unit(vector: np.ndarray) -> np.ndarray:
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    return q / max(float(np.linalg.norm(q)), 1e-12)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """A float32 copy with every row scaled to length 1."""
    unit = np.array(vectors, dtype=np.float32, order="C", copy=True)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    return unit


class AnnIndex:
    """An IVF index whose ids are sample ids; it also holds the vectors (for exact search
    of small filtered subsets and to look a sample's vector up)."""

    def __init__(self, index: Any, info: dict[str, Any]) -> None:
        faiss = faiss_module()

        self.index = index
        self.info = info
        self.index.set_direct_map_type(faiss.DirectMap.Hashtable)
        # It answers one query at a time: its lists are scanned by every core at once
        # (FAISS's default splits a batch of queries between the cores, leaving one query
        # to one core). At 1M x 512, 60% of the lists: 69 -> 36 ms on 2 cores.
        self.index.parallel_mode = 1
        self.count = int(index.ntotal)
        lists = index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(index.nlist)
            if lists.list_size(i)
        ]
        self.ids = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    @classmethod
    def build(cls, ids: np.ndarray, unit: np.ndarray, info: dict[str, Any]) -> AnnIndex:
        """Over unit vectors `unit` (float16 or float32), one per sample id of `ids`."""
        started = time.monotonic()
        shape = IvfShape.for_size(len(ids))
        index = ivf_index(unit, ids, shape)
        info = {
            **info,
            "vectors": len(ids),
            "lists": shape.lists,
            "probes": shape.probes,
            "seconds": round(time.monotonic() - started, 2),
        }
        return cls(index, info)

    def save(self, path: Path) -> None:
        """Write the index and its `.json` description next to it, each atomically."""
        faiss = faiss_module()

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)
        meta = path.with_suffix(".json")
        meta.with_name(meta.name + ".tmp").write_text(json.dumps(self.info))
        os.replace(meta.with_name(meta.name + ".tmp"), meta)

    @classmethod
    def load(cls, path: Path) -> AnnIndex:
        faiss = faiss_module()

        info = json.loads(path.with_suffix(".json").read_text())
        return cls(faiss.read_index(str(path)), info)

    @staticmethod
    def is_current(info: dict[str, Any] | None, version: tuple[int, int]) -> bool:
        """Whether a stored index (its description) holds exactly this version of the vectors."""
        return info is not None and tuple(info.get("version") or ()) == version

    @staticmethod
    def stored_info(path: Path) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        return info if path.exists() else None

    def vector_of(self, sample_id: int) -> np.ndarray | None:
        if _position(self.ids, sample_id) is None:
            return None
        return np.asarray(self.index.reconstruct(int(sample_id)), dtype=np.float32)

    def query(
        self,
        vector: np.ndarray,
        k: int,
        *,
        exclude: int | None = None,
        allowed: np.ndarray | None = None,
        wide: bool = False,
    ) -> list[tuple[int, float]]:
        faiss = faiss_module()

        q = _unit(vector)[None, :]
        if allowed is not None and len(allowed) <= EXACT_SUBSET_LIMIT:
            subset = np.intersect1d(self.ids, np.asarray(allowed, dtype=np.int64))
            if not len(subset):
                return []
            exact = VectorIndex(subset, self.index.reconstruct_batch(subset))
            return exact.query(q[0], k, exclude=exclude, allowed=None)
        want = min(k + (exclude is not None), self.count)
        params = None
        # A text's vector lies apart from every image's (CLIP's modality gap): its nearest
        # images spread over many more lists than an image's do (`bench/text_search.py`).
        probes = self.index.nprobe
        if wide:
            probes = max(probes * 4, math.ceil(self.index.nlist * WIDE_SHARE))
        probes = min(self.index.nlist, probes)
        if allowed is not None:  # scan more lists when the filter keeps only part of them
            share = len(allowed) / max(self.count, 1)
            probes = min(self.index.nlist, math.ceil(probes / max(share, 1 / 8)))
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=probes)
        elif wide:
            params = faiss.SearchParametersIVF(nprobe=probes)
        scores, found = self.index.search(q, want, params=params)
        out = [
            (int(i), float(1.0 - s))
            for i, s in zip(found[0], scores[0], strict=True)
            if i >= 0 and i != exclude
        ]
        return out[:k]


class IndexCache:
    """One searcher per (dataset, model), replaced when its `version` changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[int, str, str], tuple[Any, Searcher]] = {}

    def get(
        self, key: tuple[int, str, str], version: Any, load: Callable[[], Searcher]
    ) -> Searcher:
        with self._lock:
            found = self._items.get(key)
            if found is not None and found[0] == version:
                return found[1]
        searcher = load()
        with self._lock:
            self._items[key] = (version, searcher)
        return searcher

    def forget(self, dataset_id: int) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == dataset_id]:
                del self._items[key]


def neighbour_graph(
    unit: np.ndarray,
    k: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    probes: int | None = None,
    shape: IvfShape | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For every row of `unit` (unit vectors, float32 or float16), its k nearest other rows
    and their cosine similarities, nearest first; -1 pads rows with fewer than k neighbours.
    Exact up to `EXACT_GRAPH_LIMIT` rows; above, an inverted-file search (`probes` lists
    scanned per row; fewer than for single queries are enough for close pairs; `shape`
    instead of the size's usual lists and probes), run list by list (`_block_graph`)."""
    n = len(unit)
    k = min(k, n - 1)
    if k < 1:
        return np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32)
    if n > EXACT_GRAPH_LIMIT:
        shape = shape or IvfShape.for_size(n)
        probes = min(probes or shape.probes, shape.lists)
        if n * probes * (k + 1) * 8 <= _BLOCK_CANDIDATES_BYTES:
            return _block_graph(unit, k, shape.lists, probes, progress)
    index = _graph_index(unit, probes, shape)
    rows = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    chunk = 8192
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        scores, found = index.search(f32(unit[start:stop]), k + 1)
        # Drop each row itself (or, where a copy outranked it, the (k+1)-th hit).
        drop = found == np.arange(start, stop)[:, None]
        drop[~drop.any(axis=1), -1] = True
        keep = ~drop
        rows[start:stop] = found[keep].reshape(-1, k)
        sims[start:stop] = scores[keep].reshape(-1, k)
        if progress is not None:
            progress(stop, n)
    sims[rows < 0] = -np.inf
    return rows, sims


_BLOCK_CANDIDATES_BYTES = 2 << 30  # above, the IVF index answers row by row instead


def _block_graph(
    unit: np.ndarray,
    k: int,
    lists: int,
    probes: int,
    progress: Callable[[int, int], None] | None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """`neighbour_graph` as an IVF search with `probes` of `lists` lists per row, computed
    list by list: every row lives in the list of its nearest k-means centre, and each list's
    members are compared with all the rows that probe it in one matrix product (FAISS's
    `knn`, BLAS), then each row's candidates from its lists are merged. The same answers as
    IVF-Flat's search (float32 products of the stored rows) in a third of the time: at 1M x
    768 with 2 probes 45 s against 123 s, as it scans through BLAS rather than row by row."""
    faiss = faiss_module()
    n, dim = unit.shape
    kmeans = faiss.Kmeans(dim, lists, niter=10, seed=seed, spherical=True, verbose=False)
    kmeans.train(training_rows(unit, 64 * lists, seed))
    centres = faiss.IndexFlatIP(dim)
    centres.add(kmeans.centroids)
    probed = np.empty((n, probes), np.int64)  # each row's nearest centres, its own first
    for start in range(0, n, CHUNK):
        _, probed[start : start + CHUNK] = centres.search(f32(unit[start : start + CHUNK]), probes)
    home = probed[:, 0]
    members = np.argsort(home, kind="stable")
    member_starts = np.searchsorted(home[members], np.arange(lists + 1))
    slots = np.argsort(probed.ravel(), kind="stable")  # (row, probe) slots by list
    slot_starts = np.searchsorted(probed.ravel()[slots], np.arange(lists + 1))
    found = np.full((n * probes, k + 1), -1, np.int64)
    sims = np.full((n * probes, k + 1), -np.inf, np.float32)
    for lst in range(lists):
        mine = members[member_starts[lst] : member_starts[lst + 1]]
        asking = slots[slot_starts[lst] : slot_starts[lst + 1]]
        if len(mine) and len(asking):
            m = min(k + 1, len(mine))
            scores, at = faiss.knn(
                f32(unit[asking // probes]), f32(unit[mine]), m, metric=faiss.METRIC_INNER_PRODUCT
            )
            found[asking, :m] = mine[at]
            sims[asking, :m] = scores
        if progress is not None and (lst % 64 == 63 or lst == lists - 1):
            progress(int(member_starts[lst + 1]), n)
    found = found.reshape(n, probes * (k + 1))
    sims = sims.reshape(n, probes * (k + 1))
    sims[found == np.arange(n)[:, None]] = -np.inf  # not its own neighbour
    sims[found < 0] = -np.inf
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    rows_out = np.take_along_axis(found, top, axis=1)
    sims_out = np.take_along_axis(sims, top, axis=1)
    rows_out[~np.isfinite(sims_out)] = -1
    return rows_out, sims_out


def nearest_in(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For every row of `queries`, its `k` nearest rows of `base` (unit vectors both) and
    their cosine similarities, nearest first (-1 pads a row with fewer): exact up to
    `EXACT_GRAPH_LIMIT` rows of `base`, through an IVF index above."""
    index = _graph_index(base)
    k = min(k, len(base))
    rows = np.empty((len(queries), k), np.int64)
    sims = np.empty((len(queries), k), np.float32)
    chunk = 16384
    for start in range(0, len(queries), chunk):
        stop = min(start + chunk, len(queries))
        sims[start:stop], rows[start:stop] = index.search(f32(queries[start:stop]), k)
    sims[rows < 0] = -np.inf
    return rows, sims


def _graph_index(unit: np.ndarray, probes: int | None = None, shape: IvfShape | None = None) -> Any:
    """An index over `unit` for searches of every row at once: exact up to
    `EXACT_GRAPH_LIMIT` rows, IVF above (`shape`: lists and probes; the size's usual ones
    by default)."""
    faiss = faiss_module()
    if len(unit) <= EXACT_GRAPH_LIMIT:
        index: Any = faiss.IndexFlatIP(unit.shape[1])
        index.add(f32(unit))
        return index
    shape = shape or IvfShape.for_size(len(unit))
    index = ivf_index(unit, None, shape)
    index.nprobe = min(probes or shape.probes, shape.lists)
    return index


def build_ann(
    store: Store, ctx: JobContext, dataset_id: int, model: str, path: Path
) -> dict[str, Any]:
    """The index job: an IVF index of the model's vectors, saved at `path` with the version of
    the vectors it holds (a later change of the vectors makes it stale)."""
    ctx.phase(f"loading {model} vectors")
    version = vector_rows.version(store, dataset_id, model)
    ids, unit = vector_rows.unit_vectors(store, dataset_id, model)
    if len(ids) < 2:
        raise InvalidInput(f"an index needs at least 2 vectors; there are {len(ids)}")
    shape = IvfShape.for_size(len(ids))
    ctx.phase(f"training {shape.lists} lists and adding {len(ids)} vectors")
    ctx.check_cancelled()
    index = AnnIndex.build(ids, unit, {"model": model, "version": list(version or ())})
    ctx.check_cancelled()
    index.save(path)
    return index.info
