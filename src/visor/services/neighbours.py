"""Every sample's nearest neighbours, searched once per version of a model's vectors and
shared by the analyses that need them (duplicates, uniqueness, the map's uniqueness phase).

The graph (each sample's `GRAPH_NEIGHBOURS` nearest and their cosine similarities) is kept on
disk beside the vectors' version (count and newest row): a later analysis of the same vectors
reads it instead of searching again; embedding more images makes it stale. Vectors are read
as float16 unit vectors (`store.embeddings.unit_vectors`) and searched list by list
(`search._block_graph`): at 1M x 768 the float16 rows (1.5 GB) and the candidates are all it
holds, where float32 copies of the vectors, their unit rows and an IVF-Flat index took 9 GB.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visor.services.ivf import IvfShape
from visor.services.jobs import JobContext
from visor.services.search import EXACT_GRAPH_LIMIT, neighbour_graph
from visor.store import Store
from visor.store import embeddings as vector_rows

GRAPH_NEIGHBOURS = 16  # near-duplicate pairs are looked for among each sample's 16 nearest
# IVF lists scanned per sample on large datasets: close pairs share a list or a neighbouring
# one. Measured at 100K x 768 (bench/duplicates.py): 4 lists (1,300 vectors) find 99.998% of
# the pairs ≥ 0.95 that 13 (the single-query setting) find, in 27 s instead of 77 s.
GRAPH_PROBES = 4
# At least this many vectors scanned per sample, in at least 2 lists: at 1M (lists of 1,000)
# 2 lists found 99.8% of the pairs ≥ 0.95 and all ≥ 0.99 that 16 lists find (bench/scale.py
# data), in half the time of 4.
GRAPH_SCANNED = 1300


def graph_probes(n: int) -> int:
    """Lists scanned per sample in a graph of n vectors (`GRAPH_SCANNED`, 2 to 4 lists)."""
    shape = IvfShape.for_size(n)
    return max(2, min(GRAPH_PROBES, math.ceil(GRAPH_SCANNED * shape.lists / max(n, 1))))


@dataclass(frozen=True)
class Graph:
    """Sample ids (ascending); for each, the rows (into `ids`) of its nearest others and their
    cosine similarities, nearest first (row -1 and similarity -inf where there are fewer)."""

    ids: np.ndarray
    found: np.ndarray
    sims: np.ndarray
    reused: bool = False

    def first(self, k: int) -> Graph:
        """The graph of each sample's `k` nearest (the first k columns: the same answer a
        search for k gives, as the search ranks them)."""
        return Graph(self.ids, self.found[:, :k], self.sims[:, :k], self.reused)


def dataset_graph(
    store: Store,
    ctx: JobContext,
    dataset_id: int,
    model: str,
    k: int = GRAPH_NEIGHBOURS,
    path: Path | None = None,
) -> Graph:
    """The neighbour graph of `model`'s vectors with at least `k` neighbours per sample: read
    from `path` when it holds this version of the vectors and enough neighbours, else
    searched (and written there)."""
    version = vector_rows.version(store, dataset_id, model)
    wanted = max(k, GRAPH_NEIGHBOURS)
    if path is not None and version is not None:
        kept = _read(path, version, k)
        if kept is not None:
            ctx.phase(f"reusing the nearest neighbours of {len(kept.ids):,} {model} vectors")
            return kept.first(k)
    ctx.phase(f"loading {model} vectors")
    # float16 where memory matters; below, the exact search's answers to the last bit
    small = version is None or version[0] <= EXACT_GRAPH_LIMIT
    ids, unit = vector_rows.unit_vectors(
        store, dataset_id, model, np.float32 if small else np.float16
    )
    ctx.phase(f"finding each sample's {wanted} nearest neighbours", total=len(ids))
    found, sims = neighbour_graph(unit, wanted, ctx.progress, probes=graph_probes(len(ids)))
    del unit
    graph = Graph(ids, found, sims)
    if path is not None and version is not None:
        _write(path, version, graph)
    return graph.first(k)


def _read(path: Path, version: tuple[int, int], k: int) -> Graph | None:
    try:
        with np.load(path) as kept:
            ids = kept["ids"]
            enough = kept["found"].shape[1] >= min(k, len(ids) - 1)
            if tuple(kept["version"].tolist()) != version or not enough:
                return None
            return Graph(ids, kept["found"].astype(np.int64), kept["sims"], reused=True)
    except (OSError, ValueError, KeyError):  # none yet, or unreadable: searched again
        return None


def _write(path: Path, version: tuple[int, int], graph: Graph) -> None:
    """Atomically: a reader never sees half a graph."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        version=np.asarray(version, np.int64),
        ids=graph.ids,
        found=graph.found.astype(np.int32),
        sims=graph.sims,
    )
    os.replace(tmp, path)
