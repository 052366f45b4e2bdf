"""Export speed: a 100K-image / 1M-box COCO dataset written in every format.

    .venv/bin/python bench/export.py                       # --no-images in each format, --link
    .venv/bin/python bench/export.py --images 10000 --boxes 100000

The dataset is the one bench/ingest.py makes (hard links to a few JPEGs, sizes in the JSON),
ingested once. Each export is a job run to its end: reading the samples and labels in chunks,
writing the files, moving the folder into place. Prints seconds per format and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ingest import make_dataset

from visor.config import Settings
from visor.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--only", help="one run, e.g. coco:link or yolo:none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp) / "data", args.images, args.boxes)
        ws = Workspace(Settings(home=Path(tmp) / "home"))
        ws.jobs.wait(ws.ingest(str(root), "big")["id"], timeout=3600)
        ds = ws.dataset("big")
        runs = [(fmt, "none") for fmt in ("coco", "yolo", "voc", "parquet")] + [("coco", "link")]
        if args.only:
            runs = [tuple(args.only.split(":", 1))]
        figures = {}
        for fmt, images in runs:
            out = Path(tmp) / f"out-{fmt}-{images}"
            started = time.perf_counter()
            job = ds.export(str(out), fmt, images=images, wait=True)
            seconds = time.perf_counter() - started
            result = job["result"]
            figures[f"{fmt} ({images})"] = round(seconds, 1)
            line = f"{fmt:8} images={images:5} {result['samples']:,} samples, "
            print(f"{line}{result['boxes']:,} boxes: {seconds:.1f} s", file=sys.stderr, flush=True)
        ws.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": args.images, "boxes": args.boxes, "seconds": figures,
                      "peak_rss_mb": round(peak)}))  # fmt: skip


if __name__ == "__main__":
    main()
