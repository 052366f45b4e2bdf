"""Image quality: Visor's job against cleanvision on the same files.

    .venv/bin/python bench/quality.py                          # 2,000 demo images 640x480
    .venv/bin/python bench/quality.py --images 300 --size 2048x1371

On demo images written once under --data, in interleaved rounds (--rounds, medians):
  visor        `ds.compute_quality(wait=True)` on an ingested dataset: read, decode, measure,
               store the statistics and each sample's issues (the stored rows are deleted
               before each round, so every image is measured again);
  statistics   `image_stats` alone on images decoded beforehand: ms of one core per image;
  cleanvision  `Imagelab(filepaths).find_issues(...)` for the issue types both flag (dark,
               light, blurry, low_information, grayscale, odd_aspect_ratio, odd_size), in a
               process of its own (`--cleanvision-python`: another venv's Python).
Prints a JSON row: images/s of both and Visor's speed-up over cleanvision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from visor.config import Settings
from visor.media.images import decode
from visor.quality.images import image_stats
from visor.synthetic import generate
from visor.workspace import Workspace

KINDS = ["dark", "light", "blurry", "low_information", "grayscale", "odd_aspect_ratio", "odd_size"]

CLEANVISION = """
import contextlib, io, json, sys, time
from cleanvision import Imagelab
kinds, files = sys.argv[1].split(","), sys.argv[2:]
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    lab = Imagelab(filepaths=files)
    lab.find_issues({k: {} for k in kinds})
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def visor_round(home: Path) -> float:
    with Workspace(Settings(home=home)) as ws:
        with ws.store.transaction() as cur:
            cur.execute("DELETE FROM image_quality")
        started = time.perf_counter()
        job = ws.dataset("bench").compute_quality(wait=True)
        assert job["state"] == "done", job
        return time.perf_counter() - started


def cleanvision_round(python: str, files: list[Path]) -> float:
    command = [python, "-c", CLEANVISION, ",".join(KINDS), *map(str, files)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def statistics_ms(files: list[Path]) -> float:
    images = [decode(f.read_bytes(), f.name) for f in files[:256]]
    image_stats(images[0])  # compiled (or loaded from the cache) before timing
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for image in images:
            image_stats(image)
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", default="640x480", help="demo image size, e.g. 2048x1371")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats (medians)")
    parser.add_argument("--cleanvision-python", default=sys.executable)
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "visor-bench-quality"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    folder = args.data / f"{args.images}-{args.size}"
    if not folder.exists():
        print(f"writing {args.images} demo images ({args.size}) to {folder}", file=sys.stderr)
        generate(folder, args.images, size=(width, height))
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    home = Path(tempfile.mkdtemp(prefix="visor-bench-quality-home-"))
    with Workspace(Settings(home=home)) as ws:
        ws.ingest(str(folder), "bench", wait=True)
    visor_round(home)  # the first: compiles the statistics' loops, warms the page cache
    ours, theirs = [], []
    for _ in range(args.rounds):
        ours.append(visor_round(home))
        theirs.append(cleanvision_round(args.cleanvision_python, files))
    v, c = statistics.median(ours), statistics.median(theirs)
    row = {
        "images": len(files),
        "size": args.size,
        "rounds": args.rounds,
        "visor_s": round(v, 2),
        "visor_images_per_s": round(len(files) / v, 1),
        "cleanvision_s": round(c, 2),
        "cleanvision_images_per_s": round(len(files) / c, 1),
        "speedup": round(c / v, 2),
        "statistics_ms_per_image": round(statistics_ms(files), 3),
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
