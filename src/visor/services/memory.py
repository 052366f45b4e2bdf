"""What a workspace keeps in memory between requests: the newest few of something (encoded
map points, lasso selections read back), safe across threads."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

from visor.errors import NotFound
from visor.store import Store
from visor.store import views as view_rows

K = TypeVar("K")
V = TypeVar("V")


class Newest(Generic[K, V]):
    """At most `limit` values, dropping the least recently used; safe across threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self._put(key, value)

    def _put(self, key: K, value: V) -> None:  # with the lock held
        self._items[key] = value
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def _drop(self, keep: Callable[[K], bool]) -> None:  # with the lock held
        for key in [k for k in self._items if not keep(k)]:
            del self._items[key]


class Selections:
    """Sets of sample ids under a random token, kept in the store (so a saved view's lasso
    survives restarts) with the newest `LIMIT` also in memory."""

    LIMIT = 32

    def __init__(self, store: Store) -> None:
        self._store = store
        self._items: Newest[str, tuple[int, np.ndarray]] = Newest(self.LIMIT)

    def add(self, dataset_id: int, ids: np.ndarray) -> str:
        token = secrets.token_hex(8)
        view_rows.add_selection(self._store, dataset_id, token, ids)
        self._items.put(token, (dataset_id, ids))
        return token

    def get(self, dataset_id: int, token: str) -> np.ndarray:
        found = self._items.get(token)
        if found is not None and found[0] == dataset_id:
            return found[1]
        stored = view_rows.selection(self._store, dataset_id, token)
        if stored is None:
            raise NotFound(
                f"selection {token!r} not found (the newest {view_rows.KEEP_SELECTIONS} of a "
                "dataset are kept, and those saved views name): select the samples again"
            )
        self._items.put(token, (dataset_id, stored))
        return stored


class PointsCache(Newest[tuple[int, int, int], tuple[int, bytes]]):
    """Encoded map points, the newest `LIMIT` maps, keyed by (dataset, map, version): a
    dataset's version counts the writes to its samples' tags and labels (`changed`). Each is
    kept with the dataset's count of writes other than tags when it was made: after writes of
    tags alone, the points made before them are what the new ones are made from (their tag
    codes read again, the rest as it was: `maps.cached_points`)."""

    LIMIT = 4

    def __init__(self) -> None:
        super().__init__(self.LIMIT)
        self._versions: dict[int, tuple[int, int]] = {}  # (every write, writes but tags)
        self.encoding = threading.Lock()

    def version(self, dataset_id: int) -> tuple[int, int]:
        """(every write, the writes other than tags) to the dataset so far."""
        with self.lock:
            return self._versions.get(dataset_id, (0, 0))

    def changed(self, dataset_id: int, tags_only: bool = False) -> None:
        with self.lock:
            writes, labels = self._versions.get(dataset_id, (0, 0))
            self._versions[dataset_id] = (writes + 1, labels + (not tags_only))
            if not tags_only:
                self._drop(lambda key: key[0] != dataset_id)

    def put(self, key: tuple[int, int, int], value: tuple[int, bytes]) -> None:
        with self.lock:
            if key[2] == self._versions.get(key[0], (0, 0))[0]:  # else a write came meanwhile
                self._drop(lambda old: old[:2] != key[:2])  # the map's older points
                self._put(key, value)

    def made_before(self, dataset_id: int, map_id: int, labels: int) -> bytes | None:
        """The map's points made before writes of tags alone (at `labels`), if kept."""
        with self.lock:
            for key, (made_at, body) in self._items.items():
                if key[:2] == (dataset_id, map_id) and made_at == labels:
                    return body
            return None
