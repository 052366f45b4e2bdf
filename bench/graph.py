"""The neighbour graph duplicates and uniqueness share, against exact search.

    .venv/bin/python bench/graph.py --samples 100000

On `bench/scale.py`'s vectors (clusters of varied size and spread, planted near-copies): the
graph as the jobs compute it (float16 rows, list by list, `neighbours.graph_probes` lists per
row) and FAISS's exact k-nearest search in float32; prints both times, the share of the exact
search's pairs at or above 0.9, 0.95 and 0.99 that the graph finds, and the share of each
row's 16 neighbours they agree on.
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from scale import vector_chunks

from visor.services.analysis import similar_pairs
from visor.services.neighbours import GRAPH_NEIGHBOURS, graph_probes
from visor.services.search import neighbour_graph, unit_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    n = parser.parse_args().samples
    unit = unit_rows(np.concatenate([chunk for _, chunk in vector_chunks(n)]))
    k = GRAPH_NEIGHBOURS
    started = time.perf_counter()
    found, sims = neighbour_graph(unit.astype(np.float16), k, probes=graph_probes(n))
    graph_s = time.perf_counter() - started
    started = time.perf_counter()
    scores, rows = faiss.knn(unit, unit, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    exact_s = time.perf_counter() - started
    own = rows == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True  # a copy outranked the row itself: drop the last
    rows = rows[~own].reshape(n, k)
    scores = scores[~own].reshape(n, k)
    print(f"{n:,} vectors: graph {graph_s:.1f} s ({graph_probes(n)} lists), exact {exact_s:.1f} s")
    for threshold in (0.9, 0.95, 0.99):
        exact = set(map(tuple, similar_pairs(rows, scores, threshold).tolist()))
        graph = set(map(tuple, similar_pairs(found, sims, threshold).tolist()))
        recall = len(exact & graph) / max(len(exact), 1)
        print(f"pairs >= {threshold}: exact {len(exact):,}, found {recall:.4f} of them")
    same = np.mean([len(set(a) & set(b)) / k for a, b in zip(rows, found, strict=True)])
    print(f"each row's {k} neighbours: {same:.4f} the same")


if __name__ == "__main__":
    main()
