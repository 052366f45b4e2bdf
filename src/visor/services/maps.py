"""2D maps of a dataset's vectors: UMAP (default), PCA or t-SNE, as a job with progress by
phase (reducing, neighbours, layout epochs).

Vectors are L2-normalised first, so Euclidean distances rank like cosine distances; UMAP and
t-SNE start from a PCA to `pca_dims` dimensions when the vectors are wider (much faster, and
DINOv2's neighbourhoods survive it).
"""

from __future__ import annotations

import functools
import io
import json
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from visor.embedding.models import with_weights_warning
from visor.errors import InvalidInput, NotFound
from visor.services.jobs import JobContext
from visor.services.memory import PointsCache
from visor.services.search import nearest_in, neighbour_graph, unit_rows
from visor.store import Store
from visor.store import embeddings as vector_rows
from visor.store import maps as map_rows
from visor.store import objects as object_rows

MIN_POINTS = 3


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None


_PCA_DIMS = Param(int, 50, 0, 1024)
_SEED = Param(int, None, 0, 2**31 - 1)
METHODS: dict[str, dict[str, Param]] = {
    "umap": {
        "n_neighbors": Param(int, 15, 2, 200),
        "min_dist": Param(float, 0.1, 0.0, 1.0),
        "n_epochs": Param(int, None, 10, 5000),
        "pca_dims": _PCA_DIMS,
        "random_state": _SEED,
        # above this many points the layout is fitted on a sample of them and the others
        # placed among their nearest fitted points (`_umap`)
        "fit_sample": Param(int, 200_000, 1_000, 100_000_000),
    },
    "pca": {"random_state": _SEED},
    "tsne": {
        "perplexity": Param(float, 30.0, 2.0, 100.0),
        "max_iter": Param(int, 1000, 250, 10_000),
        "pca_dims": _PCA_DIMS,
        "random_state": _SEED,
    },
}


def check_params(method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated parameters with defaults filled in; values may be strings (`k=v` on the CLI)."""
    if method not in METHODS:
        raise InvalidInput(f"method {method!r}: use one of {', '.join(METHODS)}")
    spec = METHODS[method]
    given = dict(params or {})
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise InvalidInput(
            f"parameter {unknown[0]!r} is not a {method} parameter (known: {', '.join(spec)})"
        )
    checked: dict[str, Any] = {}
    for name, p in spec.items():
        raw = given.get(name)
        if raw is None or raw == "":
            checked[name] = p.default
            continue
        try:
            number = float(raw)
            value = int(number) if p.kind is int else number
            if value != number:  # 2.5 for an int parameter
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidInput(f"parameter {name}={raw!r}: expected {p.kind.__name__}") from None
        if (p.low is not None and value < p.low) or (p.high is not None and value > p.high):
            raise InvalidInput(f"parameter {name}={value}: use {p.low} to {p.high}")
        checked[name] = value
    return checked


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """`["n_neighbors=30", "min_dist=0.2"]` → a dict (the CLI's `--param k=v`)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {pair!r}: write it as name=value")
        out[key.strip()] = value.strip()
    return out


def compute_map(
    vectors: np.ndarray, method: str, params: dict[str, Any], ctx: JobContext | None = None
) -> np.ndarray:
    """(n, 2) float32 coordinates for (n, d) vectors."""
    n = len(vectors)
    if n < MIN_POINTS:
        raise InvalidInput(
            f"a map needs at least {MIN_POINTS} embedded samples; this dataset has {n}"
        )
    if not np.isfinite(vectors).all():
        raise InvalidInput("the vectors contain NaN or infinite values")
    x = vectors.astype(np.float32, copy=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    seed = params.get("random_state")
    if method == "pca":
        _phase(ctx, "reducing to 2 dimensions (PCA)")
        return _pca(x, 2, seed)
    dims = int(params.get("pca_dims") or 0)
    if dims and x.shape[1] > dims and n > dims:
        _phase(ctx, f"reducing {x.shape[1]} to {dims} dimensions (PCA)")
        x = _pca(x, dims, seed)
    if method == "tsne":
        from sklearn.manifold import TSNE

        _phase(ctx, "t-SNE layout")
        tsne = TSNE(
            n_components=2,
            perplexity=min(float(params["perplexity"]), (n - 1) / 3),
            max_iter=int(params["max_iter"]),
            init="pca",
            random_state=seed,
        )
        return np.asarray(tsne.fit_transform(x), dtype=np.float32)
    return _umap(x, params, ctx)


def _pca(x: np.ndarray, dims: int, seed: int | None) -> np.ndarray:
    from sklearn.decomposition import PCA

    dims = min(dims, x.shape[1], len(x))
    return np.asarray(PCA(n_components=dims, random_state=seed).fit_transform(x), np.float32)


def _umap(x: np.ndarray, params: dict[str, Any], ctx: JobContext | None) -> np.ndarray:
    """UMAP's layout of `x`. Above `fit_sample` points it is fitted on a seeded random sample
    of that many, and every other point is placed at the weighted mean of its nearest fitted
    points (`_place`): the layout's cost grows with the sample, not the dataset (1M points:
    a 200K-point fit and one neighbour search for the rest)."""
    n = len(x)
    fit = int(params.get("fit_sample") or n)
    if n <= fit:
        return _umap_fit(x, params, ctx)
    seed = params.get("random_state")
    chosen = np.sort(np.random.default_rng(seed or 0).choice(n, fit, replace=False))
    placed = np.ones(n, bool)
    placed[chosen] = False
    coords = np.empty((n, 2), np.float32)
    _phase(ctx, f"fitting the layout on {fit:,} of the {n:,} points")
    coords[chosen] = _umap_fit(x[chosen], params, ctx)
    rest = np.flatnonzero(placed)
    _phase(ctx, f"placing the other {len(rest):,} points among their nearest fitted ones")
    k = min(int(params["n_neighbors"]), fit)
    coords[rest] = _place(unit_rows(x[chosen]), coords[chosen], unit_rows(x[rest]), k)
    return coords


def _place(base: np.ndarray, layout: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """2-D places for `queries`: the mean of their `k` nearest `base` rows' places in
    `layout`, weighted as UMAP weighs a neighbourhood (exp(-(d - d_nearest) / s), s the
    mean distance beyond the nearest): a point among its neighbours, close to the nearest."""
    rows, sims = nearest_in(base, queries, k)
    found = rows >= 0  # an IVF search may find fewer than k
    dist = np.sqrt(np.clip(2.0 - 2.0 * np.where(found, sims, 1.0), 0.0, None))
    beyond = dist - dist[:, :1]
    count = np.maximum(found.sum(axis=1, keepdims=True), 1)
    sigma = np.maximum((beyond * found).sum(axis=1, keepdims=True) / count, 1e-6)
    weights = np.exp(-beyond / sigma) * found
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    picked = layout[np.clip(rows, 0, None)]
    return np.einsum("nk,nkd->nd", weights, picked).astype(np.float32)


@functools.cache
def _umap_learn() -> ModuleType:
    """umap-learn, its numba functions cached on disk (beside them, or numba's cache folder):
    compiled once on a machine rather than in every process, ~15 s on 2 cores even for a map
    of 100 points (each `visor map` without a server is a new process)."""
    import umap
    from numba.core.registry import CPUDispatcher

    for module in (umap.umap_, umap.layouts, umap.spectral, umap.utils, umap.sparse):
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher):
                try:
                    value.enable_caching()
                except RuntimeError:  # no folder numba may write to: compiled per process
                    return umap
    return umap


def _umap_fit(x: np.ndarray, params: dict[str, Any], ctx: JobContext | None) -> np.ndarray:
    umap = _umap_learn()
    n = len(x)
    k = min(int(params["n_neighbors"]), n - 1)
    seed = params.get("random_state")
    _phase(ctx, f"finding {k} neighbours of each point")
    started = time.monotonic()
    x = unit_rows(x)  # after PCA: cosine neighbourhoods, as everywhere else
    knn = _knn(x, k)
    _phase(ctx, f"layout epochs (neighbours took {time.monotonic() - started:.1f} s)")
    reducer = umap.UMAP(
        n_neighbors=k,
        min_dist=float(params["min_dist"]),
        n_epochs=params.get("n_epochs"),
        metric="euclidean",
        random_state=seed,
        n_jobs=1 if seed is not None else -1,  # a seed makes UMAP single-threaded anyway
        precomputed_knn=knn,
        init=_init(n, k),
        tqdm_kwds={"disable": ctx is None, "file": _EpochReport(ctx), "bar_format": "{n}/{total}"},
    )
    with warnings.catch_warnings():  # "no search index: cannot transform new data": expected
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def _init(n: int, k: int) -> str:
    """UMAP's starting layout. Spectral needs more points than neighbours to be stable; from
    10K points the PCA start is used instead: at 100K it saved 22 s of a 53 s layout with the
    same trustworthiness (0.915 both, bench/maps.py data)."""
    if n <= 2 * k + 2:
        return "random"
    return "spectral" if n < 10_000 else "pca"


def _knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's k-nearest-neighbour input (each point first, as its own neighbour): indices and
    Euclidean distances of the unit rows of `x`, from FAISS (exact up to 10K points, IVF above)
    instead of UMAP's NN-descent, which was most of the time of a 100K-point map here."""
    rows, sims = neighbour_graph(x, k - 1)
    own = np.arange(len(x), dtype=np.int64)[:, None]
    indices = np.concatenate([own, rows], axis=1)
    distances = np.sqrt(np.clip(2.0 - 2.0 * sims, 0.0, None))
    distances[rows < 0] = np.inf
    return indices, np.concatenate([np.zeros((len(x), 1), np.float32), distances], axis=1)


class _EpochReport(io.StringIO):
    """Receives UMAP's epoch counter (tqdm with bar_format "{n}/{total}") as job progress;
    raising here when the job is cancelled stops the layout between epochs."""

    _COUNT = re.compile(r"(\d+)/(\d+)")

    def __init__(self, ctx: JobContext | None) -> None:
        super().__init__()
        self.ctx = ctx

    def write(self, text: str) -> int:
        found = self._COUNT.findall(text)
        if found and self.ctx is not None:
            done, total = found[-1]
            self.ctx.progress(int(done), int(total))
            self.ctx.check_cancelled()
        return len(text)


def make_map(
    store: Store,
    ctx: JobContext,
    dataset_id: int,
    model: str,
    method: str,
    params: dict[str, Any],
    *,
    objects: bool = False,
) -> dict[str, Any]:
    """The map job: load the vectors, lay them out, store the map as the dataset's default.
    With `objects`, the box vectors: a point per box."""
    _phase(ctx, f"loading {model} {'box ' if objects else ''}vectors")
    label_ids = None
    if objects:
        found = object_rows.vectors(store, dataset_id, model)
        ids, vectors, label_ids = found.sample_ids, found.vectors, found.label_ids
    else:
        ids, vectors = vector_rows.vectors(store, dataset_id, model)
    started = time.monotonic()
    xy = compute_map(vectors, method, params, ctx)
    seconds = round(time.monotonic() - started, 2)
    map_id = map_rows.save(
        store,
        dataset_id,
        model=model,
        method=method,
        params=params,
        ids=ids,
        xy=xy,
        job_id=ctx.job.id,
        seconds=seconds,
        label_ids=label_ids,
    )
    return with_weights_warning(
        {
            "map_id": map_id,
            "points": len(ids),
            "objects": objects,
            "method": method,
            "model": model,
            "seconds": seconds,
        }
    )


def _phase(ctx: JobContext | None, message: str) -> None:
    if ctx is not None:
        ctx.phase(message)
        ctx.check_cancelled()


def points_stream(table: pa.Table) -> bytes:
    """A map's points (sample_id, x, y, split, class, tag) as an Arrow IPC stream: one record
    batch of `sample_id` int32, `x`, `y` float32, and `class` uint16, `split` uint8, `tag`
    uint16 codes into the legends kept as JSON in the schema metadata (`visor:legend`; 0 =
    none); a map of objects also has `label_id` int32 (the box of each point). 17 bytes a
    point (21 for objects)."""
    classes, class_codes = _codes(table.column("class"))
    splits, split_codes = _codes(table.column("split"))
    tags, tag_codes = _codes(table.column("tag"))
    legend = {"class": [None, *classes], "split": [None, *splits], "tag": [None, *tags]}
    out = pa.table(
        {
            "sample_id": table.column("sample_id").cast(pa.int32()),
            "x": table.column("x").cast(pa.float32()),
            "y": table.column("y").cast(pa.float32()),
            "class": pa.array(class_codes.astype(np.uint16)),
            "split": pa.array(split_codes.astype(np.uint8)),
            "tag": pa.array(tag_codes.astype(np.uint16)),
            **(
                {"label_id": table.column("label_id").cast(pa.int32())}
                if "label_id" in table.column_names
                else {}
            ),
        }
    )
    return _stream(out, legend)


def with_tags(body: bytes, tags: pa.ChunkedArray) -> bytes:
    """`points_stream`'s bytes with their tag codes and legend made from `tags` (each point's
    first tag, in the points' order), the rest as it was: after a write of tags alone, at 1M
    points one column to read and encode rather than six."""
    table = pa.ipc.open_stream(body).read_all()
    legend = json.loads(table.schema.metadata[b"visor:legend"])
    names, codes = _codes(tags)
    legend["tag"] = [None, *names]
    at = table.schema.get_field_index("tag")
    return _stream(table.set_column(at, "tag", pa.array(codes.astype(np.uint16))), legend)


def _stream(table: pa.Table, legend: dict[str, list[str | None]]) -> bytes:
    table = table.replace_schema_metadata({"visor:legend": json.dumps(legend)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=len(table) or None)
    return bytes(sink.getvalue().to_pybytes())


def _codes(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """Sorted distinct values and 1-based codes per row (0 where null)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    names = encoded.dictionary.to_pylist()
    order = np.argsort(np.asarray(names, dtype=object)) if names else np.zeros(0, np.int64)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(encoded.is_null())
    codes = np.zeros(len(encoded), dtype=np.int64)
    codes[valid] = rank[indices[valid].astype(np.int64)] + 1
    return [names[i] for i in order], codes


def map_row(store: Store, dataset: dict[str, Any], map_id: int | None) -> dict[str, Any]:
    """One map, or the default one, with a `warning` when its vectors came from random
    weights."""
    if map_id is None:
        rows = map_rows.list_maps(store, dataset["id"])
        found = next((m for m in rows if m["is_default"]), None)
        if found is None:
            raise NotFound(f"dataset {dataset['name']!r} has no map yet (run visor map)")
        return with_weights_warning(found)
    row = map_rows.get(store, dataset["id"], map_id)
    if row is None:
        raise NotFound(f"map {map_id} not found in dataset {dataset['name']!r}")
    return with_weights_warning(row)


def cached_points(
    store: Store, cache: PointsCache, dataset: dict[str, Any], map_id: int | None
) -> tuple[bytes, int]:
    """A map's points as Arrow IPC bytes (see `points_stream`) and their number. Kept in
    memory until a write changes the dataset's tags or labels (`PointsCache.changed`: an
    operation's `ctx.changed`): at 1M points reading them takes ~0.5 s and encoding ~0.35 s,
    more while other requests run. After writes of tags alone only the tags are read again
    (`with_tags`)."""
    found = map_row(store, dataset, map_id)
    number, objects = int(found["id"]), bool(found["objects"])
    writes, labels = cache.version(dataset["id"])
    key = (dataset["id"], number, writes)
    kept = cache.get(key)
    if kept is None:
        with cache.encoding:  # one at a time: a second asker waits for the first's bytes
            kept = cache.get(key)
            if kept is None:
                before = cache.made_before(dataset["id"], number, labels)
                if before is not None:
                    tags = map_rows.point_tags(store, dataset["id"], number, objects=objects)
                    body = with_tags(before, tags)
                else:
                    table = map_rows.points(store, dataset["id"], number, objects=objects)
                    body = points_stream(table)
                kept = (labels, body)
                cache.put(key, kept)
    return kept[1], int(found["num_points"])
