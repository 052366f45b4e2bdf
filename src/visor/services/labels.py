"""The label-errors job: for every image-level label, out-of-sample class probabilities from
the image's nearest neighbours (by the model's vectors), and cleanlab's verdict on the label.

Boxes are not scored here: they need a vector of their own (object embeddings)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa

from visor.embedding.models import with_weights_warning
from visor.errors import InvalidInput
from visor.quality.labels import NEIGHBOURS, label_issues, neighbour_probabilities
from visor.services.jobs import JobContext
from visor.services.search import neighbour_graph, unit_rows
from visor.store import Store
from visor.store import embeddings as vector_rows
from visor.store import label_quality as label_rows


def find_label_errors(
    store: Store, ctx: JobContext, dataset: dict[str, Any], model: str
) -> dict[str, Any]:
    started = time.monotonic()
    ctx.phase("reading labels and vectors")
    reason = not_applicable(store, dataset)
    if reason:
        raise InvalidInput(reason)
    labels = label_rows.image_labels(store, dataset["id"])
    ids, vectors = vector_rows.vectors(store, dataset["id"], model)  # ids ascending
    sample_of = labels["sample_id"].to_numpy()
    embedded = np.isin(sample_of, ids)
    names = np.asarray(labels["class"].to_pylist(), dtype=str)
    present, counts = np.unique(names[embedded], return_counts=True)
    lonely = present[counts < 2].tolist()  # one example: no other image can vote for it
    scored = embedded & ~np.isin(names, lonely)
    if scored.sum() < 3 or len(np.unique(names[scored])) < 2:
        raise InvalidInput(
            f"dataset {dataset['name']!r}: label errors need at least 3 embedded, labelled "
            "images in at least 2 classes with 2 or more examples each"
        )
    unit = unit_rows(vectors[np.searchsorted(ids, sample_of[scored])])
    ctx.phase(f"finding each image's {NEIGHBOURS} nearest neighbours", total=len(unit))
    neighbours, similarities = neighbour_graph(
        unit, NEIGHBOURS, lambda done, total: ctx.progress(done, total)
    )
    ctx.check_cancelled()
    ctx.phase("scoring labels with cleanlab")
    # Re-index the classes over the scored labels only.
    kept_classes, given = np.unique(names[scored], return_inverse=True)
    probabilities = neighbour_probabilities(neighbours, similarities, given, len(kept_classes))
    found = label_issues(given, probabilities)
    rows = pa.table(
        {
            "label_id": pa.array(labels["id"].to_numpy()[scored]),
            "sample_id": pa.array(sample_of[scored].astype(np.int32)),
            "model": pa.repeat(pa.scalar(model), int(scored.sum())),
            "quality": pa.array(found.quality.astype(np.float32)),
            "issue": pa.array(found.issue),
            "given": pa.array(kept_classes[given].astype(str)),
            "suggested": pa.array(kept_classes[found.suggested].astype(str)),
            "suggested_probability": pa.array(
                found.probabilities[np.arange(len(given)), found.suggested].astype(np.float32)
            ),
        }
    )
    label_rows.save(store, dataset["id"], rows)
    return with_weights_warning(
        {
            "model": model,
            "labels": labels.num_rows,
            "scored": int(scored.sum()),
            "flagged": int(found.issue.sum()),
            "not_embedded": int((~embedded).sum()),
            "classes_with_one_example": lonely,
            "seconds": round(time.monotonic() - started, 2),
        }
    )


def not_applicable(store: Store, dataset: dict[str, Any]) -> str | None:
    """Why label errors can't be found in this dataset, or None when they can (it has
    image-level labels)."""
    image_labels, labels = label_rows.ground_truth_counts(store, dataset["id"])
    if image_labels:
        return None
    if labels:
        return (
            f"dataset {dataset['name']!r} has boxes, not image labels: boxes need a vector per "
            "box (object embeddings), which this version does not make yet"
        )
    return f"dataset {dataset['name']!r} has no labels: label errors do not apply to it"


def summary(store: Store, dataset_id: int, examples: int = 12) -> dict[str, Any] | None:
    found = label_rows.summary(store, dataset_id, examples)
    return with_weights_warning(found) if found else None
