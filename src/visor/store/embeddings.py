"""Embedding vectors and the images that could not be embedded.

Vectors live in one table per dimension, `embeddings_<d>` (a `FLOAT[d]` column has one d),
keyed by (dataset_id, sample_id, model); `embedding_models` says which table a model uses.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pyarrow as pa

from visor.errors import Conflict, InvalidInput
from visor.store.db import Store


def table_name(dim: int) -> str:
    return f"embeddings_{int(dim)}"


def model_dim(store: Store, model: str) -> int | None:
    found = store.query_one("SELECT dim FROM embedding_models WHERE name = ?", [model])
    return int(found[0]) if found else None


# Two jobs meeting a new model (or dimension) at once would both create its table: DuckDB
# refuses the second transaction (a write-write conflict on the catalog). One at a time.
_registering = threading.Lock()


def ensure_model(store: Store, model: str, dim: int) -> None:
    """Register `model` with its dimension and create its vector table if needed."""
    with _registering:
        _ensure_model(store, model, dim)


def _ensure_model(store: Store, model: str, dim: int) -> None:
    known = model_dim(store, model)
    if known is not None and known != dim:
        raise Conflict(
            f"model {model!r} gave {dim}-d vectors but the store holds {known}-d vectors under "
            "that name; delete them first (or use another model name)"
        )
    with store.transaction() as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {table_name(dim)} (dataset_id INTEGER NOT NULL, "
            f"sample_id INTEGER NOT NULL, model VARCHAR NOT NULL, vector FLOAT[{int(dim)}] "
            "NOT NULL)"
        )
        if known is None:
            cur.execute("INSERT INTO embedding_models VALUES (?, ?)", [model, dim])


def missing(store: Store, dataset_id: int, model: str, dim: int) -> list[tuple[int, str]]:
    """(sample id, path) of every sample without a vector from `model`, in id order."""
    rows = store.query(
        f"SELECT s.id, s.path FROM samples s ANTI JOIN {table_name(dim)} e "
        "ON e.dataset_id = s.dataset_id AND e.sample_id = s.id AND e.model = ? "
        "WHERE s.dataset_id = ? ORDER BY s.id",
        [model, dataset_id],
    )
    return [(int(i), str(p)) for i, p in rows]


def present(store: Store, dataset_id: int, model: str, dim: int, ids: np.ndarray) -> np.ndarray:
    """Which of the sample `ids` have a vector from `model` (a bool per id)."""
    return present_in(store, table_name(dim), "sample_id", dataset_id, model, ids)


def present_in(
    store: Store, table: str, column: str, dataset_id: int, model: str, ids: np.ndarray
) -> np.ndarray:
    """Which of `ids` (values of `column`) have a row of `model` in the vector `table`."""
    if not len(ids):
        return np.zeros(0, dtype=bool)
    cur = store.cursor()
    wanted = pa.table({"id": pa.array(np.asarray(ids, dtype=np.int64))})
    with store.registered(cur, {"_wanted": wanted}):
        rows = cur.execute(
            f"SELECT {column} FROM {table} WHERE dataset_id = ? AND model = ? "
            f"AND {column} IN (SELECT id FROM _wanted)",
            [dataset_id, model],
        ).fetchall()
    return np.isin(ids, np.asarray([r[0] for r in rows], dtype=np.int64))


def clear_errors(store: Store, dataset_id: int, model: str) -> None:
    store.cursor().execute(
        "DELETE FROM embedding_errors WHERE dataset_id = ? AND model = ?", [dataset_id, model]
    )


def write_batch(
    store: Store,
    dataset_id: int,
    model: str,
    ids: np.ndarray,
    vectors: np.ndarray,
    failed: list[tuple[int, str]],
    *,
    job_id: str | None,
    replace: bool,
) -> None:
    """Commit one batch: its vectors (replacing older ones if `replace`) and its failures."""
    n, dim = vectors.shape
    if n != len(ids):
        raise ValueError("one vector per id")
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise InvalidInput(
            f"refusing to store vectors with NaN or infinite values (samples "
            f"{ids[bad][:10].tolist()}); nothing of this batch was written"
        )
    with store.transaction() as cur:
        if n:
            table = table_name(dim)
            if replace:
                cur.execute(
                    f"DELETE FROM {table} WHERE dataset_id = ? AND model = ? "
                    "AND list_contains(?, sample_id)",
                    [dataset_id, model, ids.tolist()],
                )
            flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
            batch = pa.table(
                {
                    "dataset_id": pa.array(np.full(n, dataset_id, dtype=np.int32)),
                    "sample_id": pa.array(ids.astype(np.int32)),
                    "model": pa.array([model] * n, pa.string()),
                    "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
                }
            )
            store.insert_arrow(cur, table, batch)
        if failed:
            errors = pa.table(
                {
                    "dataset_id": pa.array([dataset_id] * len(failed), pa.int32()),
                    "sample_id": pa.array([k for k, _ in failed], pa.int32()),
                    "model": pa.array([model] * len(failed), pa.string()),
                    "job_id": pa.array([job_id] * len(failed), pa.string()),
                    "reason": pa.array([r for _, r in failed], pa.string()),
                }
            )
            store.insert_arrow(cur, "embedding_errors", errors)


def vectors(store: Store, dataset_id: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids (int64) and their vectors as an (n, d) float32 array, in id order (read in
    batches into the array: no second copy of all the rows on the way)."""
    return _read_rows(store, dataset_id, model, np.float32, unit=False)


def vectors_of(
    store: Store, dataset_id: int, model: str, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The vectors of the samples `ids` that have one (ids ascending, float32 rows)."""
    dim = model_dim(store, model)
    if dim is None:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    table = pa.table({"id": np.asarray(ids, dtype=np.int32)})
    cur = store.cursor()
    cur.register("_visor_wanted", table)
    try:
        found = cur.sql(
            f"SELECT sample_id, vector FROM {table_name(dim)} WHERE dataset_id = ? AND model = ? "
            "AND sample_id IN (SELECT id FROM _visor_wanted) ORDER BY sample_id",
            params=[dataset_id, model],
        ).to_arrow_table()
    finally:
        cur.unregister("_visor_wanted")
    rows = found.column(1).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return found.column(0).to_numpy().astype(np.int64), rows.reshape(-1, dim).astype(np.float32)


def unit_vectors(
    store: Store, dataset_id: int, model: str, dtype: type = np.float16
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids (int64, ascending) and their vectors scaled to length 1, as `dtype`: read in
    batches, so at most one batch is ever in float32 beside the result.

    float16 (the default) halves the memory of a float32 matrix and keeps the answers: on unit
    vectors its rounding error is at most 2^-11 per component, a cosine to the float32 vector
    above 0.9999 (`tests/test_scale_paths.py` measures it with the neighbours kept)."""
    return _read_rows(store, dataset_id, model, dtype, unit=True)


def _read_rows(
    store: Store, dataset_id: int, model: str, dtype: type, *, unit: bool
) -> tuple[np.ndarray, np.ndarray]:
    dim = model_dim(store, model)
    if dim is None:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=dtype)
    found = version(store, dataset_id, model)
    capacity = found[0] if found else 0
    ids = np.empty(capacity, np.int64)
    rows: np.ndarray = np.empty((capacity, dim), dtype)
    filled = 0
    for batch in store.query_batches(
        f"SELECT sample_id, vector FROM {table_name(dim)} "
        "WHERE dataset_id = ? AND model = ? ORDER BY sample_id",
        [dataset_id, model],
    ):
        n = batch.num_rows
        if filled + n > len(ids):  # rows written since the count: grow
            more = filled + n - len(ids)
            ids = np.concatenate([ids, np.empty(more, np.int64)])
            rows = np.concatenate([rows, np.empty((more, dim), dtype)])
        chunk = batch.column(1).flatten().to_numpy(zero_copy_only=False).reshape(n, dim)
        if unit:
            chunk = chunk.astype(np.float32, copy=True)
            chunk /= np.maximum(np.linalg.norm(chunk, axis=1, keepdims=True), 1e-12)
        rows[filled : filled + n] = chunk
        ids[filled : filled + n] = batch.column(0).to_numpy()
        filled += n
    return ids[:filled], rows[:filled]


def version(store: Store, dataset_id: int, model: str) -> tuple[int, int] | None:
    """Changes whenever the model's vectors in the dataset change (count, newest row)."""
    dim = model_dim(store, model)
    if dim is None:
        return None
    found = store.query_one(
        f"SELECT count(*), coalesce(max(rowid), -1) FROM {table_name(dim)} "
        "WHERE dataset_id = ? AND model = ?",
        [dataset_id, model],
    )
    return (int(found[0]), int(found[1])) if found else None


def status(store: Store, dataset_id: int) -> list[dict[str, Any]]:
    """Per model with vectors or errors in this dataset: dim, vectors, unreadable images."""
    rows: list[dict[str, Any]] = []
    for name, dim in store.query("SELECT name, dim FROM embedding_models ORDER BY name"):
        stored = store.query_one(
            f"SELECT count(*) FROM {table_name(dim)} WHERE dataset_id = ? AND model = ?",
            [dataset_id, name],
        )
        errors = store.query_one(
            "SELECT count(*) FROM embedding_errors WHERE dataset_id = ? AND model = ?",
            [dataset_id, name],
        )
        n_vectors = int(stored[0]) if stored else 0
        n_errors = int(errors[0]) if errors else 0
        if n_vectors or n_errors:
            rows.append({"model": name, "dim": int(dim), "vectors": n_vectors, "errors": n_errors})
    return rows


def models_newest_first(store: Store, dataset_id: int, dataset: str) -> list[str]:
    """The models this dataset has vectors from, the most recently embedded first (by their
    last embed job; models whose vectors came another way after those, by name)."""
    present = [row["model"] for row in status(store, dataset_id) if row["vectors"]]
    last = {
        str(model): str(when)
        for model, when in store.query(
            "SELECT params->>'model', max(coalesce(finished_at, started_at, created_at)) "
            "FROM jobs WHERE kind = 'embed' AND dataset = ? GROUP BY 1",
            [dataset],
        )
    }
    newest = sorted((m for m in present if m in last), key=lambda m: last[m], reverse=True)
    return newest + sorted(m for m in present if m not in last)


def counts(store: Store) -> dict[int, dict[str, int]]:
    """Vectors per dataset and model, for every dataset at once."""
    found: dict[int, dict[str, int]] = {}
    for (dim,) in store.query("SELECT DISTINCT dim FROM embedding_models ORDER BY dim"):
        for dataset_id, model, n in store.query(
            f"SELECT dataset_id, model, count(*) FROM {table_name(dim)} GROUP BY 1, 2"
        ):
            found.setdefault(int(dataset_id), {})[str(model)] = int(n)
    return found


def errors(store: Store, dataset_id: int, model: str, *, limit: int = 1000) -> list[dict[str, Any]]:
    return store.query_dicts(
        "SELECT e.sample_id, s.path, e.reason, e.job_id FROM embedding_errors e "
        "JOIN samples s ON s.dataset_id = e.dataset_id AND s.id = e.sample_id "
        "WHERE e.dataset_id = ? AND e.model = ? ORDER BY e.sample_id LIMIT ?",
        [dataset_id, model, limit],
    )
