"""Similarity search speed: exact search against the ANN (FAISS IVF) index.

    .venv/bin/python bench/search.py                      # 100K and 1M 768-d vectors
    .venv/bin/python bench/search.py --sizes 100000       # quicker

For each size, on synthetic clustered vectors (`visor.synthetic.clustered_vectors`): time to
build the index, then --queries top-10 queries (a sample's own vector, itself excluded) one
at a time through the same searchers the server uses, p50/p99 latency of each, and recall@10
of the index against exact search. Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from visor.services.search import AnnIndex, VectorIndex, unit_rows
from visor.synthetic import clustered_vectors


def latencies(search, queries: np.ndarray) -> tuple[list[set[int]], np.ndarray]:
    found, took = [], []
    for sample_id in queries.tolist():
        started = time.perf_counter()
        hits = search(sample_id)
        took.append(time.perf_counter() - started)
        found.append({i for i, _ in hits})
    return found, np.asarray(took) * 1000


def run(n: int, queries: int, seed: int) -> dict:
    started = time.perf_counter()
    vectors = clustered_vectors(n, 768, seed=seed)
    ids = np.arange(n, dtype=np.int64)
    made = time.perf_counter() - started
    exact = VectorIndex.from_vectors(ids, vectors)
    started = time.perf_counter()
    ann = AnnIndex.build(ids, unit_rows(vectors), {})
    build = time.perf_counter() - started
    del vectors
    picks = np.random.default_rng(seed + 1).choice(ids, queries, replace=False)
    truth, exact_ms = latencies(lambda i: exact.query(exact.unit[i], 10, exclude=i), picks)
    found, ann_ms = latencies(lambda i: ann.query(exact.unit[i], 10, exclude=i), picks)
    recall = float(np.mean([len(t & f) / 10 for t, f in zip(truth, found, strict=True)]))
    return {
        "vectors": n,
        "dim": 768,
        "generate_s": round(made, 1),
        "index_build_s": round(build, 1),
        "index": {k: ann.info[k] for k in ("lists", "probes")},
        "exact_p50_ms": round(float(np.percentile(exact_ms, 50)), 2),
        "exact_p99_ms": round(float(np.percentile(exact_ms, 99)), 2),
        "ann_p50_ms": round(float(np.percentile(ann_ms, 50)), 2),
        "ann_p99_ms": round(float(np.percentile(ann_ms, 99)), 2),
        "speedup_p50": round(float(np.percentile(exact_ms, 50) / np.percentile(ann_ms, 50)), 1),
        "ann_recall_at_10": round(recall, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for n in args.sizes:
        print(json.dumps(run(n, args.queries, args.seed)), flush=True)


if __name__ == "__main__":
    main()
