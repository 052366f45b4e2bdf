"""Where `visor clusters` looks for clusters: the map's 2-D points (what it does) or a 5-D
UMAP of the vectors (what Lilac and BERTopic cluster), measured on the same planted groups.

    .venv/bin/python bench/cluster_space.py --points 20000,100000 [--dim 384]

The vectors: 24 planted groups of log-normal sizes and spreads in `dim` dimensions, and 2%
noise vectors from no group. Both ways start from the same unit vectors:
  2-D   Visor's map job (`compute_map(..., "umap")`, its defaults), then fast-hdbscan on the
        points (the map exists anyway: only the clustering is the clusters job's cost);
  5-D   PCA to 50 as the map job does, umap-learn with n_components=5, min_dist=0 (the
        settings clustering pipelines use), then fast-hdbscan on the 5-D points.
The same `min_cluster_size` (1% of the points, 10 to 5000) and `min_samples` (10) for both.
Prints seconds and the adjusted Rand index against the planted groups (noise its own label).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from visor.services.clusters import MIN_SAMPLES, default_min_cluster_size, hdbscan
from visor.services.maps import check_params, compute_map
from visor.services.search import unit_rows


def planted(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = 24
    weights = rng.lognormal(0, 0.8, groups)
    spread = rng.lognormal(0, 0.3, groups) * 0.25
    centres = rng.standard_normal((groups, dim)) * 0.15  # groups close enough to touch
    noise = n // 50
    group = rng.choice(groups, n - noise, p=weights / weights.sum())
    vectors = centres[group] + rng.standard_normal((len(group), dim)) * spread[group, None]
    stray = rng.standard_normal((noise, dim)) * 1.2
    out = np.concatenate([vectors, stray]).astype(np.float32)
    return unit_rows(out), np.concatenate([group, np.full(noise, -1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", default="20000,100000")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    import umap

    warnings.simplefilter("ignore")
    hdbscan(np.random.default_rng(0).random((500, 2)), 10, 10)  # numba compiled before timing
    print("points   space   reduce s   cluster s   clusters   ARI")
    for n in (int(v) for v in args.points.split(",")):
        vectors, truth = planted(n, args.dim)
        size = default_min_cluster_size(n)
        started = time.perf_counter()
        xy = compute_map(vectors, "umap", check_params("umap", {}))
        reduced = time.perf_counter() - started
        started = time.perf_counter()
        found = hdbscan(xy.astype(np.float64), size, MIN_SAMPLES)
        clustered = time.perf_counter() - started
        ari = adjusted_rand_score(truth, found)
        print(
            f"{n:>7}   2-D   {reduced:>9.1f}   {clustered:>9.2f}   {found.max() + 1:>8}   {ari:.3f}"
        )
        started = time.perf_counter()
        x = PCA(n_components=50, random_state=0).fit_transform(vectors)
        five = umap.UMAP(n_components=5, min_dist=0.0, n_neighbors=15).fit_transform(x)
        reduced = time.perf_counter() - started
        started = time.perf_counter()
        found = hdbscan(np.asarray(five, np.float64), size, MIN_SAMPLES)
        clustered = time.perf_counter() - started
        ari = adjusted_rand_score(truth, found)
        print(
            f"{n:>7}   5-D   {reduced:>9.1f}   {clustered:>9.2f}   {found.max() + 1:>8}   {ari:.3f}"
        )


if __name__ == "__main__":
    main()
