"""Label-quality speed: cleanlab's scores and verdicts for N labels from neighbour votes, and
the neighbour search that feeds them.

    .venv/bin/python bench/label_errors.py                      # 1M labels, 20 classes
    .venv/bin/python bench/label_errors.py --labels 100000 --search

Scoring: every label's class probabilities from 10 neighbours (given here, as the neighbour
search would give them) and cleanlab's find_label_issues and label-quality scores, timed
together. With --search: also the neighbour search over N clustered 384-d vectors (the part
that grows fastest with N; the duplicates and uniqueness jobs run the same search).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from visor.quality.labels import NEIGHBOURS, label_issues, neighbour_probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--search", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, k = args.labels, args.classes
    true = rng.integers(0, k, n)
    given = true.copy()
    flipped = rng.choice(n, n // 20, replace=False)
    given[flipped] = (true[flipped] + 1) % k
    # Neighbours mostly of the same true class, as a good embedding gives them.
    by_class = [np.flatnonzero(true == c) for c in range(k)]
    neighbours = np.empty((n, NEIGHBOURS), np.int64)
    for c, members in enumerate(by_class):
        rows = np.flatnonzero(true == c)
        neighbours[rows] = rng.choice(members, (len(rows), NEIGHBOURS))
    noisy = rng.random((n, NEIGHBOURS)) < 0.1
    neighbours[noisy] = rng.integers(0, n, int(noisy.sum()))
    similarities = rng.uniform(0.6, 0.95, (n, NEIGHBOURS)).astype(np.float32)
    started = time.perf_counter()
    probabilities = neighbour_probabilities(neighbours, similarities, given, k)
    found = label_issues(given, probabilities)
    seconds = time.perf_counter() - started
    hit = np.isin(np.flatnonzero(found.issue), flipped).sum()
    print(
        f"{n:,} labels, {k} classes: scored in {seconds:.1f} s; flagged {int(found.issue.sum()):,}"
        f" ({hit:,} of the {len(flipped):,} planted flips)"
    )
    if args.search:
        from visor.services.search import neighbour_graph, unit_rows
        from visor.synthetic import clustered_vectors

        vectors = unit_rows(clustered_vectors(n, 384, seed=1))
        started = time.perf_counter()
        neighbour_graph(vectors, NEIGHBOURS)
        print(f"neighbour search, {n:,} x 384: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
