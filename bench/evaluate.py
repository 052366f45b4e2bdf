"""Detection evaluation speed: Visor's evaluate job against pycocotools' COCOeval and
faster-coco-eval on the same boxes, the same 12 numbers.

    .venv/bin/python bench/evaluate.py                  # 5,000 images (all three), then
                                                        # 100,000 images (Visor, faster-coco-eval)
    .venv/bin/python bench/evaluate.py --sizes 5000 --tools visor,pycocotools

Boxes: 80 classes, ~10 per image (Poisson); predictions are the ground truth jittered (8% of
the box size), 10% with another class, plus as many boxes where nothing is, scores rounded to
4 digits (ties). Each tool runs in its own process (peak memory = that process's maximum
resident size, data set-up included). Timed: pycocotools and faster-coco-eval evaluate() +
accumulate() + summarize() on loaded COCO objects; Visor the whole evaluate job on a store
holding the dataset and predictions: reading the boxes, matching, metrics, and writing every
box's outcome and every sample's counts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = 80
TOOLS = ("pycocotools", "faster-coco-eval", "visor")


def make_boxes(images: int, seed: int = 0) -> dict[str, np.ndarray]:
    from visor.synthetic import predicted_boxes

    rng = np.random.default_rng(seed)
    image = np.repeat(np.arange(images), rng.poisson(10, images))
    n = len(image)
    cls = rng.integers(0, CLASSES, n)
    wh = rng.uniform(8, 200, (n, 2))
    xy = rng.uniform(0, 640 - wh)
    xywh = np.c_[xy, wh].round(2)
    p = predicted_boxes(image, cls, xywh, CLASSES, seed=seed + 1, keep=1.0, duplicate=0.0)
    return {
        "gt_image": image,
        "gt_cls": cls,
        "gt_xywh": xywh,
        "dt_image": p["image"],
        "dt_cls": p["cls"],
        "dt_xywh": np.c_[p["x"], p["y"], p["w"], p["h"]].round(2),
        "dt_score": p["score"],
    }


def coco_inputs(b: dict[str, np.ndarray]) -> tuple[dict, list]:
    images = int(b["gt_image"].max()) + 1
    gt = {
        "images": [{"id": i + 1} for i in range(images)],
        "categories": [{"id": k + 1, "name": f"class{k}"} for k in range(CLASSES)],
        "annotations": [
            {
                "id": n + 1,
                "image_id": int(i) + 1,
                "category_id": int(c) + 1,
                "bbox": box,
                "area": box[2] * box[3],
                "iscrowd": 0,
            }
            for n, (i, c, box) in enumerate(
                zip(b["gt_image"], b["gt_cls"], b["gt_xywh"].tolist(), strict=True)
            )
        ],
    }
    dt = [
        {"image_id": int(i) + 1, "category_id": int(c) + 1, "bbox": box, "score": float(s)}
        for i, c, box, s in zip(
            b["dt_image"], b["dt_cls"], b["dt_xywh"].tolist(), b["dt_score"], strict=True
        )
    ]
    return gt, dt


def run_reference(tool: str, b: dict[str, np.ndarray]) -> tuple[float, list[float]]:
    gt_json, dt_json = coco_inputs(b)
    with contextlib.redirect_stdout(io.StringIO()):
        if tool == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval as Eval
        else:
            from faster_coco_eval import COCO
            from faster_coco_eval import COCOeval_faster as Eval
        gt = COCO()
        gt.dataset = gt_json
        gt.createIndex()
        dt = gt.loadRes(dt_json)
        ev = Eval(gt, dt, "bbox")
        start = time.perf_counter()
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        seconds = time.perf_counter() - start
    return seconds, [float(v) for v in ev.stats[:12]]


def run_visor(b: dict[str, np.ndarray]) -> tuple[float, list[float]]:
    import pyarrow as pa

    from visor.config import Settings
    from visor.synthetic import write_samples
    from visor.workspace import Workspace

    home = Path(tempfile.mkdtemp(prefix="visor-bench-eval-"))
    ws = Workspace(Settings(home=home))
    images = int(b["gt_image"].max()) + 1
    write_samples(ws.store, images, "bench")
    names = np.array([f"class{k}" for k in range(CLASSES)], dtype=object)

    def labels(prefix: str, kind: str) -> pa.Table:
        n = len(b[f"{prefix}_image"])
        box = b[f"{prefix}_xywh"]
        return pa.table(
            {
                "dataset_id": pa.array(np.ones(n, np.int32)),
                "sample_id": pa.array(b[f"{prefix}_image"].astype(np.int32)),
                "kind": pa.array(np.full(n, kind, object)),
                "source": pa.array(np.full(n, "gt" if kind == "gt" else "bench", object)),
                "class": pa.array(names[b[f"{prefix}_cls"]]),
                "x": box[:, 0],
                "y": box[:, 1],
                "w": box[:, 2],
                "h": box[:, 3],
                "score": pa.array(b["dt_score"] if kind == "prediction" else np.full(n, np.nan)),
            }
        )

    with ws.store.transaction() as cur:
        ws.store.insert_arrow(cur, "labels", labels("gt", "gt"))
        ws.store.insert_arrow(cur, "labels", labels("dt", "prediction"))
    ds = ws.dataset("bench")
    start = time.perf_counter()
    job = ds.evaluate("bench", wait=True)
    seconds = time.perf_counter() - start
    assert job["state"] == "done", job["error"]
    stats = ds.evaluations.get("bench")["metrics"]["summary"]
    ws.close()
    return seconds, [float(v) for v in stats.values()]


def child(tool: str, data: Path) -> None:
    with np.load(data) as f:
        b = {k: f[k] for k in f.files}
    seconds, stats = run_visor(b) if tool == "visor" else run_reference(tool, b)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tool": tool, "seconds": seconds, "stats": stats, "peak_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,100000", help="numbers of images")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    tools = args.tools.split(",")
    for images in (int(s) for s in args.sizes.split(",")):
        b = make_boxes(images)
        print(
            f"{images:,} images, {len(b['gt_image']):,} ground-truth boxes, "
            f"{len(b['dt_image']):,} predictions, {CLASSES} classes"
        )
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "boxes.npz"
            np.savez(data, **b)
            results = {}
            for tool in tools:
                if tool == "pycocotools" and images > 20_000:
                    continue  # minutes per run at this size; the 5,000-image run compares it
                done = subprocess.run(
                    [sys.executable, __file__, "--child", tool, str(data)],
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    print(f"  {tool}: failed\n{done.stderr[-2000:]}")
                    continue
                results[tool] = json.loads(done.stdout.strip().splitlines()[-1])
        base = results.get("visor")
        for tool, r in results.items():
            ratio = f"{r['seconds'] / base['seconds']:6.1f}x Visor's time" if base else ""
            print(f"  {tool:<17} {r['seconds']:8.2f} s  peak {r['peak_mb']:7.0f} MB  {ratio}")
        if base:
            for tool, r in results.items():
                diff = float(np.max(np.abs(np.array(r["stats"]) - np.array(base["stats"]))))
                print(f"  12 numbers, largest difference from Visor's: {tool} {diff:.1e}")
            print("  " + " ".join(f"{v:.4f}" for v in base["stats"]))


if __name__ == "__main__":
    main()
