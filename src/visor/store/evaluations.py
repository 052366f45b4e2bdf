"""Evaluations: their metrics, the outcome of every box and the counts per sample."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from visor.store.db import Store
from visor.store.filters import _IDS, id_relation

_COLUMNS = "id, name, source, params, metrics, job_id, seconds, created_at"


def _row(values: tuple[Any, ...], with_metrics: bool = True) -> dict[str, Any]:
    row = dict(zip([c.strip() for c in _COLUMNS.split(",")], values, strict=True))
    row["params"] = json.loads(row["params"]) if row["params"] else {}
    metrics = json.loads(row.pop("metrics")) if row["metrics"] else {}
    if with_metrics:
        row["metrics"] = metrics
    else:
        row["summary"] = metrics.get("summary", {})
        row["counts"] = metrics.get("counts", {})
    row["created_at"] = row["created_at"].isoformat() if row["created_at"] else None
    return row


def list_evaluations(store: Store, dataset_id: int) -> list[dict[str, Any]]:
    rows = store.query(
        f"SELECT {_COLUMNS} FROM evaluations WHERE dataset_id = ? ORDER BY created_at, id",
        [dataset_id],
    )
    return [_row(r, with_metrics=False) for r in rows]


def get(store: Store, dataset_id: int, name: str) -> dict[str, Any] | None:
    found = store.query_one(
        f"SELECT {_COLUMNS} FROM evaluations WHERE dataset_id = ? AND name = ?", [dataset_id, name]
    )
    return _row(found) if found else None


def id_of(store: Store, dataset_id: int, name: str) -> int | None:
    found = store.query_one(
        "SELECT id FROM evaluations WHERE dataset_id = ? AND name = ?", [dataset_id, name]
    )
    return int(found[0]) if found else None


def boxes(
    store: Store, dataset_id: int, kind: str, source: str | None, split: str | None = None
) -> pa.Table:
    """id, sample_id, class, x, y, w, h, score, crowd of a dataset's boxes of one kind (and
    prediction source; and on the images of one split), in id order."""
    return store.query_arrow(
        "SELECT id, sample_id, class, x, y, w, h, score, coalesce(iscrowd, false) AS crowd "
        "FROM labels WHERE dataset_id = ? AND kind = ? AND x IS NOT NULL AND class IS NOT NULL"
        + (" AND source = ?" if source is not None else "")
        + (
            " AND sample_id IN (SELECT id FROM samples WHERE dataset_id = ? AND split = ?)"
            if split is not None
            else ""
        )
        + " ORDER BY id",
        [
            dataset_id,
            kind,
            *([source] if source is not None else []),
            *([dataset_id, split] if split is not None else []),
        ],
    )


def unpredicted_splits(
    store: Store, dataset_id: int, source: str
) -> tuple[list[str | None], list[tuple[str | None, int, int]]]:
    """The splits of the images `source` predicted on, and of every other split that has
    ground-truth boxes: (split, images with boxes, boxes)."""
    join = (
        "FROM labels l JOIN samples s ON s.dataset_id = l.dataset_id AND s.id = l.sample_id "
        "WHERE l.dataset_id = ? AND "
    )
    predicted = [
        r[0]
        for r in store.query(
            f"SELECT DISTINCT s.split {join} l.kind = 'prediction' AND l.source = ? "
            "ORDER BY 1 NULLS FIRST",
            [dataset_id, source],
        )
    ]
    boxes = store.query(
        f"SELECT s.split, count(DISTINCT s.id), count(*) {join} l.kind = 'gt' "
        "AND l.x IS NOT NULL AND l.class IS NOT NULL GROUP BY 1 ORDER BY 1 NULLS FIRST",
        [dataset_id],
    )
    return predicted, [(r[0], int(r[1]), int(r[2])) for r in boxes if r[0] not in predicted]


def save(
    store: Store,
    dataset_id: int,
    evaluation: dict[str, Any],
    boxes: pa.Table,
    samples: pa.Table,
) -> int:
    """Write an evaluation with its per-box and per-sample results in one transaction,
    replacing one of the same name; returns its id."""
    with store.transaction() as cur:
        old = cur.execute(
            "SELECT id FROM evaluations WHERE dataset_id = ? AND name = ?",
            [dataset_id, evaluation["name"]],
        ).fetchall()
        for (old_id,) in old:
            _delete(cur, old_id)
        found = cur.execute("SELECT nextval('evaluation_ids')").fetchone()
        assert found is not None
        evaluation_id = int(found[0])
        cur.execute(
            "INSERT INTO evaluations (id, dataset_id, name, source, params, metrics, job_id, "
            "seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                evaluation_id,
                dataset_id,
                evaluation["name"],
                evaluation["source"],
                json.dumps(evaluation["params"]),
                json.dumps(evaluation["metrics"]),
                evaluation.get("job_id"),
                evaluation.get("seconds"),
            ],
        )
        n = boxes.num_rows
        store.insert_arrow(
            cur,
            "evaluation_boxes",
            boxes.append_column("evaluation_id", pa.repeat(evaluation_id, n)),
        )
        m = samples.num_rows
        store.insert_arrow(
            cur,
            "evaluation_samples",
            samples.append_column("evaluation_id", pa.repeat(evaluation_id, m)),
        )
    return evaluation_id


def _delete(cur: Any, evaluation_id: int) -> None:
    for table in ("evaluation_boxes", "evaluation_samples"):
        cur.execute(f"DELETE FROM {table} WHERE evaluation_id = ?", [evaluation_id])
    cur.execute("DELETE FROM evaluations WHERE id = ?", [evaluation_id])


def delete(store: Store, dataset_id: int, name: str) -> bool:
    with store.transaction() as cur:
        found = cur.execute(
            "SELECT id FROM evaluations WHERE dataset_id = ? AND name = ?", [dataset_id, name]
        ).fetchall()
        for (evaluation_id,) in found:
            _delete(cur, evaluation_id)
    return bool(found)


def outcomes(
    store: Store, evaluation_id: int, sample_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """Outcome, IoU, matched box and confusion cell of every evaluated box of the given
    samples, by label id."""
    rows = store.query(
        "SELECT label_id, outcome, iou, match_id, gt_class, pred_class FROM evaluation_boxes "
        f"WHERE evaluation_id = ? AND sample_id IN (SELECT id FROM {_IDS})",
        [evaluation_id],
        id_relation(sample_ids),
    )
    return {
        int(label): {
            "outcome": outcome,
            "iou": None if iou is None else round(float(iou), 4),
            "match": None if match is None else int(match),
            "cell": [gt_class, pred_class],
        }
        for label, outcome, iou, match, gt_class, pred_class in rows
    }


def cell_labels(
    store: Store, evaluation_id: int, gt_class: str | None, pred_class: str | None, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """(boxes in a confusion cell, up to `limit` of them with their sample)."""
    where = (
        "evaluation_id = ? AND gt_class IS NOT DISTINCT FROM ? "
        "AND pred_class IS NOT DISTINCT FROM ?"
    )
    params = [evaluation_id, gt_class, pred_class]
    total = store.query_one(f"SELECT count(*) FROM evaluation_boxes WHERE {where}", params)
    rows = store.query_dicts(
        f"SELECT sample_id, label_id, kind, outcome FROM evaluation_boxes WHERE {where} "
        f"ORDER BY sample_id, label_id LIMIT {int(limit)}",
        params,
    )
    return (int(total[0]) if total else 0), rows


def sample_counts(store: Store, evaluation_id: int) -> pa.Table:
    """sample_id, tp, fp, fn, confused of every sample the evaluation counted, by sample id."""
    return store.query_arrow(
        "SELECT sample_id, tp, fp, fn, confused FROM evaluation_samples "
        "WHERE evaluation_id = ? ORDER BY sample_id",
        [evaluation_id],
    )
