"""Label-quality rows: each scored label's quality, verdict and suggested class."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from visor.store.db import Store


def image_labels(store: Store, dataset_id: int) -> pa.Table:
    """id, sample_id, class of every image-level ground-truth label (no box), by id."""
    return store.query_arrow(
        "SELECT id, sample_id, class FROM labels WHERE dataset_id = ? AND kind = 'gt' "
        "AND x IS NULL AND class IS NOT NULL ORDER BY id",
        [dataset_id],
    )


def box_labels(store: Store, dataset_id: int) -> pa.Table:
    """id, sample_id, class of every ground-truth box with a class, by id."""
    return store.query_arrow(
        "SELECT id, sample_id, class FROM labels WHERE dataset_id = ? AND kind = 'gt' "
        "AND x IS NOT NULL AND class IS NOT NULL ORDER BY id",
        [dataset_id],
    )


def ground_truth_counts(store: Store, dataset_id: int) -> tuple[int, int]:
    """(image-level ground-truth labels, all ground-truth labels) of a dataset."""
    found = store.query_one(
        "SELECT count(*) FILTER (WHERE x IS NULL), count(*) FROM labels "
        "WHERE dataset_id = ? AND kind = 'gt'",
        [dataset_id],
    )
    return (int(found[0]), int(found[1])) if found else (0, 0)


def save(store: Store, dataset_id: int, rows: pa.Table) -> None:
    """Replace the dataset's label-quality rows with `rows` (one transaction)."""
    n = rows.num_rows
    table = rows.append_column("dataset_id", pa.repeat(pa.scalar(dataset_id, pa.int32()), n))
    with store.transaction() as cur:
        cur.execute("DELETE FROM label_quality WHERE dataset_id = ?", [dataset_id])
        store.insert_arrow(cur, "label_quality", table)


def of_sample(store: Store, dataset_id: int, sample_id: int) -> dict[int, dict[str, Any]]:
    """By label id: quality, issue, suggested class and its probability, and the model, of
    one sample's scored labels."""
    rows = store.query(
        "SELECT label_id, quality, issue, suggested, suggested_probability, model "
        "FROM label_quality WHERE dataset_id = ? AND sample_id = ?",
        [dataset_id, sample_id],
    )
    return {
        int(label): {
            "quality": round(float(quality), 4),
            "issue": bool(issue),
            "suggested": suggested,
            "suggested_probability": round(float(p), 4),
            "model": model,
        }
        for label, quality, issue, suggested, p, model in rows
    }


def summary(store: Store, dataset_id: int, examples: int) -> dict[str, Any] | None:
    """Labels scored and flagged, and the flagged samples with the lowest quality first."""
    found = store.query_one(
        "SELECT count(*), count(*) FILTER (WHERE issue), any_value(model) FROM label_quality "
        "WHERE dataset_id = ?",
        [dataset_id],
    )
    if not found or not found[0]:
        return None
    worst = store.query(
        "SELECT sample_id FROM label_quality WHERE dataset_id = ? AND issue "
        f"GROUP BY sample_id ORDER BY min(quality), sample_id LIMIT {int(examples)}",
        [dataset_id],
    )
    flagged_samples = store.query_one(
        "SELECT count(DISTINCT sample_id) FROM label_quality WHERE dataset_id = ? AND issue",
        [dataset_id],
    )
    return {
        "scored": int(found[0]),
        "flagged": int(found[1]),
        "flagged_samples": int(flagged_samples[0]) if flagged_samples else 0,
        "model": found[2],
        "examples": [int(r[0]) for r in worst],
    }


def save_detection(store: Store, dataset_id: int, images: pa.Table, boxes: pa.Table) -> None:
    """Replace the dataset's detection label check (per image and per box)."""
    with store.transaction() as cur:
        for table, rows in (("detection_quality", images), ("detection_boxes", boxes)):
            cur.execute(f"DELETE FROM {table} WHERE dataset_id = ?", [dataset_id])
            n = rows.num_rows
            ids = pa.repeat(pa.scalar(dataset_id, pa.int32()), n)
            store.insert_arrow(cur, table, rows.append_column("dataset_id", ids))


def detection_of_sample(store: Store, dataset_id: int, sample_id: int) -> dict[str, Any] | None:
    """The detection check of one sample: its score and verdict, and its flagged boxes."""
    found = store.query_one(
        "SELECT source, quality, issue FROM detection_quality "
        "WHERE dataset_id = ? AND sample_id = ?",
        [dataset_id, sample_id],
    )
    if not found:
        return None
    boxes = store.query_dicts(
        "SELECT d.label_id, d.signal, d.score, l.class, l.kind FROM detection_boxes d "
        "JOIN labels l ON l.dataset_id = d.dataset_id AND l.id = d.label_id "
        "WHERE d.dataset_id = ? AND d.sample_id = ? AND d.issue ORDER BY d.score, d.label_id",
        [dataset_id, sample_id],
    )
    for box in boxes:
        box["score"] = round(float(box["score"]), 4)
    return {
        "source": found[0],
        "quality": round(float(found[1]), 4),
        "issue": bool(found[2]),
        "boxes": boxes,
    }


def detection_summary(store: Store, dataset_id: int, examples: int) -> dict[str, Any] | None:
    """Images checked and flagged, flagged boxes by signal, the worst flagged images."""
    found = store.query_one(
        "SELECT count(*), count(*) FILTER (WHERE issue), any_value(source) "
        "FROM detection_quality WHERE dataset_id = ?",
        [dataset_id],
    )
    if not found or not found[0]:
        return None
    signals = dict(
        store.query(
            "SELECT signal, count(*) FROM detection_boxes WHERE dataset_id = ? AND issue "
            "GROUP BY 1 ORDER BY 1",
            [dataset_id],
        )
    )
    worst = store.query(
        "SELECT sample_id FROM detection_quality WHERE dataset_id = ? AND issue "
        f"ORDER BY quality, sample_id LIMIT {int(examples)}",
        [dataset_id],
    )
    return {
        "checked": int(found[0]),
        "flagged": int(found[1]),
        "source": found[2],
        "boxes_flagged": {str(k): int(v) for k, v in signals.items()},
        "examples": [int(r[0]) for r in worst],
    }
