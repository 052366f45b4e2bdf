"""Analyses over a dataset's nearest-neighbour graph, each a job writing per-sample fields:

- duplicates: exact copies by content hash (only files whose size is shared with another file
  are read and hashed), and near-duplicates by cosine similarity of their vectors ≥ a
  threshold; both kinds of pair join samples into connected groups (`duplicate_group`).
- uniqueness: mean cosine distance to the `k` nearest neighbours, divided by the dataset's
  largest such mean, so the most isolated sample scores 1 and an exact copy scores ~0.

The default near-duplicate threshold, 0.95, is a cosine similarity of DINOv2 CLS vectors:
re-encoded, resized or slightly cropped copies of a photo stay above it, while different
photos of the same scene (a burst, a video's frames seconds apart) mostly fall below it.
Measure it on your own data with `bench/duplicates.py --model <weights>`, which prints the
similarity of re-encoded copies against that of the closest distinct images.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from visor.embedding.models import random_weights_warning, with_weights_warning
from visor.errors import InvalidInput, VisorError
from visor.services.grouping import (
    default_threshold,
    duplicate_groups,
    lookalike_clusters,
    similarity_summary,
)
from visor.services.jobs import JobContext
from visor.services.neighbours import GRAPH_NEIGHBOURS, dataset_graph
from visor.sources import Source
from visor.store import Store
from visor.store import analyses as analysis_rows
from visor.store import embeddings as vector_rows
from visor.store import samples as sample_rows

DEFAULT_UNIQUENESS_K = 5
REPORT_GROUPS = 20
REPORT_CLUSTERS = 200  # look-alike clusters kept with a run, largest first
REPORT_CLUSTER_SIZE = 50
CLOSEST_PAIRS = 20  # kept with a run: the pairs to look at when no group stands out


def check_threshold(threshold: float | None) -> float | None:
    """A cosine similarity from 0.5 to 1, or None: the model's default."""
    if threshold is None:
        return None
    if not 0.5 <= threshold <= 1.0:
        raise InvalidInput(f"threshold {threshold}: use a cosine similarity from 0.5 to 1")
    return float(threshold)


def check_uniqueness_k(k: int) -> int:
    if not 1 <= k <= 100:
        raise InvalidInput(f"k={k}: use 1 to 100 neighbours for uniqueness")
    return k


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _hash_candidates(
    rows: list[tuple[int, str, int | None, str | None]], source: Source, ctx: JobContext
) -> tuple[dict[int, str], dict[int, str]]:
    """Content hashes of the samples that may have an exact copy (a size shared with another
    file, or an unknown size): (hashes by sample id, of which the ones computed now)."""
    by_size = Counter(size for _, _, size, _ in rows if size is not None)
    todo = [(i, p) for i, p, size, h in rows if (size is None or by_size[size] > 1) and h is None]
    known = {
        i: h for i, _, size, h in rows if h is not None and (size is None or by_size[size] > 1)
    }
    ctx.phase(f"hashing {len(todo)} files that share a size with another", total=len(todo))

    def read(item: tuple[int, str]) -> tuple[int, str | None]:
        # The paths the ingest's walk listed and checked; a hash shows nothing of a file.
        try:
            with source.open_listed(item[1]) as f:
                return item[0], content_hash(f.read())
        except (VisorError, OSError):  # unreadable: it cannot be an exact copy we can show
            return item[0], None

    fresh: dict[int, str] = {}
    # Local reads take microseconds: a plain loop (threads only fight over the GIL: 1M small
    # files took 85 s on 8 threads, 24 s in one); object stores answer in milliseconds, so
    # many requests go out at once.
    with ThreadPoolExecutor(max_workers=8) as pool:
        hashed = map(read, todo) if source.is_local else pool.map(read, todo)
        for done, (sample_id, digest) in enumerate(hashed, start=1):
            if digest is not None:
                fresh[sample_id] = digest
            if done % 2000 == 0 or done == len(todo):
                ctx.progress(done)
                ctx.check_cancelled()
    return {**known, **fresh}, fresh


def similar_pairs(found: np.ndarray, sims: np.ndarray, threshold: float) -> np.ndarray:
    """(m, 2) row pairs, i < j, of a neighbour graph whose similarity is ≥ threshold."""
    rows, rank = np.nonzero((sims >= threshold) & (found >= 0))
    pairs = np.sort(np.stack([rows, found[rows, rank]], axis=1), axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def find_duplicates(
    store: Store,
    ctx: JobContext,
    dataset_id: int,
    source: Source,
    *,
    model: str | None,
    threshold: float | None,
    graph: Path | None = None,
) -> dict[str, Any]:
    """The duplicates job. `model=None` looks for exact copies only; `threshold=None` takes
    the model's default (`grouping.default_threshold`); `graph`: where the vectors' neighbour
    graph is kept for the analyses that follow (`neighbours.dataset_graph`)."""
    started = time.monotonic()
    rows = analysis_rows.sizes(store, dataset_id)
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    n = len(ids)
    hashes, fresh = _hash_candidates(rows, source, ctx)
    position = {int(sample_id): pos for pos, sample_id in enumerate(ids)}
    copies = np.full(n, -1, np.int64)
    exact_edges: list[np.ndarray] = []
    by_hash: dict[str, list[int]] = {}
    for sample_id, digest in hashes.items():
        by_hash.setdefault(digest, []).append(position[sample_id])
    for label, members in enumerate(m for m in by_hash.values() if len(m) > 1):
        chain = np.asarray(sorted(members), dtype=np.int64)
        copies[chain] = label
        exact_edges.append(np.stack([chain[:-1], chain[1:]], axis=1))
    pairs = np.zeros((0, 2), np.int64)
    choice: dict[str, Any] = {}
    if model is not None:
        near_graph = dataset_graph(store, ctx, dataset_id, model, GRAPH_NEIGHBOURS, graph)
        vector_ids, found, sims = near_graph.ids, near_graph.found, near_graph.sims
        nearest = sims[:, 0] if sims.shape[1] else np.zeros(0, np.float32)
        if threshold is None:
            threshold, rule = default_threshold(model, nearest)
        else:
            rule = "given"
        choice = {
            "neighbours_reused": near_graph.reused,
            "threshold_rule": rule,
            "nearest_similarity": similarity_summary(nearest),
            "closest_pairs": closest_pairs(
                found, sims, vector_ids, analysis_rows.splits(store, dataset_id)
            ),
        }
        near = similar_pairs(found, sims, threshold)
        to_position = np.searchsorted(ids, vector_ids)  # both ascending
        pairs = to_position[near] if len(near) else pairs
    ctx.phase("grouping")
    order = np.asarray([position[i] for i in analysis_rows.keep_order(store, dataset_id)])
    leader = duplicate_groups(n, pairs, order, copies)
    in_group = np.flatnonzero(leader >= 0)
    # Groups numbered 1, 2, ... in order of their smallest sample id.
    numbers: dict[int, int] = {}
    for pos in in_group.tolist():
        numbers.setdefault(int(leader[pos]), len(numbers) + 1)
    group_ids = ids[in_group]
    groups = np.asarray([numbers[int(leader[p])] for p in in_group], dtype=np.int64)
    group_hashes: dict[int, set[str | None]] = {}
    for sample_id, group in zip(group_ids.tolist(), groups.tolist(), strict=True):
        group_hashes.setdefault(group, set()).add(hashes.get(sample_id))
    exact_groups = sum(1 for h in group_hashes.values() if len(h) == 1 and None not in h)
    clusters = _lookalikes(ids, lookalike_clusters(n, np.concatenate([pairs, *exact_edges])))
    n_groups = len(numbers)
    summary: dict[str, Any] = {
        "groups": n_groups,
        "exact_groups": exact_groups,
        "samples_in_groups": len(group_ids),
        "removable": len(group_ids) - n_groups,
        "near_pairs": len(pairs),
        "hashed": len(fresh),
        **choice,
        "lookalike_clusters": len(clusters),
        "samples_in_lookalike_clusters": sum(len(c) for c in clusters),
        "lookalikes": clusters[:REPORT_CLUSTERS],
        "seconds": round(time.monotonic() - started, 2),
    }
    if model is not None and len(group_ids) > n / 2:
        summary["threshold_warning"] = (
            f"{len(group_ids)} of {n} samples are in duplicate groups at threshold "
            f"{threshold}: the threshold is probably too low for {model} (see the "
            "nearest-neighbour similarities and choose one above the bulk of them)"
        )
    params = {"model": model, "threshold": threshold if model else None}
    if random_weights_warning(model):
        # Random vectors make distinct images near-identical: no advice to delete anything.
        summary["removable"] = None
    analysis_rows.save_duplicates(
        store,
        dataset_id,
        hashed_ids=np.asarray(list(fresh), dtype=np.int64),
        hashes=list(fresh.values()),
        group_ids=group_ids,
        groups=groups,
        model=model,
        params=params,
        summary=summary,
        job_id=ctx.job.id,
    )
    return with_weights_warning({**params, **summary})


def closest_pairs(
    found: np.ndarray,
    sims: np.ndarray,
    ids: np.ndarray,
    splits: dict[int, str | None],
    limit: int = CLOSEST_PAIRS,
) -> list[dict[str, Any]]:
    """The most similar pairs of the neighbour graph (`found`, `sims`: rows into `ids`),
    whatever the threshold: those across splits first (a leak if they are copies), then by
    similarity. What a user looks at when no group stands out."""
    n, k = found.shape
    if not n or not k:
        return []
    rows = np.repeat(np.arange(n), k)
    cols, scores = found.reshape(-1), sims.reshape(-1)
    valid = (cols >= 0) & (cols != rows)
    a, b = np.minimum(rows, cols)[valid], np.maximum(rows, cols)[valid]
    scores = scores[valid]
    order = np.argsort(-scores, kind="stable")
    _, first = np.unique((a * n + b)[order], return_index=True)  # each pair once
    top = order[np.sort(first)][: limit * 10]  # the closest, most similar first
    pairs = [(int(ids[a[i]]), int(ids[b[i]]), float(scores[i])) for i in top]
    pairs.sort(key=lambda p: (splits.get(p[0]) == splits.get(p[1]), -p[2]))
    return [
        {
            "a": i,
            "b": j,
            "similarity": round(sim, 6),
            "splits": [splits.get(i), splits.get(j)],
            "cross_split": splits.get(i) != splits.get(j),
        }
        for i, j, sim in pairs[:limit]
    ]


def duplicates_report(
    store: Store, dataset_id: int, *, offset: int = 0, limit: int = 100
) -> dict[str, Any]:
    """One page of the last run's duplicate groups, largest first; the run (with a warning
    over random weights); its look-alike clusters with their samples' paths."""
    total, groups = analysis_rows.duplicate_groups(store, dataset_id, offset=offset, limit=limit)
    run = analysis_rows.last_run(store, dataset_id, "duplicates")
    clusters: list[list[int]] = run["summary"].pop("lookalikes", []) if run else []
    pairs: list[dict[str, Any]] = run["summary"].get("closest_pairs", []) if run else []
    wanted = [i for c in clusters for i in c] + [i for p in pairs for i in (p["a"], p["b"])]
    names = sample_rows.paths_of(store, dataset_id, wanted)
    for pair in pairs:
        pair["paths"] = [names.get(pair["a"]), names.get(pair["b"])]
    lookalikes = [
        {
            "cluster": number,
            "size": len(members),
            "samples": [{"sample_id": i, "path": names.get(i)} for i in members],
        }
        for number, members in enumerate(clusters, start=1)
    ]
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "run": with_weights_warning(run) if run else None,
        "groups": groups,
        # Similar-looking images joined through each other: clusters, not duplicates.
        "lookalikes": lookalikes,
        # The most similar pairs whatever the threshold, those across splits first.
        "closest_pairs": pairs,
    }


def _lookalikes(ids: np.ndarray, labels: np.ndarray) -> list[list[int]]:
    """Look-alike clusters as lists of sample ids, largest first (then by smallest id), each
    cut to its first `REPORT_CLUSTER_SIZE` members."""
    joined = np.flatnonzero(labels >= 0)
    clusters: dict[int, list[int]] = {}
    for pos in joined.tolist():
        clusters.setdefault(int(labels[pos]), []).append(int(ids[pos]))
    ordered = sorted(clusters.values(), key=lambda c: (-len(c), c[0]))
    return [c[:REPORT_CLUSTER_SIZE] for c in ordered]


def uniqueness_from(sims: np.ndarray) -> np.ndarray:
    """Uniqueness from each row's similarities to its nearest rows (a neighbour graph's)."""
    if sims.shape[1] == 0:
        return np.ones(len(sims), dtype=np.float32)
    valid = np.isfinite(sims)
    distance = np.where(valid, 1.0 - sims, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    distance = np.clip(distance, 0.0, None)
    top = float(distance.max())
    return (distance / top if top > 0 else np.zeros_like(distance)).astype(np.float32)


def compute_uniqueness(
    store: Store,
    ctx: JobContext,
    dataset_id: int,
    *,
    model: str,
    k: int,
    graph: Path | None = None,
) -> dict[str, Any]:
    """The uniqueness job (also the last phase of a map job); `graph` as for duplicates."""
    started = time.monotonic()
    count = vector_rows.version(store, dataset_id, model)
    if count is None or count[0] < 2:
        n = count[0] if count else 0
        raise InvalidInput(f"uniqueness needs at least 2 embedded samples; this dataset has {n}")
    near = dataset_graph(store, ctx, dataset_id, model, k, graph)
    ids, scores = near.ids, uniqueness_from(near.sims)
    summary = {
        "samples": len(ids),
        "neighbours_reused": near.reused,
        "median": round(float(np.median(scores)), 4),
        "seconds": round(time.monotonic() - started, 2),
    }
    analysis_rows.save_uniqueness(
        store,
        dataset_id,
        ids,
        scores,
        model=model,
        params={"k": k},
        summary=summary,
        job_id=ctx.job.id,
    )
    return with_weights_warning({"model": model, "k": k, **summary})
