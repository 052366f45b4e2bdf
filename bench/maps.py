"""Map speed: Visor's UMAP job against umap-learn with its defaults, in one run.

    .venv/bin/python bench/maps.py                        # 100,000 x 768
    .venv/bin/python bench/maps.py --vectors 20000        # quicker
    .venv/bin/python bench/maps.py --vectors 1000000 --no-default   # 1M: a 200K fit + placing
    .venv/bin/python bench/maps.py --fit-sample 30000 --full --no-default  # sampled vs full

On synthetic clustered 768-d vectors (`visor.synthetic.clustered_vectors`):
  visor    `compute_map(..., "umap")` with the job's defaults: unit vectors, PCA to 50,
           FAISS k-nearest neighbours, umap-learn's layout (parallel: no seed);
  default  `umap.UMAP().fit_transform(vectors)` on the raw vectors (NN-descent, Euclidean).
Above the job's `fit_sample` (200,000) the layout is fitted on a sample and the other points
placed among their nearest fitted ones; `--full` also times the layout fitted on every point,
to compare. Each runs after a small warm-up run, so numba's compilation is not counted. Prints
the seconds of each, the speed-up, the trustworthiness (sklearn, 5-NN) of each map on the same
--subsample points (cosine distances in the original space) and the run's peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.manifold import trustworthiness

from visor.services.maps import check_params, compute_map
from visor.synthetic import clustered_vectors


def default_umap(vectors: np.ndarray) -> np.ndarray:
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(umap.UMAP().fit_transform(vectors), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--subsample", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fit-sample",
        type=int,
        default=None,
        help="the job's fit_sample (default: its own, 200,000): above it UMAP is fitted on a "
        "sample and the other points placed",
    )
    parser.add_argument(
        "--full", action="store_true", help="also Visor's layout fitted on every point"
    )
    parser.add_argument(
        "--no-default", action="store_true", help="skip umap-learn's defaults (hours at 1M)"
    )
    args = parser.parse_args()
    given = {} if args.fit_sample is None else {"fit_sample": args.fit_sample}
    params = check_params("umap", given)
    warm = clustered_vectors(3000, 768, seed=args.seed + 1)
    compute_map(warm, "umap", params)
    if not args.no_default:
        default_umap(warm)

    vectors = clustered_vectors(args.vectors, 768, seed=args.seed)
    runs: dict[str, Callable[[], np.ndarray]] = {
        "visor": lambda: compute_map(vectors, "umap", params),
    }
    if args.full:
        every = check_params("umap", {"fit_sample": args.vectors})
        runs["visor_full_fit"] = lambda: compute_map(vectors, "umap", every)
    if not args.no_default:
        runs["umap_default"] = lambda: default_umap(vectors)
    pick = np.random.default_rng(args.seed).choice(args.vectors, args.subsample, replace=False)
    unit = vectors[pick] / np.linalg.norm(vectors[pick], axis=1, keepdims=True)
    row: dict[str, object] = {"vectors": args.vectors, "fit_sample": params["fit_sample"]}
    for name, run in runs.items():
        started = time.perf_counter()
        layout = run()
        row[f"{name}_s"] = round(time.perf_counter() - started, 1)
        trust = trustworthiness(unit, layout[pick], n_neighbors=5, metric="cosine")
        row[f"trustworthiness_{name}"] = round(float(trust), 4)
        del layout
    if "umap_default_s" in row:
        row["speedup"] = round(float(row["umap_default_s"]) / float(row["visor_s"]), 2)  # type: ignore[arg-type]
    # peak resident memory of the whole run (Linux reports KiB)
    row["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
