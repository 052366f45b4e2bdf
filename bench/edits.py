"""Bulk label edits on a large dataset: a relabel among the samples a filter keeps, its undo
and redo (each one batch of the edit log).

    .venv/bin/python bench/edits.py --samples 1000000

Builds the dataset straight into a fresh store (the store's own batch writer, three boxes a
sample), then through the Python API relabels one class among split val's samples (about
7,700 boxes at 1M), undoes and redoes it, and checks the classes come back exactly.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import visor
from visor.store import Store
from visor.synthetic import write_samples


def build(home: Path, n: int) -> None:
    store = Store(home / "visor.duckdb")
    write_samples(store, n, "big")
    store.query(  # three boxes a sample, of its own classes
        "INSERT INTO labels (dataset_id, id, sample_id, kind, source, class, x, y, w, h) "
        "SELECT 1, s.id * 3 + k, s.id, 'gt', 'ground_truth', s.classes[1 + k % len(s.classes)], "
        "1, 1, 10, 10 FROM samples s, range(3) t(k) WHERE s.dataset_id = 1"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        started = time.perf_counter()
        build(home, args.samples)
        print(f"{args.samples:,} samples, {3 * args.samples:,} boxes written in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        with visor.open(home) as ws:
            ds = ws.dataset("big")
            before = {c["class"]: c["labels"] for c in ds.info()["classes"]}
            cls = next(iter(before))
            val = visor.SampleFilter(split="val")
            timed = []
            for name, step in (
                ("relabel", lambda: ds.edits.relabel(cls, cls + "-x", val)),
                ("undo", ds.edits.undo),
                ("redo", ds.edits.redo),
                ("undo", ds.edits.undo),
            ):  # fmt: skip
                started = time.perf_counter()
                done = step()
                timed.append(
                    f"{name} {done['changes']:,} boxes {time.perf_counter() - started:.2f} s"
                )
            after = {c["class"]: c["labels"] for c in ds.info()["classes"]}
            assert after == before, "undo did not restore the classes"
        print("; ".join(timed))


if __name__ == "__main__":
    main()
