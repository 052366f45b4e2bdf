"""A deterministic synthetic detection dataset: coloured shapes on varied backgrounds, in COCO.

Used by `visor demo` and the benchmarks. The same (n, seed, size) always gives the same files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from visor.store import Store

CLASSES = ("circle", "square", "triangle", "diamond", "bar", "ring")
_BACKGROUNDS = 24


def _backgrounds(width: int, height: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(_BACKGROUNDS):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        angle = rng.uniform(0, np.pi)
        t = (np.cos(angle) * xs / width + np.sin(angle) * ys / height + 1) / 2
        img = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
        img += rng.normal(0, rng.uniform(2, 18), img.shape)
        out.append(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB"))
    return out


def _draw(
    draw: ImageDraw.ImageDraw, cls: str, box: tuple[int, int, int, int], color: tuple[int, ...]
) -> None:
    x0, y0, x1, y1 = box
    if cls == "circle":
        draw.ellipse(box, fill=color)
    elif cls == "square":
        draw.rectangle(box, fill=color)
    elif cls == "triangle":
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=color)
    elif cls == "diamond":
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=color)
    elif cls == "bar":
        draw.rectangle(box, fill=color)
    else:  # ring
        draw.ellipse(box, outline=color, width=max(3, (x1 - x0) // 6))


def _shape_box(
    rng: np.random.Generator, cls: str, width: int, height: int
) -> tuple[int, int, int, int]:
    side = int(rng.integers(max(12, min(width, height) // 10), max(16, min(width, height) // 3)))
    w, h = side, side
    if cls == "bar":
        w, h = (side, max(6, side // 4)) if rng.random() < 0.5 else (max(6, side // 4), side)
    x0 = int(rng.integers(0, width - w))
    y0 = int(rng.integers(0, height - h))
    return (x0, y0, x0 + w, y0 + h)


def generate(
    root: str | Path,
    n: int = 2000,
    *,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    val_fraction: float = 0.2,
    progress: Any = None,
) -> Path:
    """Write `n` images and their COCO annotations under `root`; returns `root`.

    Layout: `images/{train,val}/NNNNNN.jpg`, `annotations/instances_{train,val}.json`.
    `progress(done, total)` is called as images are written.
    """
    root = Path(root)
    width, height = size
    backgrounds = _backgrounds(width, height, seed)
    rng = np.random.default_rng(seed)
    splits: dict[str, dict[str, Any]] = {
        s: {
            "images": [],
            "annotations": [],
            "categories": [
                {"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(CLASSES)
            ],
        }
        for s in ("train", "val")
    }
    for s in splits:
        (root / "images" / s).mkdir(parents=True, exist_ok=True)
    ann_id = 1
    for i in range(n):
        split = "val" if rng.random() < val_fraction else "train"
        img = backgrounds[int(rng.integers(0, _BACKGROUNDS))].copy()
        draw = ImageDraw.Draw(img)
        file_name = f"{i:06d}.jpg"
        for _ in range(int(rng.integers(1, 6))):
            cat = int(rng.integers(0, len(CLASSES)))
            box = _shape_box(rng, CLASSES[cat], width, height)
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            _draw(draw, CLASSES[cat], box, color)
            x0, y0, x1, y1 = box
            splits[split]["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": i + 1,
                    "category_id": cat + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
            ann_id += 1
        img.save(root / "images" / split / file_name, "JPEG", quality=int(rng.integers(70, 95)))
        splits[split]["images"].append(
            {
                "id": i + 1,
                "file_name": file_name,
                "width": width,
                "height": height,
                "time_of_day": ["day", "dusk", "night"][int(rng.integers(0, 3))],
            }
        )
        if progress is not None and (i % 50 == 0 or i == n - 1):
            progress(i + 1, n)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, data in splits.items():
        tmp = root / "annotations" / f".instances_{split}.json.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, root / "annotations" / f"instances_{split}.json")
    return root


def clustered_vectors(n: int, dim: int = 768, *, seed: int = 0, chunk: int = 50_000) -> np.ndarray:
    """(n, dim) float32 vectors shaped like image embeddings: clusters of ~100 around random
    centres, each spread along 6 directions of its own plus a little noise (neighbourhoods of
    low intrinsic dimension, so nearest neighbours are well defined). For benchmarks and tests
    of search; deterministic for a given (n, dim, seed)."""
    return clustered_vectors_with_clusters(n, dim, seed=seed, chunk=chunk)[0]


def clustered_vectors_with_clusters(
    n: int, dim: int = 768, *, seed: int = 0, chunk: int = 50_000
) -> tuple[np.ndarray, np.ndarray]:
    """`clustered_vectors` and each vector's cluster (int64)."""
    rng = np.random.default_rng(seed)
    clusters = max(n // 100, 1)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    bases = rng.standard_normal((clusters, 6, dim)).astype(np.float32) * 0.3
    label = rng.integers(0, clusters, n)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        part = label[start : start + chunk]
        weights = rng.standard_normal((len(part), 6)).astype(np.float32)
        noise = rng.standard_normal((len(part), dim)).astype(np.float32) * 0.05
        out[start : start + len(part)] = (
            centres[part] + np.einsum("nk,nkd->nd", weights, bases[part]) + noise
        )
    return out, label


SAMPLE_CLASSES = [f"class{i}" for i in range(80)]


def write_samples(
    store: Store,
    n: int,
    name: str,
    *,
    dataset_id: int = 1,
    root: str = "/nonexistent",
    classes_of: Sequence[list[str]] | None = None,
) -> None:
    """A dataset of `n` made-up samples (no image files: paths only, 640x480, 80 classes, 80%
    train) written straight into the store: what benchmarks and UI tests of large datasets
    need without ingesting n images. `root`: the folder its (absent) files would be in."""
    from visor.store import datasets as dataset_rows

    classes = SAMPLE_CLASSES
    rng = np.random.default_rng(0)
    batches = []
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        ids = np.arange(start, start + m, dtype=np.int32)
        picks = rng.integers(0, len(classes), (m, 3))
        batches.append(
            pa.table(
                {
                    "dataset_id": pa.array(np.full(m, dataset_id, np.int32)),
                    "id": pa.array(ids),
                    "path": [f"images/{i:07d}.jpg" for i in ids],
                    "filename": [f"{i:07d}.jpg" for i in ids],
                    "width": pa.array(np.full(m, 640, np.int32)),
                    "height": pa.array(np.full(m, 480, np.int32)),
                    "size_bytes": pa.array(rng.integers(20_000, 200_000, m)),
                    "split": pa.array(np.where(rng.random(m) < 0.8, "train", "val")),
                    "classes": pa.array(
                        [sorted({classes[j] for j in row}) for row in picks]
                        if classes_of is None
                        else [classes_of[int(i)] for i in ids],
                        pa.list_(pa.string()),
                    ),
                    "tags": pa.array([[] for _ in range(m)], pa.list_(pa.string())),
                    "flags": pa.array([[] for _ in range(m)], pa.list_(pa.string())),
                    "num_labels": pa.array(np.full(m, 3, np.int32)),
                    "metadata": pa.array([None] * m, pa.string()),
                }
            )
        )
    dataset_rows.write_dataset(
        store,
        {
            "id": dataset_id,
            "name": name,
            "root": root,
            "format": "images",
            "num_samples": n,
            "num_labels": 3 * n,
            "categories": classes,
            "report": {},
        },
        batches,
        [],
    )


def write_map(store: Store, dataset_id: int, xy: np.ndarray) -> int:
    """A map whose points are `xy` (row i: sample i), as if a map job had made it."""
    from visor.store import maps as map_rows

    return map_rows.save(
        store,
        dataset_id,
        model="random:dinov2-base",
        method="umap",
        params={},
        ids=np.arange(len(xy)),
        xy=xy,
        job_id=None,
        seconds=0.0,
    )


def predicted_boxes(
    image: np.ndarray,
    cls: np.ndarray,
    xywh: np.ndarray,
    num_classes: int,
    *,
    seed: int = 0,
    keep: float = 0.9,
    swap: float = 0.1,
    duplicate: float = 0.05,
    random_boxes: float = 1.0,
    jitter: float = 0.08,
) -> dict[str, np.ndarray]:
    """What a detector might say about ground-truth boxes: most of them found with jittered
    edges (`keep`), some with another class (`swap`), some twice (`duplicate`), and
    `random_boxes` x as many boxes where nothing is; every box with a score (true finds
    score higher on average). Columns image, cls, x, y, w, h, score."""
    rng = np.random.default_rng(seed)
    found = rng.random(len(image)) < keep
    img, c, box = image[found], cls[found].copy(), xywh[found].astype(np.float64)
    scale = np.repeat(box[:, 2:], 2, axis=1) * jitter
    box = box + rng.normal(0, 1, box.shape) * scale
    box[:, 2:] = np.maximum(box[:, 2:], 1.0)
    swapped = rng.random(len(c)) < swap
    c[swapped] = rng.integers(0, num_classes, int(swapped.sum()))
    twice = rng.random(len(c)) < duplicate
    img, c, box = np.r_[img, img[twice]], np.r_[c, c[twice]], np.r_[box, box[twice]]
    score = np.clip(rng.beta(5, 2, len(c)), 0, 1)
    n_random = int(len(image) * random_boxes)
    if n_random and len(image):
        at = rng.integers(0, len(image), n_random)  # near some box of a random image
        spread = np.maximum(xywh[at, 2:], 4.0)
        r_xy = xywh[at, :2] + rng.normal(0, 1, (n_random, 2)) * spread * 2
        r_wh = spread * rng.uniform(0.3, 1.5, (n_random, 2))
        img = np.r_[img, image[rng.integers(0, len(image), n_random)]]
        c = np.r_[c, rng.integers(0, num_classes, n_random)]
        box = np.r_[box, np.c_[np.maximum(r_xy, 0), r_wh]]
        score = np.r_[score, np.clip(rng.beta(2, 5, n_random), 0, 1)]
    score = np.round(score, 4)  # equal scores happen in real files; ties must be handled
    return {
        "image": img,
        "cls": c,
        "x": box[:, 0],
        "y": box[:, 1],
        "w": box[:, 2],
        "h": box[:, 3],
        "score": score,
    }
