"""Zero-shot tags: each image given the label a CLIP/SigLIP model finds likeliest among a
list (prompted as "a photo of a {label}"), as a tag, when the model is sure enough; and,
when the labels are the dataset's own classes, the images whose ground truth the model
disagrees with (a check of the labels that needs no trained detector)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from visor.embedding.models import load_model, random_weights_warning
from visor.services.edits import Edits
from visor.services.jobs import JobContext
from visor.store import Store
from visor.store import analyses as analysis_rows
from visor.store import embeddings as vector_rows
from visor.store import samples as sample_rows

DISAGREES = "disagrees"  # the tag (after the prefix) of images whose class the model doubts
EXAMPLES = 12


def tag_zero_shot(
    store: Store,
    ctx: JobContext,
    dataset: dict[str, Any],
    edits: Edits,
    *,
    model: str,
    labels: list[str],
    template: str,
    threshold: float,
    prefix: str,
    classes: bool,
    compiled: Path | None = None,
) -> dict[str, Any]:
    """Tag every embedded image with `prefix + label` of its likeliest label when that
    label's probability reaches `threshold`, as one undoable edit. With `classes` (the labels
    are the dataset's classes), images whose classes don't hold their zero-shot class are
    tagged `prefix + "disagrees"` in the same edit and counted for the health report.
    `compiled`: where the text tower's OpenVINO conversion is kept."""
    started = time.perf_counter()
    embedder = load_model(model, cache_dir=compiled)
    ctx.phase(f"scoring {len(labels)} labels")
    prompts = embedder.encode_text([template.format(label) for label in labels])
    ids, vectors = vector_rows.vectors(store, dataset["id"], model)
    assert embedder.text is not None  # checked before the job
    best = np.empty(len(ids), dtype=np.int64)
    sure = np.empty(len(ids), dtype=np.float32)
    for start in range(0, len(ids), 65_536):  # (n, labels) at a time, not all at once
        found = embedder.text.probabilities(vectors[start : start + 65_536], prompts)
        best[start : start + len(found)] = found.argmax(axis=1)
        sure[start : start + len(found)] = found.max(axis=1)
    kept = sure >= threshold
    tagged = {f"{prefix}{label}": ids[kept & (best == i)] for i, label in enumerate(labels)}
    disagree = None
    if classes:
        held = sample_rows.classes_of(store, dataset["id"], ids)
        doubted = np.array(
            [
                bool(k) and bool(h) and labels[b] not in h
                for b, k, h in zip(best, kept, held, strict=True)
            ],
            dtype=bool,
        )
        tagged[f"{prefix}{DISAGREES}"] = ids[doubted]
        disagree = int(doubted.sum())
    edit = edits.tag(tagged, who="zero-shot")
    summary = {
        "labels": labels,
        "samples": len(ids),
        "tagged": {tag: len(v) for tag, v in tagged.items()},
        "disagree": disagree,
        "disagree_tag": f"{prefix}{DISAGREES}" if classes else None,
        "examples": [int(i) for i in tagged.get(f"{prefix}{DISAGREES}", ids[:0])[:EXAMPLES]],
    }
    params = {"template": template, "threshold": threshold, "prefix": prefix}
    analysis_rows.record(store, dataset["id"], "zero_shot", model, params, summary, ctx.job.id)
    return {
        **summary,
        "model": model,
        "batch": edit["batch"],
        "changes": edit["changes"],
        "seconds": round(time.perf_counter() - started, 2),
        "warning": random_weights_warning(model),
    }
