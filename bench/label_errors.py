"""Label-quality speed: from N labelled vectors to cleanlab's scores and verdicts, the way the
label-errors job does it (neighbour search, neighbour votes, cleanlab), timed in parts.

    .venv/bin/python bench/label_errors.py                      # 1M labels, 384-d, 20 classes
    .venv/bin/python bench/label_errors.py --labels 100000 --dim 768

Vectors: clusters of ~100 shaped like image embeddings (`visor.synthetic.clustered_vectors`),
each cluster one of the classes; 5% of the labels flipped to another class. Prints the time of
the neighbour search (PCA to 64 dimensions and an IVF search above 10K vectors) and of the
scoring (probabilities from the neighbours' votes, cleanlab's label-quality scores and
find_label_issues), and how many planted flips were flagged.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from visor.quality.labels import label_issues, neighbour_probabilities
from visor.services.labels import label_neighbours
from visor.services.search import unit_rows
from visor.synthetic import clustered_vectors_with_clusters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, k = args.labels, args.classes
    vectors, clusters = clustered_vectors_with_clusters(n, args.dim, seed=1)
    true = clusters % k
    given = true.copy()
    flipped = rng.choice(n, n // 20, replace=False)
    given[flipped] = (true[flipped] + 1 + rng.integers(0, k - 1, len(flipped))) % k
    started = time.perf_counter()
    neighbours, similarities = label_neighbours(unit_rows(vectors))
    searched = time.perf_counter() - started
    probabilities = neighbour_probabilities(neighbours, similarities, given, k)
    found = label_issues(given, probabilities)
    total = time.perf_counter() - started
    flagged = np.flatnonzero(found.issue)
    hit = np.isin(flagged, flipped).sum()
    print(
        f"{n:,} labels, {args.dim}-d, {k} classes: {total:.1f} s "
        f"(neighbour search {searched:.1f} s, scoring {total - searched:.1f} s); flagged "
        f"{len(flagged):,}: {hit:,} of the {len(flipped):,} planted flips, "
        f"{len(flagged) - hit:,} clean labels"
    )


if __name__ == "__main__":
    main()
