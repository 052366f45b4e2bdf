"""The embed job on Ray vs the local pipeline, same model, batch and images, on this machine.

    .venv/bin/python bench/ray_embed.py                     # 256 demo images, dinov2-small
    .venv/bin/python bench/ray_embed.py --images 512 --model random:dinov2-base

Ray's figure is the whole job: starting a local cluster, the workers importing torch and
loading the model, reading, preprocessing, the model, writing and loading the shards. Its
steady rate leaves out the time to the first shard (the start-up a long job pays once).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from visor.config import Settings
from visor.synthetic import generate
from visor.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--model", default="random:dinov2-small")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "data", args.images, size=(640, 480), seed=3)
        ws = Workspace(Settings(home=Path(tmp) / "home"))
        figures = {}
        for name, ray in (("local", None), ("ray", "local")):
            ws.jobs.wait(ws.ingest(str(root), name)["id"], timeout=600)
            started = time.perf_counter()
            job = ws.dataset(name).embed(
                args.model, batch_size=args.batch_size, quality=False, ray=ray, wait=True
            )
            seconds = time.perf_counter() - started
            figures[name] = {
                "seconds": round(seconds, 1),
                "images_per_s": round(args.images / seconds, 2),
                "job_images_per_s": job["result"]["images_per_s"],
                "steady_images_per_s": job["result"].get("steady_images_per_s"),
            }
            print(name, figures[name], file=sys.stderr, flush=True)
        ws.close()
    ratio = figures["ray"]["images_per_s"] / figures["local"]["images_per_s"]
    print(json.dumps({"images": args.images, "model": args.model, **figures,
                      "ray_over_local": round(ratio, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
