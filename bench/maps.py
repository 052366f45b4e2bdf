"""Map speed: Visor's UMAP job against umap-learn with its defaults, in one run.

    .venv/bin/python bench/maps.py                        # 100,000 x 768
    .venv/bin/python bench/maps.py --vectors 20000        # quicker

On synthetic clustered 768-d vectors (`visor.synthetic.clustered_vectors`):
  visor    `compute_map(..., "umap")` with the job's defaults: unit vectors, PCA to 50,
           FAISS k-nearest neighbours, umap-learn's layout (parallel: no seed);
  default  `umap.UMAP().fit_transform(vectors)` on the raw vectors (NN-descent, Euclidean).
Both run after a small warm-up run of each, so numba's compilation is not counted. Prints the
seconds of each, the speed-up, and the trustworthiness (sklearn, 5-NN) of both maps on the
same --subsample points (cosine distances in the original space).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

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
    args = parser.parse_args()
    params = check_params("umap", {})
    warm = clustered_vectors(3000, 768, seed=args.seed + 1)
    compute_map(warm, "umap", params)
    default_umap(warm)

    vectors = clustered_vectors(args.vectors, 768, seed=args.seed)
    started = time.perf_counter()
    ours = compute_map(vectors, "umap", params)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = default_umap(vectors)
    theirs_s = time.perf_counter() - started

    pick = np.random.default_rng(args.seed).choice(args.vectors, args.subsample, replace=False)
    unit = vectors[pick] / np.linalg.norm(vectors[pick], axis=1, keepdims=True)
    trust_ours = trustworthiness(unit, ours[pick], n_neighbors=5, metric="cosine")
    trust_theirs = trustworthiness(unit, theirs[pick], n_neighbors=5, metric="cosine")
    print(
        json.dumps(
            {
                "vectors": args.vectors,
                "visor_s": round(ours_s, 1),
                "umap_default_s": round(theirs_s, 1),
                "speedup": round(theirs_s / ours_s, 2),
                "trustworthiness_visor": round(float(trust_ours), 4),
                "trustworthiness_default": round(float(trust_theirs), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
