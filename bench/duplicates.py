"""Near-duplicate search speed, and the similarity of copies under a given model.

    .venv/bin/python bench/duplicates.py                             # 100K 768-d vectors
    .venv/bin/python bench/duplicates.py --model /path/to/dinov2-base --images 200

Speed: synthetic clustered vectors (`visor.synthetic.clustered_vectors`) with --planted
near-copies (a vector plus noise, cosine ~0.99 to its original); times the near-duplicate
search the duplicates job runs (every vector's 16 nearest, pairs ≥ threshold) and checks that
every planted pair is found.

With --model: embeds --images demo pictures and a re-encoded (JPEG q70), a resized (75%) and a
cropped (90%) copy of each, and prints the cosine similarity of copies to their originals
against the highest similarity between distinct pictures: the gap the duplicate threshold
(default 0.95) must fall in. Real weights are needed for that to mean anything.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from visor.services.analysis import similar_pairs
from visor.services.grouping import CALIBRATED_THRESHOLDS, duplicate_groups, lookalike_clusters
from visor.services.neighbours import GRAPH_NEIGHBOURS, GRAPH_PROBES
from visor.services.search import neighbour_graph, unit_rows
from visor.synthetic import clustered_vectors, generate

DEFAULT_THRESHOLD = CALIBRATED_THRESHOLDS["dinov2-base"]


def speed(n: int, planted: int, threshold: float, seed: int) -> dict:
    vectors = clustered_vectors(n, 768, seed=seed)
    rng = np.random.default_rng(seed)
    originals = rng.choice(n - planted, planted, replace=False)
    copies = np.arange(n - planted, n)
    unit = unit_rows(vectors)
    noise = rng.standard_normal((planted, 768)).astype(np.float32) * 0.004
    vectors[copies] = unit[originals] + noise
    unit = unit_rows(vectors)
    started = time.perf_counter()
    graph, sims = neighbour_graph(unit, GRAPH_NEIGHBOURS, probes=GRAPH_PROBES)
    pairs = similar_pairs(graph, sims, threshold)
    searched = time.perf_counter() - started
    groups = duplicate_groups(n, pairs, np.arange(n))
    clusters = lookalike_clusters(n, pairs)
    seconds = time.perf_counter() - started
    found = {tuple(p) for p in pairs.tolist()}
    # A planted copy may go with its original, or both into a third vector's group; either
    # way it is in a group and could go, unless it represents one itself.
    in_groups = int((groups >= 0).sum())
    removable = in_groups - len(np.unique(groups[groups >= 0]))
    expected = {tuple(sorted((int(a), int(b)))) for a, b in zip(originals, copies, strict=True)}
    cos = np.einsum("nd,nd->n", unit[originals], unit[copies])
    return {
        "vectors": n,
        "threshold": threshold,
        "seconds": round(seconds, 1),
        "search_seconds": round(searched, 1),
        "grouping_seconds": round(seconds - searched, 2),
        "samples_in_groups": in_groups,
        "removable": removable,
        "lookalike_clusters": len(np.unique(clusters[clusters >= 0])),
        "pairs_found": len(found),
        "planted": planted,
        "planted_cos_min": round(float(cos.min()), 4),
        "planted_found": len(expected & found),
    }


def copies_similarity(model: str, images: int, device: str | None) -> dict:
    import torch
    from PIL import Image

    from visor.embedding.models import load_model

    embedder = load_model(model, device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        generate(root, images, seed=3)
        files = sorted(root.rglob("*.jpg"))[:images]
        variants: list[list[bytes]] = []
        for path in files:
            image = Image.open(path).convert("RGB")
            w, h = image.size
            out = []
            for edit in ("q70", "resize", "crop"):
                edited = {
                    "q70": image,
                    "resize": image.resize((w * 3 // 4, h * 3 // 4)),
                    "crop": image.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
                }[edit]
                buffer = io.BytesIO()
                edited.save(buffer, "JPEG", quality=70 if edit == "q70" else 90)
                out.append(buffer.getvalue())
            variants.append([path.read_bytes(), *out])

    def embed(datas: list[bytes]) -> np.ndarray:
        crops = np.stack([embedder.preprocessing.prepare(d, "x.jpg") for d in datas])
        return unit_rows(embedder.forward(torch.from_numpy(crops)).float().cpu().numpy())

    originals = embed([v[0] for v in variants])
    sims = originals @ originals.T
    np.fill_diagonal(sims, -1)
    report = {"model": embedder.name, "images": len(files)}
    for i, edit in enumerate(("q70", "resize", "crop"), start=1):
        edited = embed([v[i] for v in variants])
        cos = np.einsum("nd,nd->n", originals, edited)
        report[f"{edit}_copy_cos_min"] = round(float(cos.min()), 4)
        report[f"{edit}_copy_cos_p50"] = round(float(np.median(cos)), 4)
    report["distinct_cos_max"] = round(float(sims.max()), 4)
    report["distinct_cos_p99"] = round(float(np.percentile(sims.max(axis=1), 99)), 4)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="also measure copies' similarity with this model")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--device")
    args = parser.parse_args()
    if args.model:
        print(json.dumps(copies_similarity(args.model, args.images, args.device)), flush=True)
    print(json.dumps(speed(args.vectors, args.planted, args.threshold, args.seed)), flush=True)


if __name__ == "__main__":
    main()
