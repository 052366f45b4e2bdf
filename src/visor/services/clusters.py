"""Density clusters on a map: HDBSCAN (fast-hdbscan) on the map's 2-D points, so the regions
it finds are the ones a person sees, each labelled by what its members share (the dominant
class and its share, a folder, split or tag most of them have) with its size, centroid,
bounds and outline.

Why the 2-D points rather than a 5-D UMAP of the vectors: the 2-D layout already exists
(the map job made it), clustering it takes 12 s at 1M points here, and its clusters are the
regions drawn on screen; a 5-D UMAP of 1M vectors alone takes longer than the map itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from visor.services.jobs import JobContext
from visor.store import Store
from visor.store import clusters as cluster_rows

MIN_SAMPLES = 10  # HDBSCAN's density estimate: the 10th neighbour (cheap at 1M points)
OUTLINE_POINTS = 48  # at most this many corners per cluster's outline
MIXED_SHARE = 0.6  # a cluster whose dominant class holds less than this mixes classes


def default_min_cluster_size(points: int) -> int:
    """1% of the points, at least 10 and at most 5,000: tens of regions, not thousands."""
    return max(10, min(points // 100, 5000))


def find_clusters(
    store: Store,
    ctx: JobContext | None,
    dataset: dict[str, Any],
    map_row: dict[str, Any],
    min_cluster_size: int | None = None,
    vocabulary: list[str] | None = None,
    compiled: Path | None = None,
) -> dict[str, Any]:
    """Cluster the map's points, label each cluster and store them (replacing the map's last
    clustering). Fewer points than the minimum cluster size: no clusters, said in `message`.
    `compiled`: where a text tower's OpenVINO conversion is kept (naming by `vocabulary`)."""
    started = time.perf_counter()
    table = cluster_rows.points(store, dataset["id"], map_row["id"])
    n = table.num_rows
    size = min_cluster_size or default_min_cluster_size(n)
    message = None
    if n < max(size, 2):
        labels = np.full(n, -1, dtype=np.int64)
        message = (
            f"map {map_row['id']} has {n} points, fewer than the minimum cluster size {size}: "
            "no clusters"
        )
    else:
        if ctx is not None:
            ctx.phase(f"finding density clusters among {n} points")
        xy = np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()]).astype(
            np.float64
        )
        labels = hdbscan(xy, size, min(MIN_SAMPLES, size))
    clusters = describe(table, labels)
    if vocabulary and clusters:
        if ctx is not None:
            ctx.phase(f"naming {len(clusters)} clusters from {len(vocabulary)} words")
        name_by_words(
            store, dataset["id"], map_row["model"], table, labels, clusters, vocabulary, compiled
        )
    noise = int((labels < 0).sum())
    run = {
        "map_id": int(map_row["id"]),
        "points": n,
        "min_cluster_size": size,
        "min_samples": min(MIN_SAMPLES, size),
        "noise": noise,
        "message": message,
    }
    label_ids = None if not map_row.get("objects") else table.column("label_id").to_numpy()
    cluster_rows.save(
        store,
        dataset["id"],
        map_row["id"],
        table.column("sample_id").to_numpy(),
        label_ids,
        labels,
        clusters,
        run,
    )
    mixed = sum(1 for c in clusters if c["mixed"])
    seconds = round(time.perf_counter() - started, 2)
    return {**run, "clusters": len(clusters), "mixing_classes": mixed, "seconds": seconds}


def hdbscan(xy: np.ndarray, min_cluster_size: int, min_samples: int) -> np.ndarray:
    """Each point's cluster (-1: noise), by fast-hdbscan (one implementation at every size,
    so a map's clusters don't change with its number of points). Its numba code is compiled
    on its first run after an install (~40 s on 2 cores; `make setup` runs it once) and
    kept in its cache after."""
    import fast_hdbscan

    found = fast_hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=min_samples
    ).fit_predict(xy)
    return np.asarray(found, dtype=np.int64)


def _shares(
    parents: np.ndarray, values: pa.Array, labels: np.ndarray, k: int
) -> list[list[tuple[str, float]]]:
    """Per cluster, its `k` most common values and the share of its members holding each
    (`parents[i]`: the point the i-th value belongs to; a point's values are distinct, as a
    sample's classes and tags are)."""
    clusters = int(labels.max()) + 1
    found: list[list[tuple[str, float]]] = [[] for _ in range(clusters)]
    if not len(values):
        return found
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    names = encoded.dictionary.to_pylist()
    codes = encoded.indices.fill_null(-1).to_numpy()
    cluster = labels[parents]
    keep = (cluster >= 0) & (codes >= 0)
    counts = np.bincount(
        cluster[keep] * len(names) + codes[keep], minlength=clusters * len(names)
    ).reshape(clusters, len(names))
    sizes = np.bincount(labels[labels >= 0], minlength=clusters)
    for c in range(clusters):
        top = np.argsort(-counts[c], kind="stable")[:k]
        found[c] = [(str(names[i]), float(counts[c, i] / sizes[c])) for i in top if counts[c, i]]
    return found


def describe(table: pa.Table, labels: np.ndarray) -> list[dict[str, Any]]:
    """Each cluster's size, centroid, bounds, outline and label (from its members' classes,
    folders, splits and tags)."""
    if not len(labels) or labels.max() < 0:
        return []
    n = table.num_rows
    every = np.arange(n)
    x, y = table.column("x").to_numpy(), table.column("y").to_numpy()
    classes = table.column("classes").combine_chunks()
    tags = table.column("tags").combine_chunks()
    folder = pc.replace_substring_regex(table.column("path"), r"/?[^/]*$", "")
    by_class = _shares(
        pc.list_parent_indices(classes).to_numpy(), pc.list_flatten(classes), labels, 3
    )
    tag_parents = pc.list_parent_indices(tags).to_numpy()
    by_tag = _shares(tag_parents, pc.list_flatten(tags), labels, 1)
    by_split = _shares(every, table.column("split"), labels, 1)
    by_folder = _shares(every, folder, labels, 1)
    everyone = np.zeros(n, dtype=np.int64)  # the whole map as one cluster: the base rates
    base = {
        "tag": dict(_shares(tag_parents, pc.list_flatten(tags), everyone, 1 << 20)[0]),
        "split": dict(_shares(every, table.column("split"), everyone, 1 << 20)[0]),
        "folder": dict(_shares(every, folder, everyone, 1 << 20)[0]),
    }

    def telling(kind: str, top: list[tuple[str, float]], least: float) -> str | None:
        """The cluster's most common value of `kind` when most members have it and it is
        clearly commoner here than over the whole map (every image in train says nothing)."""
        if not top or top[0][1] < least or top[0][1] < base[kind].get(top[0][0], 0) + 0.15:
            return None
        return top[0][0]

    found = []
    for c in range(labels.max() + 1):
        members = labels == c
        cx, cy = x[members], y[members]
        top = by_class[c]
        parts = [f"{top[0][0]} {top[0][1]:.0%}"] if top else []
        folders: list[str] = []
        if (where := telling("folder", by_folder[c], 0.5)) is not None:
            folders = where.split("/")[-2:]
            parts.append("/".join(folders) or "(root)")
        split = telling("split", by_split[c], 0.8)
        if split is not None and split not in folders:  # a train/ folder says train already
            parts.append(split)
        if (tag := telling("tag", by_tag[c], 0.5)) is not None:
            parts.append("#" + tag)
        found.append(
            {
                "cluster": c,
                "label": ", ".join(parts) or f"cluster {c}",
                "size": int(members.sum()),
                "centroid": [float(cx.mean()), float(cy.mean())],
                "bounds": [float(cx.min()), float(cy.min()), float(cx.max()), float(cy.max())],
                "outline": _outline(cx, cy),
                "classes": [{"class": name, "share": round(s, 4)} for name, s in top],
                "split": by_split[c][0][0] if by_split[c] else None,
                "folder": by_folder[c][0][0] if by_folder[c] else None,
                "tag": by_tag[c][0][0] if by_tag[c] else None,
                "mixed": bool(top) and top[0][1] < MIXED_SHARE,
            }
        )
    return found


WORDS_SAMPLE = 256  # members per cluster whose vectors make its centre


def name_by_words(
    store: Store,
    dataset_id: int,
    model: str,
    table: pa.Table,
    labels: np.ndarray,
    clusters: list[dict[str, Any]],
    words: list[str],
    compiled: Path | None = None,
) -> None:
    """With a CLIP/SigLIP model: each cluster's centre (the mean direction of up to 256 of its
    members' vectors) against "a photo of a {word}" for every word; the likeliest word leads
    its label (`words`: the word and its probability)."""
    from visor.embedding.models import load_model
    from visor.store import embeddings as vector_rows

    embedder = load_model(model, cache_dir=compiled)
    texts = embedder.encode_text([f"a photo of a {w}" for w in words])
    assert embedder.text is not None  # checked before the job
    ids = table.column("sample_id").to_numpy()
    rng = np.random.default_rng(0)
    for c in clusters:
        members = np.unique(ids[labels == c["cluster"]])
        if len(members) > WORDS_SAMPLE:
            members = np.sort(rng.choice(members, WORDS_SAMPLE, replace=False))
        _, found = vector_rows.vectors_of(store, dataset_id, model, members)
        if not len(found):
            continue
        unit = found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)
        chances = embedder.text.probabilities(unit.mean(axis=0, keepdims=True), texts)[0]
        best = int(chances.argmax())
        c["words"] = {"word": words[best], "probability": round(float(chances[best]), 4)}
        c["label"] = f"{words[best]} · {c['label']}"


def _outline(x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """The members' convex hull (at most OUTLINE_POINTS corners), for drawing."""
    from scipy.spatial import ConvexHull, QhullError

    points = np.column_stack([x, y]).astype(np.float64)
    try:
        corners = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # all on a line, or too few
        return [[float(x.min()), float(y.min())], [float(x.max()), float(y.max())]]
    if len(corners) > OUTLINE_POINTS:
        corners = corners[np.linspace(0, len(corners) - 1, OUTLINE_POINTS).astype(int)]
    return [[round(float(a), 4), round(float(b), 4)] for a, b in corners]


def listed(store: Store, dataset: dict[str, Any], map_row: dict[str, Any]) -> dict[str, Any]:
    """The map's clusters (largest first) with the run that found them; `clusters` None when
    the map was never clustered."""
    found = cluster_rows.listed(store, dataset["id"], map_row["id"])
    if found is None:
        return {"map_id": int(map_row["id"]), "clusters": None}
    return found
