"""Grouping near-duplicates without chaining, and choosing a threshold: pure functions of
arrays (rows, pairs of rows, similarities), no store and no job.

- `duplicate_groups`: star ("leader") clustering. Rows are visited in a preference order (the
  copy worth keeping first: highest resolution, then largest file, then lowest id); an
  ungrouped row becomes a group's representative and takes every ungrouped row paired with it.
  So every member is within the threshold of its group's representative, and "could go"
  counts only such members. Connected components would instead join a~b~c~d into one group
  although a and d are far apart: in a homogeneous dataset (one camera, one product line) they
  chain every image to every other.
- `lookalike_clusters`: those connected components, kept under their own name: clusters of
  images that resemble each other, never advice to delete.
- `default_threshold`: a registered model's calibrated threshold, else one read from the
  distribution of each row's nearest-neighbour similarity.
"""

from __future__ import annotations

import numpy as np

# Trained DINOv2 (any size): re-encoded, resized or lightly cropped copies stay above it,
# different photos of the same scene mostly fall below.
CALIBRATED_THRESHOLDS = {
    "dinov2-small": 0.95,
    "dinov2-base": 0.95,
    "dinov2-large": 0.95,
    "dinov2-giant": 0.95,
}
# Other models (and random weights): near-duplicates are what stands out above the bulk of
# nearest-neighbour similarities: median + 3 robust standard deviations (1.4826 x MAD),
# within [0.5, 0.9999].
SPREAD = 3.0
HISTOGRAM_BINS = 40


def duplicate_groups(
    n: int, pairs: np.ndarray, order: np.ndarray, copies: np.ndarray | None = None
) -> np.ndarray:
    """Per row, the row that represents its group, or -1 when it is in none.

    `pairs`: (m, 2) rows whose similarity is at or above the threshold. `order`: every row,
    the ones to keep first. `copies`: per row, a label shared by exact copies (-1: none); all
    copies of a row join its group, and only the preferred copy can represent it.
    """
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    leader = np.arange(n)  # exact copies collapse onto their preferred member first
    if copies is not None and (copies >= 0).any():
        labelled = np.flatnonzero(copies >= 0)
        by_label = labelled[np.lexsort((rank[labelled], copies[labelled]))]
        first = np.r_[True, copies[by_label][1:] != copies[by_label][:-1]]
        heads = by_label[first][np.cumsum(first) - 1]
        leader[by_label] = heads
    edges = leader[pairs] if len(pairs) else np.zeros((0, 2), np.int64)
    edges = edges[edges[:, 0] != edges[:, 1]]
    group = np.full(n, -1, np.int64)
    if len(edges):
        both = np.concatenate([edges, edges[:, ::-1]])
        both = both[np.lexsort((both[:, 1], both[:, 0]))]
        starts = np.searchsorted(both[:, 0], np.arange(n + 1))
        targets = both[:, 1]
        candidates = np.unique(both[:, 0])
        for row in candidates[np.argsort(rank[candidates], kind="stable")].tolist():
            if group[row] >= 0:
                continue
            members = targets[starts[row] : starts[row + 1]]
            members = members[group[members] < 0]
            if len(members):
                group[row] = row
                group[members] = row
    # Exact copies follow their preferred member (into its group, or a group of their own).
    copied = leader != np.arange(n)
    heads = leader[copied]
    group[heads] = np.where(group[heads] >= 0, group[heads], heads)
    group[copied] = group[heads]
    return group


def lookalike_clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """Per row, its connected component over `pairs` (a label), or -1 when it has no pair."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels = np.full(n, -1, np.int64)
    if not len(pairs):
        return labels
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, found = connected_components(graph, directed=False)
    sizes = np.bincount(found)
    joined = sizes[found] > 1
    labels[joined] = found[joined]
    return labels


def default_threshold(model: str | None, nearest: np.ndarray) -> tuple[float, str]:
    """(threshold, how it was chosen) for `model`, given each row's nearest-neighbour
    similarity."""
    if model in CALIBRATED_THRESHOLDS:
        return CALIBRATED_THRESHOLDS[model], f"calibrated for {model}"
    finite = nearest[np.isfinite(nearest)]
    if not len(finite):
        return 0.9999, "no neighbours: the highest threshold"
    median = float(np.median(finite))
    spread = 1.4826 * float(np.median(np.abs(finite - median)))
    value = float(np.clip(median + SPREAD * spread, 0.5, 0.9999))
    return round(value, 6), (
        f"from this dataset's nearest-neighbour similarities: median {median:.4f} + "
        f"{SPREAD:g} x {spread:.4f} (1.4826 x MAD)"
    )


def similarity_summary(nearest: np.ndarray) -> dict[str, object]:
    """Percentiles and a histogram of each row's nearest-neighbour similarity."""
    finite = nearest[np.isfinite(nearest)]
    if not len(finite):
        return {"count": 0}
    low = float(min(finite.min(), 0.999))
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS, range=(low, 1.0))
    return {
        "count": len(finite),
        "percentiles": {
            str(p): round(float(np.percentile(finite, p)), 6) for p in (1, 5, 25, 50, 75, 95, 99)
        },
        "histogram": {"edges": [round(float(e), 6) for e in edges], "counts": counts.tolist()},
    }


def outlier_threshold(scores: np.ndarray) -> float | None:
    """The uniqueness above which a sample is an outlier: the median plus 3 robust standard
    deviations (1.4826 x MAD) of the dataset's own scores, at most 1."""
    if len(scores) < 3:
        return None
    median = float(np.median(scores))
    spread = 1.4826 * float(np.median(np.abs(scores - median)))
    return min(1.0, median + 3 * max(spread, 1e-6))
