"""Nearest neighbours by cosine distance over a dataset's vectors.

Exact search on an in-memory, L2-normalised float32 matrix (one matrix-vector product per
query): measured at 100K x 768 at ~7 ms a query, faster than DuckDB's array_cosine_distance
scan. The matrix is loaded once per (dataset, model) and reloaded when the vectors change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from visor.errors import InvalidInput

MAX_K = 1000


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
        unit = vectors.astype(np.float32, copy=True)
        unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
        return cls(ids.astype(np.int64), unit)

    def row_of(self, sample_id: int) -> int | None:
        pos = int(np.searchsorted(self.ids, sample_id))
        return pos if pos < len(self.ids) and self.ids[pos] == sample_id else None

    def query(
        self,
        vector: np.ndarray,
        k: int,
        *,
        exclude: int | None = None,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """The k nearest (sample id, cosine distance), nearest first; `allowed` is a sorted
        array of sample ids the answer is limited to."""
        q = vector.astype(np.float32).reshape(-1)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        scores = self.unit @ q
        keep = np.ones(len(self.ids), dtype=bool)
        if allowed is not None:
            keep &= np.isin(self.ids, allowed, assume_unique=True)
        if exclude is not None:
            row = self.row_of(exclude)
            if row is not None:
                keep[row] = False
        candidates = np.flatnonzero(keep)
        if not len(candidates):
            return []
        k = min(k, len(candidates))
        sub = scores[candidates]
        top = np.argpartition(-sub, k - 1)[:k]
        top = top[np.argsort(-sub[top], kind="stable")]
        rows = candidates[top]
        return [(int(self.ids[r]), float(1.0 - scores[r])) for r in rows]


class IndexCache:
    """One `VectorIndex` per (dataset, model), rebuilt when its `version` changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[int, str], tuple[Any, VectorIndex]] = {}

    def get(self, key: tuple[int, str], version: Any, load: Any) -> VectorIndex:
        with self._lock:
            found = self._items.get(key)
            if found is not None and found[0] == version:
                return found[1]
        index = VectorIndex.from_vectors(*load())
        with self._lock:
            self._items[key] = (version, index)
        return index
