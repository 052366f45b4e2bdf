"""Object embedding speed: boxes through the whole job against the model alone.

    .venv/bin/python bench/objects.py                          # CPU, dinov2-small, 40 boxes/image
    .venv/bin/python bench/objects.py --device cuda --batch-size 256 --images 400

On the demo pictures at 640x480 JPEG with `--boxes` boxes of 16-240 px each (a COCO file
written once under a temporary folder), in interleaved rounds (medians reported):
  model-only   pre-cut uint8 crops through the model (normalisation included), no I/O;
  end-to-end   `visor embed --objects` on an ingested dataset: read each file once, decode,
               cut and resize every box's crop on worker threads, model, vectors committed
               to DuckDB (model load excluded).
Prints boxes/s for both and their ratio. Random weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from visor.config import Settings
from visor.embedding.models import load_model, resolve_device
from visor.synthetic import generate
from visor.workspace import Workspace


def write_dataset(root: Path, images: int, boxes: int, seed: int = 0) -> Path:
    generate(root, images, size=(640, 480), seed=seed, val_fraction=0.0)
    rng = np.random.default_rng(seed)
    notes = root / "annotations" / "instances_train.json"
    coco = json.loads(notes.read_text())
    annotations = []
    for image in coco["images"]:
        for _ in range(boxes):
            w, h = rng.integers(16, 240, 2)
            x, y = rng.integers(0, 640 - w), rng.integers(0, 480 - h)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image["id"],
                    "category_id": coco["categories"][int(rng.integers(len(coco["categories"])))][
                        "id"
                    ],
                    "bbox": [int(x), int(y), int(w), int(h)],
                    "area": int(w * h),
                    "iscrowd": 0,
                }
            )
    coco["annotations"] = annotations
    notes.write_text(json.dumps(coco))
    return root


def model_only(name: str, device: str, precision: str | None, n: int, batch: int) -> float:
    embedder = load_model(name, device, precision)
    h, w = embedder.preprocessing.crop_hw or (224, 224)
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (n, h, w, 3), np.uint8))
    embedder.forward(crops[:batch]).cpu()  # warm-up
    started = time.perf_counter()
    for start in range(0, n, batch):
        embedder.forward(crops[start : start + batch]).cpu()
    return n / (time.perf_counter() - started)


def end_to_end(
    ws: Workspace, root: Path, name: str, device: str, precision: str | None, batch: int, n: int
) -> tuple[float, str]:
    """One `visor embed --objects` of a freshly ingested copy; boxes/s as the job measured it."""
    dataset = f"bench{n}"
    ws.jobs.wait(ws.ingest(str(root), dataset)["id"])
    job = ws.dataset(dataset).embed(
        name, device=device, precision=precision, batch_size=batch, objects=True, wait=True
    )
    result = job["result"]
    assert result["failed_count"] == 0, result["failed"][:3]
    return float(result["boxes_per_s"]), result["precision"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default="random:dinov2-small")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--boxes", type=int, default=40, help="boxes per image")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default=None, help="auto|fp32|fp16|bf16")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats (medians)")
    args = parser.parse_args()
    device = resolve_device(None if args.device == "auto" else args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp) / "data", args.images, args.boxes)
        total = args.images * args.boxes
        ws = Workspace(Settings(home=Path(tmp) / "home"))
        alone, whole, used = [], [], ""
        for n in range(args.rounds):
            alone.append(model_only(args.model, device, args.precision, total, args.batch_size))
            rate, used = end_to_end(
                ws, root, args.model, device, args.precision, args.batch_size, n
            )
            whole.append(rate)
            print(f"round {n + 1}: model-only {alone[-1]:.1f}, end-to-end {rate:.1f} boxes/s",
                  file=sys.stderr)  # fmt: skip
        ws.close()
    a, w = statistics.median(alone), statistics.median(whole)
    print(
        json.dumps(
            {
                "model": args.model,
                "device": device,
                "precision": used,
                "images": args.images,
                "boxes_per_image": args.boxes,
                "model_only_boxes_per_s": round(a, 2),
                "end_to_end_boxes_per_s": round(w, 2),
                "ratio": round(w / a, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
