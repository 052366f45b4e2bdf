"""Importing a detector's COCO results file: Visor's import-predictions against what a
pycocotools user runs to load the same file (`COCO(annotations).loadRes(results)`).

    .venv/bin/python bench/predictions.py --entries 1000000

Writes the demo's synthetic COCO dataset (2,000 images, once, under --data), a results list
of --entries boxes on its train images (seeded), ingests the dataset into a fresh store, then
imports the file --rounds times as new sources (every entry checked, matched to its sample
and written to the store) and loads it as many times with pycocotools, interleaved. Prints
the best time of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import visor
from visor.synthetic import generate


def results(root: Path, entries: int, seed: int) -> Path:
    path = root / f"results-{entries}-{seed}.json"
    if path.exists():
        return path
    coco = json.loads((root / "annotations" / "instances_train.json").read_text())
    ids = [image["id"] for image in coco["images"]]
    categories = [c["id"] for c in coco["categories"]]
    rng = random.Random(seed)
    found = [
        {"image_id": rng.choice(ids), "category_id": rng.choice(categories),
         "bbox": [round(rng.uniform(0, 560), 2), round(rng.uniform(0, 400), 2), 40.5, 30.25],
         "score": round(rng.random(), 4)}
        for _ in range(entries)
    ]  # fmt: skip
    path.write_text(json.dumps(found))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "visor-bench")
    args = parser.parse_args()
    from pycocotools.coco import COCO

    root = args.data / "predictions-images"
    if not (root / ".complete").exists():
        generate(root, 2000)
        (root / ".complete").touch()
    path = results(root, args.entries, args.seed)
    print(f"{path} ({path.stat().st_size / 1e6:.0f} MB, {args.entries:,} entries)")
    times: dict[str, list[float]] = {"visor": [], "pycocotools": []}
    with tempfile.TemporaryDirectory() as home, visor.open(home) as ws:
        ws.ingest(str(root), "bench", wait=True)
        ds = ws.dataset("bench")
        for r in range(args.rounds):
            started = time.perf_counter()
            done = ds.import_predictions(str(path), f"det{r}", split="train")
            times["visor"].append(time.perf_counter() - started)
            assert done["predictions"] == args.entries, done
            started = time.perf_counter()
            gt = COCO(str(root / "annotations" / "instances_train.json"))
            loaded = gt.loadRes(str(path))
            times["pycocotools"].append(time.perf_counter() - started)
            assert len(loaded.anns) == args.entries
    best = {name: min(found) for name, found in times.items()}
    seconds = {name: [round(t, 2) for t in found] for name, found in times.items()}
    print(json.dumps({"entries": args.entries, "rounds": args.rounds, "seconds": seconds}))
    print(f"best of {args.rounds}: visor {best['visor']:.2f} s, pycocotools loadRes "
          f"{best['pycocotools']:.2f} s ({best['pycocotools'] / best['visor']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
