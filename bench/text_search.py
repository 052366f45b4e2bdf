"""Text → image search: one query's time from words to the k best samples (the text tower
run, the ANN index searched, the samples' paths read), at scale.

    .venv/bin/python bench/text_search.py --samples 1000000 [--model random:clip-vit-b-32]

A made-up dataset of n samples with n clustered vectors of the model's dimension (as if
embedded; `random:` weights give real timings of the text tower, not real answers); the
ANN index built as `visor index` builds it. Then 60 different texts (the first 10 as
warm-up) through `ds.similar(text=..., k=10)`: p50 and p95 of the whole call; the text
tower alone; exact search's p50 on the same vectors; the index's recall@10 against it, for
the tower's texts (random weights: directions unrelated to every image, the worst case) and
for text-like queries made at cosine 0.3 from a random image (as a CLIP text is from the
images it describes), both scanning what a text query scans (`search.WIDE_SHARE`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from visor.config import Settings
from visor.embedding.models import load_model
from visor.ops.reads import text_vector
from visor.services import search
from visor.services.search import AnnIndex, VectorIndex
from visor.services.vectors import ann_path
from visor.store import embeddings as vector_rows
from visor.synthetic import clustered_vectors, write_samples
from visor.workspace import Workspace

WORDS = [
    "red",
    "dog",
    "car",
    "street",
    "night",
    "beach",
    "tree",
    "person",
    "bicycle",
    "snow",
    "kitchen",
    "bird",
    "boat",
    "sign",
]


def texts(count: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, 4)) + f" {i}" for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--model", default="random:clip-vit-b-32")
    args = parser.parse_args()
    n, model = args.samples, args.model
    dim = load_model(model).dim
    with Workspace(Settings(home=Path(tempfile.mkdtemp()) / "home")) as ws:
        started = time.perf_counter()
        write_samples(ws.store, n, "bench")
        ds = ws.dataset("bench")
        vector_rows.ensure_model(ws.store, model, dim)
        vectors = clustered_vectors(n, dim, seed=3)
        for start in range(0, n, 50_000):
            ids = np.arange(start, min(start + 50_000, n))
            vector_rows.write_batch(
                ws.store, ds.id, model, ids, vectors[ids], [], job_id=None, replace=False
            )
        print(f"{n} samples and {dim}-d vectors written in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        ds.build_index(model, wait=True)
        print(f"index: {ds.index_status(model)['search']}, built in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        asked = texts(60)
        calls, towers, found = [], [], []
        for i, text in enumerate(asked):
            t0 = time.perf_counter()
            text_vector(model, text)
            t1 = time.perf_counter()
            answer = ds.similar(text=text, k=10, model=model)
            t2 = time.perf_counter()
            if i >= 10:
                towers.append(t1 - t0)
                calls.append(t2 - t1)
                found.append([r["sample_id"] for r in answer])
        exact = VectorIndex.from_vectors(np.arange(n), vectors)
        del vectors
        exact_s, recall = [], []
        for text, got in zip(asked[10:], found, strict=True):
            query = text_vector(model, text)
            t0 = time.perf_counter()
            best = [i for i, _ in exact.query(query, 10)]
            exact_s.append(time.perf_counter() - t0)
            recall.append(len(set(best) & set(got)) / 10)
        ann = AnnIndex.load(ann_path(ws.settings, ds.id, model))
        rng = np.random.default_rng(1)
        queries = []
        for row in rng.choice(n, 100, replace=False):
            noise = rng.standard_normal(dim).astype(np.float32)
            noise /= np.linalg.norm(noise)
            query = 0.3 * exact.unit[row] + np.sqrt(1 - 0.09) * noise
            queries.append((query, {i for i, _ in exact.query(query, 10)}))
        shares = {}
        for share in (0.2, 0.4, 0.6, 1.0):
            search.WIDE_SHARE = share
            aligned, ann_s = [], []
            for query, best in queries:
                t0 = time.perf_counter()
                got = {i for i, _ in ann.query(query, 10, wide=True)}
                ann_s.append(time.perf_counter() - t0)
                aligned.append(len(best & got) / 10)
            shares[share] = (np.mean(aligned), np.percentile(ann_s, 50) * 1000)
    ms = lambda values, q: np.percentile(values, q) * 1000  # noqa: E731
    print(f"ds.similar(text=..., k=10): p50 {ms(calls, 50):.1f} ms, p95 {ms(calls, 95):.1f} ms")
    print(f"  of which the text tower: p50 {ms(towers, 50):.1f} ms")
    print(f"exact search (no text tower): p50 {ms(exact_s, 50):.1f} ms")
    print(f"index recall@10 against exact, the tower's texts (worst case): {np.mean(recall):.3f}")
    print("queries at cosine 0.3 from an image, by the share of lists a text query scans:")
    for share, (recall_at, p50) in shares.items():
        print(
            f"  {share:.0%} of the lists: recall@10 {recall_at:.3f}, index search p50 {p50:.1f} ms"
        )


if __name__ == "__main__":
    main()
