"""The image-quality job: each image's pixel statistics (batches committed as they finish, so
a stopped job keeps its work and a new one measures only what is missing), then every sample's
issues from the whole dataset's statistics (odd size compares images with each other)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from visor.embedding.pipeline import default_workers
from visor.errors import VisorError
from visor.media.images import decode
from visor.quality.images import ISSUES, ImageStats, image_stats, issues
from visor.services.jobs import JobContext
from visor.sources import Source
from visor.store import Store
from visor.store import quality as quality_rows

BATCH = 256
MAX_SIDE = 1024  # statistics are read from a copy no larger (JPEGs decode at that scale)
REPORT_LIMIT = 100


def _draft(size: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, MAX_SIDE / max(size))
    return max(1, int(size[0] * scale)), max(1, int(size[1] * scale))


def inspect(image: Image.Image) -> ImageStats:
    """The statistics of an image decoded for something else (the embed job's decode): read
    from a copy no larger than `MAX_SIDE`, as the quality job reads them."""
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        )
    return image_stats(image)


def measure(source: Source, path: str) -> ImageStats | str:
    """One image's statistics, or why it could not be read."""
    try:
        return inspect(decode(source.read_bytes(path), path, draft=_draft))
    except VisorError as e:
        return e.message
    except OSError as e:
        return f"{path}: cannot read ({e})"


def compute_quality(
    store: Store, ctx: JobContext, dataset: dict[str, Any], *, workers: int | None = None
) -> dict[str, Any]:
    source = Source(dataset["root"])
    todo = quality_rows.missing(store, dataset["id"])
    ctx.phase(f"measuring {len(todo):,} images", total=len(todo))
    failed: list[dict[str, Any]] = []
    done = 0
    with ThreadPoolExecutor(workers or default_workers()) as pool:
        for start in range(0, len(todo), BATCH):
            ctx.check_cancelled()
            batch = todo[start : start + BATCH]
            ids, stats = [], []
            for (sample_id, _), found in zip(
                batch, pool.map(lambda item: measure(source, item[1]), batch), strict=True
            ):
                if isinstance(found, ImageStats):
                    ids.append(sample_id)
                    stats.append(found)
                else:
                    failed.append({"sample_id": sample_id, "reason": found})
            if ids:
                quality_rows.add_stats(store, dataset["id"], ids, ImageStats.columns(stats))
            done += len(batch)
            ctx.progress(done)
    ctx.phase("finding issues")
    counted = update_issues(store, dataset["id"])
    return {**counted, "failed_count": len(failed), "failed": failed[:REPORT_LIMIT]}


def update_issues(store: Store, dataset_id: int) -> dict[str, Any]:
    """Every measured sample's issues, from the dataset's statistics as they are now."""
    stats = quality_rows.stats(store, dataset_id)
    ids = stats.pop("sample_id")
    flags = issues(stats)
    names = np.array(ISSUES)
    matrix = np.stack([flags[name] for name in ISSUES], axis=1)
    found = [names[row].tolist() for row in matrix]
    quality_rows.set_issues(store, dataset_id, ids, found)
    return {
        "measured": len(ids),
        "issues": {name: int(flags[name].sum()) for name in ISSUES},
    }


def summary(store: Store, dataset_id: int) -> dict[str, Any] | None:
    """`update_issues`'s answer as the issues stand, without computing them again (None when
    nothing was measured)."""
    found = quality_rows.counts(store, dataset_id)
    if not found["measured"]:
        return None
    issues_now = found["issues"]
    return {
        "measured": found["measured"],
        "issues": {name: int(issues_now.get(name, 0)) for name in ISSUES},
        "measured_now": 0,
    }


def report(store: Store, dataset: dict[str, Any], examples: int = 12) -> dict[str, Any]:
    """Per issue: count, share of the measured samples, the first `examples` (worst first)."""
    found = quality_rows.counts(store, dataset["id"])
    measured = found["measured"]
    rows = []
    for name in ISSUES:
        count = found["issues"].get(name, 0)
        rows.append(
            {
                "issue": name,
                "count": count,
                "share": round(count / measured, 4) if measured else 0.0,
                "examples": quality_rows.examples(store, dataset["id"], name, examples)
                if count
                else [],
            }
        )
    return {
        "dataset": dataset["name"],
        "samples": dataset["num_samples"],
        "measured": measured,
        "issues": rows,
    }
