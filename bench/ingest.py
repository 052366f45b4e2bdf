"""Ingest speed: a COCO file of N images and M boxes (sizes in the JSON) into a fresh store.

    .venv/bin/python bench/ingest.py --images 100000 --boxes 1000000

Image files are hard links to one small JPEG, so the run measures parsing, checking and
writing, not the disk. Prints samples/s, boxes/s and the peak memory of the ingest process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_dataset(root: Path, images: int, boxes: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "images" / "train"
    folder.mkdir(parents=True)
    # The file system caps links per file (ext4: 65,000), so link to a few copies.
    sources = []
    for k in range(images // 50_000 + 1):
        source = root / f"one-{k}.jpg"
        Image.new("RGB", (640, 480), (90, 120, 150)).save(source, quality=60)
        sources.append(source)
    for i in range(images):
        os.link(sources[i // 50_000], folder / f"{i:07d}.jpg")
    for source in sources:
        source.unlink()
    image_ids = rng.integers(1, images + 1, boxes)
    xy = rng.uniform(0, 500, (boxes, 2)).round(1)
    wh = rng.uniform(2, 140, (boxes, 2)).round(1)
    cats = rng.integers(1, 81, boxes)
    (root / "annotations").mkdir()
    with open(root / "annotations" / "instances_train.json", "w") as f:
        f.write('{"categories": ')
        json.dump([{"id": i, "name": f"class{i}"} for i in range(1, 81)], f)
        f.write(', "images": [')
        f.write(
            ",".join(
                f'{{"id": {i + 1}, "file_name": "{i:07d}.jpg", "width": 640, "height": 480}}'
                for i in range(images)
            )
        )
        f.write('], "annotations": [')
        f.write(
            ",".join(
                f'{{"id": {j + 1}, "image_id": {image_ids[j]}, "category_id": {cats[j]}, '
                f'"bbox": [{xy[j, 0]}, {xy[j, 1]}, {wh[j, 0]}, {wh[j, 1]}], "iscrowd": 0}}'
                for j in range(boxes)
            )
        )
        f.write("]}")
    return root


def run_ingest(root: str, home: str, streamed: bool) -> None:
    from visor.config import Settings
    from visor.formats import coco
    from visor.workspace import Workspace

    if streamed:  # take the path of annotation files too large to parse whole
        coco.IN_MEMORY_LIMIT = 0

    ws = Workspace(Settings(home=Path(home)))
    start = time.perf_counter()
    job = ws.jobs.wait(ws.ingest(root, "bench")["id"])
    elapsed = time.perf_counter() - start
    ws.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = job["result"] or {}
    print(
        json.dumps(
            {
                "state": job["state"],
                "error": job["error"],
                "seconds": round(elapsed, 2),
                "samples": result.get("samples"),
                "labels": result.get("labels"),
                "peak_rss_mb": round(peak_mb),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument(
        "--streamed", action="store_true", help="stream the JSON as files over 256 MB are"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_ingest(*args.child, streamed=args.streamed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = make_dataset(Path(tmp) / "coco", args.images, args.boxes)
        size_mb = (root / "annotations" / "instances_train.json").stat().st_size / 1e6
        print(
            f"dataset: {args.images:,} images, {args.boxes:,} boxes, {size_mb:.0f} MB JSON "
            f"(made in {time.perf_counter() - t0:.0f} s)"
        )
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(root), f"{tmp}/home"]
            + (["--streamed"] if args.streamed else []),
            capture_output=True,
            text=True,
            check=True,
        )
        stats = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(stats))
        print(
            f"ingest: {stats['seconds']:.1f} s, {stats['samples'] / stats['seconds']:,.0f} "
            f"samples/s, {stats['labels'] / stats['seconds']:,.0f} boxes/s, "
            f"peak RSS {stats['peak_rss_mb']:,} MB"
        )


if __name__ == "__main__":
    main()
