"""Which vectors a dataset has, and which search serves them: the model commands use when
given none, the refusal when there are none, and the exact or ANN index of a model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visor.config import Settings
from visor.errors import Conflict
from visor.services.search import AnnIndex, IndexCache, Searcher, VectorIndex
from visor.store import Store
from visor.store import embeddings as vector_rows


def default_model(store: Store, row: dict[str, Any]) -> str:
    """The model the dataset has vectors from (the most recently embedded one when several);
    Conflict when it has none (`VISOR_MODEL` is the default of `embed` alone)."""
    found = vector_rows.models_newest_first(store, row["id"], row["name"])
    if not found:
        raise Conflict(
            f"dataset {row['name']!r} has no vectors yet: run embed first "
            f"(visor embed {row['name']})"
        )
    return found[0]


def version(store: Store, row: dict[str, Any], model: str) -> tuple[int, int]:
    """The version (count, newest) of `model`'s vectors; Conflict when there are none yet."""
    found = vector_rows.version(store, row["id"], model)
    if not found or not found[0]:
        raise Conflict(
            f"dataset {row['name']!r} has no vectors from model {model!r}: run embed first "
            f"(visor embed {row['name']} --model {model})"
        )
    return found


def ann_path(settings: Settings, dataset_id: int, model: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "._-" else "_" for c in model)[:60]
    digest = hashlib.blake2s(model.encode(), digest_size=4).hexdigest()
    return settings.home / "indexes" / str(dataset_id) / f"{slug}-{digest}.faiss"


def graph_path(settings: Settings, dataset_id: int, model: str) -> Path:
    """Where the neighbour graph of the model's vectors is kept (`services/neighbours.py`)."""
    return ann_path(settings, dataset_id, model).with_suffix(".graph.npz")


def wants_ann(store: Store, settings: Settings, dataset_id: int, model: str) -> bool:
    found = vector_rows.version(store, dataset_id, model)
    return (found[0] if found else 0) >= settings.ann_min_vectors


def searcher(
    store: Store,
    settings: Settings,
    indexes: IndexCache,
    row: dict[str, Any],
    model: str,
    rebuild: Callable[[], Any],
) -> Searcher:
    """The ANN index when the dataset is large enough and its index is current; exact
    search otherwise (a stale or missing index is rebuilt in the background: `rebuild`)."""
    current = version(store, row, model)
    if current[0] >= settings.ann_min_vectors:
        path = ann_path(settings, row["id"], model)
        if AnnIndex.is_current(AnnIndex.stored_info(path), current):
            return indexes.get((row["id"], model, "ann"), current, lambda: AnnIndex.load(path))
        rebuild()
    return indexes.get(
        (row["id"], model, "exact"),
        current,
        lambda: VectorIndex.from_vectors(*vector_rows.vectors(store, row["id"], model)),
    )


def index_status(store: Store, settings: Settings, row: dict[str, Any], model: str) -> dict:
    """Which search serves `model`'s vectors (exact or ann) and the stored index, if any."""
    current = version(store, row, model)
    info = AnnIndex.stored_info(ann_path(settings, row["id"], model))
    fresh = AnnIndex.is_current(info, current)
    return {
        "model": model,
        "vectors": current[0],
        "search": "ann" if current[0] >= settings.ann_min_vectors and fresh else "exact",
        "ann_min_vectors": settings.ann_min_vectors,
        "index": info,
        "index_current": fresh,
    }
