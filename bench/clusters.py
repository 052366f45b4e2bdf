"""Density clusters on a map: fast-hdbscan (what `visor clusters` runs) against
scikit-learn's HDBSCAN on the same 2-D points, then the whole job at each size.

    .venv/bin/python bench/clusters.py --points 20000,100000,1000000 [--sklearn-up-to 100000]

The points: 24 blobs of log-normal sizes and spreads plus 2% uniform noise (a map is rarely
made of equal round blobs); the same `min_cluster_size` (1% of the points, 10 to 5000) and
`min_samples` (10) for both. Prints each library's seconds and adjusted Rand index against the
planted blobs (noise as its own label), then the `visor clusters` job (read the points, cluster,
name the clusters, store every point's cluster) on a made-up dataset with that map, with the
process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from visor.config import Settings
from visor.services.clusters import MIN_SAMPLES, default_min_cluster_size
from visor.synthetic import write_map, write_samples
from visor.workspace import Workspace


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    blobs = 24
    centres = rng.uniform(-100, 100, (blobs, 2))
    weights = rng.lognormal(0, 0.8, blobs)
    spread = rng.lognormal(0, 0.4, blobs)
    noise = n // 50
    label = rng.choice(blobs, n - noise, p=weights / weights.sum())
    xy = centres[label] + rng.normal(0, 1, (len(label), 2)) * spread[label, None]
    xy = np.concatenate([xy, rng.uniform(-110, 110, (noise, 2))]).astype(np.float32)
    return xy, np.concatenate([label, np.full(noise, -1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", default="20000,100000,1000000")
    parser.add_argument("--sklearn-up-to", type=int, default=100_000)
    args = parser.parse_args()
    import fast_hdbscan
    from sklearn.cluster import HDBSCAN

    warnings.simplefilter("ignore", FutureWarning)
    fast_hdbscan.HDBSCAN(min_cluster_size=10).fit_predict(np.random.rand(500, 2))  # compiled
    print("points     library        seconds   clusters   ARI")
    for n in (int(v) for v in args.points.split(",")):
        xy, truth = planted(n)
        size = default_min_cluster_size(n)
        runs = [("fast-hdbscan", fast_hdbscan.HDBSCAN)]
        if n <= args.sklearn_up_to:
            runs.append(("scikit-learn", HDBSCAN))
        for name, cls in runs:
            started = time.perf_counter()
            found = cls(min_cluster_size=size, min_samples=MIN_SAMPLES).fit_predict(xy)
            seconds = time.perf_counter() - started
            ari = adjusted_rand_score(truth, found)
            print(f"{n:>9}  {name:<13} {seconds:>8.2f}   {found.max() + 1:>8}   {ari:.3f}")
        with Workspace(Settings(home=Path(tempfile.mkdtemp()) / "home")) as ws:
            write_samples(ws.store, n, "bench")
            write_map(ws.store, 1, xy)
            started = time.perf_counter()
            result = ws.dataset("bench").find_clusters(wait=True)["result"]
            seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(
            f"{n:>9}  visor clusters {seconds:>7.2f}   {result['clusters']:>8}   "
            f"(job; peak RSS so far {peak:.2f} GB)"
        )


if __name__ == "__main__":
    main()
