"""Data out as the ecosystem reads it: a dataset's samples (or its boxes) as one Arrow table,
and read-only SQL over the store."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from visor.errors import InvalidInput
from visor.store.db import Store
from visor.store.samples import SampleFilter

_SAMPLES = """
SELECT s.id AS sample_id, s.path, s.filename, s.width, s.height, s.size_bytes, s.split,
       s.classes, s.tags, s.num_labels, s.duplicate_group, s.uniqueness,
       (SELECT q.issues FROM image_quality q
         WHERE q.dataset_id = s.dataset_id AND q.sample_id = s.id) AS quality_issues,
       (SELECT min(l.quality) FROM label_quality l
         WHERE l.dataset_id = s.dataset_id AND l.sample_id = s.id) AS label_quality,
       coalesce((SELECT bool_or(l.issue) FROM label_quality l
         WHERE l.dataset_id = s.dataset_id AND l.sample_id = s.id), false) AS label_issue
FROM samples s WHERE {where} ORDER BY s.id
"""
_BOXES = """
SELECT l.id AS label_id, l.sample_id, s.path, s.split, l.kind, l.source, l.class,
       l.x, l.y, l.w, l.h, l.score, l.iscrowd
FROM labels l JOIN samples s ON s.dataset_id = l.dataset_id AND s.id = l.sample_id
WHERE l.dataset_id = ? AND l.sample_id IN (SELECT id FROM samples WHERE {where})
ORDER BY l.sample_id, l.id
"""


def samples_table(
    store: Store, dataset_id: int, filters: SampleFilter, *, labels: bool = False
) -> pa.Table:
    """One row per sample (path, size, split, classes, tags and every score), or with
    `labels` one row per label (its box, class, kind, source and score)."""
    where, params = filters.where(dataset_id)
    if labels:
        sql, params = _BOXES.format(where=where), [dataset_id, *params]
    else:
        sql = _SAMPLES.format(where=where)
    cur = store.cursor()
    with store.registered(cur, filters.relations()):
        return cur.sql(sql, params=params).to_arrow_table()


def read_only(store: Store, sql: str) -> pa.Table:
    """The result of one SELECT over the store; anything else is refused, unrun."""
    cur = store.cursor()
    try:
        statements = cur.extract_statements(sql)
    except duckdb.Error as e:
        raise InvalidInput(f"sql: {e}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "nothing"
        raise InvalidInput(
            f"sql: only one SELECT is run (the store is read-only here); this is {kinds}"
        )
    try:
        return cur.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise InvalidInput(f"sql: {e}") from None
