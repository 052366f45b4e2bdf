"""Reading samples and labels: paging, filters, sorting; tags."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa

from visor.errors import InvalidInput
from visor.store import label_quality
from visor.store.db import Store

SORTABLE = (
    "id",
    "filename",
    "path",
    "size_bytes",
    "width",
    "height",
    "num_labels",
    "split",
    "uniqueness",
    "duplicate_group",
)
_SAMPLE_COLUMNS = (
    "id, path, filename, width, height, size_bytes, split, classes, tags, flags, "
    "num_labels, metadata, duplicate_group, uniqueness"
)


@dataclass(slots=True)
class SampleFilter:
    split: str | None = None
    category: str | None = None
    tag: str | None = None
    filename: str | None = None
    has_label: bool | None = None
    ids: Sequence[int] | np.ndarray | None = None  # e.g. a lasso: any number of ids
    duplicate_group: int | None = None
    has_duplicates: bool | None = None
    uniqueness_min: float | None = None
    uniqueness_max: float | None = None
    # An evaluation's results (by its name): samples with a box of this outcome (tp, fp, fn,
    # error: fp or fn, confused), or with a box in this confusion cell (gt class, predicted
    # class; "" is the background). The evaluation also gives the `eval.*` sorts.
    evaluation: str | None = None
    outcome: str | None = None
    confusion: tuple[str, str] | None = None
    quality_issue: str | None = None  # an image-quality issue (dark, blurry, ...)
    leaked: bool | None = None  # in a duplicate group that spans splits
    label_issue: bool | None = None  # a label cleanlab finds likely wrong
    object_issue: str | None = None  # a box that is an outlier, or in a duplicate group
    detection_issue: bool | None = None  # flagged by cleanlab's detection check

    def where(self, dataset_id: int) -> tuple[str, list[Any]]:
        clauses: list[str] = ["dataset_id = ?"]
        params: list[Any] = [dataset_id]
        if self.split is not None:
            clauses.append("split = ?")
            params.append(self.split)
        if self.category is not None:
            clauses.append("list_contains(classes, ?)")
            params.append(self.category)
        if self.tag is not None:
            clauses.append("list_contains(tags, ?)")
            params.append(self.tag)
        if self.filename:
            clauses.append("contains(lower(path), ?)")
            params.append(self.filename.lower())
        if self.has_label is not None:
            clauses.append("num_labels > 0" if self.has_label else "num_labels = 0")
        if self.ids is not None:
            clauses.append(f"id IN (SELECT id FROM {_IDS})")
        if self.duplicate_group is not None:
            clauses.append("duplicate_group = ?")
            params.append(self.duplicate_group)
        if self.has_duplicates is not None:
            clauses.append(
                "duplicate_group IS NOT NULL" if self.has_duplicates else "duplicate_group IS NULL"
            )
        if self.uniqueness_min is not None:
            clauses.append("uniqueness >= ?")
            params.append(self.uniqueness_min)
        if self.uniqueness_max is not None:
            clauses.append("uniqueness <= ?")
            params.append(self.uniqueness_max)
        if self.leaked is not None:
            clauses.append(
                ("" if self.leaked else "NOT ")
                + "coalesce(duplicate_group IN (SELECT duplicate_group FROM samples "
                "WHERE dataset_id = ? AND duplicate_group IS NOT NULL GROUP BY 1 "
                "HAVING count(DISTINCT coalesce(split, '(none)')) > 1), false)"
            )
            params.append(dataset_id)
        if self.label_issue is not None:
            clauses.append(
                ("" if self.label_issue else "NOT ")
                + "id IN (SELECT sample_id FROM label_quality WHERE dataset_id = ? AND issue)"
            )
            params.append(dataset_id)
        if self.detection_issue is not None:
            clauses.append(
                ("" if self.detection_issue else "NOT ")
                + "id IN (SELECT sample_id FROM detection_quality WHERE dataset_id = ? AND issue)"
            )
            params.append(dataset_id)
        if self.object_issue is not None:
            column = OBJECT_ISSUES.get(self.object_issue)
            if column is None:
                raise InvalidInput(
                    f"object_issue {self.object_issue!r}: use one of {', '.join(OBJECT_ISSUES)}"
                )
            clauses.append(
                f"id IN (SELECT sample_id FROM object_scores WHERE dataset_id = ? AND {column})"
            )
            params.append(dataset_id)
        if self.quality_issue is not None:
            clauses.append(
                "id IN (SELECT sample_id FROM image_quality WHERE dataset_id = ? "
                "AND list_contains(issues, ?))"
            )
            params += [dataset_id, self.quality_issue]
        if self.evaluation is not None and (self.outcome or self.confusion):
            clauses.append(self._evaluation_clause(dataset_id, params))
        return " AND ".join(clauses), params

    def _evaluation_clause(self, dataset_id: int, params: list[Any]) -> str:
        evaluation = "(SELECT id FROM evaluations WHERE dataset_id = ? AND name = ?)"
        if self.confusion is not None:
            gt_class, pred_class = (c or None for c in self.confusion)
            params += [dataset_id, self.evaluation, gt_class, pred_class]
            return (
                f"id IN (SELECT sample_id FROM evaluation_boxes WHERE evaluation_id = {evaluation} "
                "AND gt_class IS NOT DISTINCT FROM ? AND pred_class IS NOT DISTINCT FROM ?)"
            )
        counts = {
            "tp": "tp > 0",
            "fp": "fp > 0",
            "fn": "fn > 0",
            "error": "fp + fn > 0",
            "confused": "confused > 0",
        }
        if self.outcome not in counts:
            raise InvalidInput(f"outcome {self.outcome!r}: use {', '.join(counts)}")
        params += [dataset_id, self.evaluation]
        return (
            f"id IN (SELECT sample_id FROM evaluation_samples WHERE evaluation_id = {evaluation} "
            f"AND {counts[self.outcome]})"
        )

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def relations(self) -> dict[str, pa.Table]:
        """The tables `where()` reads (pass them to the query)."""
        return {} if self.ids is None else id_relation(self.ids)


_IDS = "_visor_ids"
# The object analysis's per-box results a sample can be filtered by (samples holding one).
OBJECT_ISSUES = {"outlier": "outlier", "duplicate": "duplicate_group IS NOT NULL"}


def id_relation(ids: Sequence[int] | np.ndarray) -> dict[str, pa.Table]:
    """A set of sample ids as a table that SQL reads as `_visor_ids` (column `id`)."""
    return {_IDS: pa.table({"id": np.asarray(ids, dtype=np.int32)})}


# The lowest quality among a sample's scored labels (from label-errors).
LABEL_QUALITY = (
    "(SELECT min(q.quality) FROM label_quality q "
    "WHERE q.dataset_id = samples.dataset_id AND q.sample_id = samples.id)"
)
# cleanlab's detection check: the image's label quality score.
DETECTION_QUALITY = (
    "(SELECT min(d.quality) FROM detection_quality d "
    "WHERE d.dataset_id = samples.dataset_id AND d.sample_id = samples.id)"
)
EVALUATION_SORTS = {"tp": "e.tp", "fp": "e.fp", "fn": "e.fn", "errors": "e.fp + e.fn"}


def _sort_key(sort: str, dataset_id: int, evaluation: str | None = None) -> str:
    """The SQL expression a page is sorted by (then by id)."""
    if sort in SORTABLE:
        return sort
    if sort == "label_quality":
        return LABEL_QUALITY
    if sort == "detection_quality":
        return DETECTION_QUALITY
    if sort.startswith("eval."):
        field = sort.removeprefix("eval.")
        if field not in EVALUATION_SORTS:
            raise InvalidInput(f"sort: {sort!r}: use eval.{', eval.'.join(EVALUATION_SORTS)}")
        if evaluation is None:
            raise InvalidInput(f"sort: {sort!r} needs an evaluation")
        name = evaluation.replace("'", "''")
        return (
            f"(SELECT {EVALUATION_SORTS[field]} FROM evaluation_samples e "
            "WHERE e.evaluation_id = (SELECT id FROM evaluations "
            f"WHERE dataset_id = {int(dataset_id)} AND name = '{name}') "
            "AND e.sample_id = samples.id)"
        )
    if sort.startswith("metadata."):
        key = sort.removeprefix("metadata.")
        if not key.replace("_", "").isalnum():
            raise InvalidInput(f"sort: metadata field {key!r} must be letters, digits or _")
        return f"TRY_CAST(json_extract_string(metadata, '$.{key}') AS DOUBLE)"
    raise InvalidInput(
        f"sort: unknown field {sort!r} (use {', '.join(SORTABLE)} or metadata.<numeric field>)"
    )


def _sample(row: tuple[Any, ...]) -> dict[str, Any]:
    names = [c.strip() for c in _SAMPLE_COLUMNS.split(",")]
    sample = dict(zip(names, row, strict=True))
    sample["metadata"] = json.loads(sample["metadata"]) if sample["metadata"] else {}
    for key in ("classes", "tags", "flags"):
        sample[key] = sample[key] or []
    if sample["uniqueness"] is not None:  # a FLOAT column: no false digits
        sample["uniqueness"] = round(float(sample["uniqueness"]), 4)
    return sample


def page(
    store: Store,
    dataset_id: int,
    filters: SampleFilter,
    *,
    offset: int = 0,
    limit: int = 100,
    sort: str = "id",
    descending: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    """(number of matching samples, one page of them)."""
    where, params = filters.where(dataset_id)
    key = _sort_key(sort, dataset_id, filters.evaluation)
    direction = "DESC" if descending else "ASC"
    # One scan for both the count and the page's ids (the matches are kept, with their sort
    # key, for the two), then the page's rows by id: at 1M samples with a class filter this
    # is ~2x faster than a count and a top-N that carries every column.
    order = f"sort_key {direction} NULLS LAST, id ASC"
    found = store.query_one(
        f"WITH matches AS MATERIALIZED (SELECT id, {key} AS sort_key FROM samples "
        f"WHERE {where}) "
        "SELECT (SELECT count(*) FROM matches), "
        f"(SELECT list(id ORDER BY {order}) FROM (SELECT id, sort_key FROM matches "
        f"ORDER BY {order} LIMIT {int(limit)} OFFSET {int(offset)}))",
        params,
        filters.relations(),
    )
    total, ids = (int(found[0]), [int(i) for i in found[1] or []]) if found else (0, [])
    rows = store.query(
        f"SELECT {_SAMPLE_COLUMNS} FROM samples "
        f"WHERE dataset_id = ? AND id IN (SELECT id FROM {_IDS})",
        [dataset_id],
        id_relation(ids),
    )
    by_id = {int(row[0]): row for row in rows}
    return total, [_sample(by_id[i]) for i in ids]


def get(store: Store, dataset_id: int, sample_id: int) -> dict[str, Any] | None:
    row = store.query_one(
        f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE dataset_id = ? AND id = ?",
        [dataset_id, sample_id],
    )
    return _sample(row) if row else None


def labels(store: Store, dataset_id: int, sample_id: int) -> list[dict[str, Any]]:
    rows = store.query_dicts(
        "SELECT id, kind, source, class, x, y, w, h, score, iscrowd, flags FROM labels "
        "WHERE dataset_id = ? AND sample_id = ? "
        "ORDER BY kind, source, score DESC NULLS FIRST, id",
        [dataset_id, sample_id],
    )
    scored = label_quality.of_sample(store, dataset_id, sample_id)
    for row in rows:
        row["bbox"] = [row.pop(k) for k in ("x", "y", "w", "h")]
        if row["bbox"][0] is None:
            row["bbox"] = None
        row["flags"] = row["flags"] or []
        if row["id"] in scored:
            row["label_quality"] = scored[row["id"]]
    return rows


def boxes(
    store: Store, dataset_id: int, ids: Sequence[int], kind: str | None = None
) -> dict[int, list[dict[str, Any]]]:
    """The boxes of the given samples by sample id (image-level labels have none); `kind`:
    only `gt` or only `prediction`."""
    rows = store.query(
        "SELECT sample_id, id, kind, source, class, x, y, w, h, score FROM labels "
        f"WHERE dataset_id = ? AND sample_id IN (SELECT id FROM {_IDS}) AND x IS NOT NULL"
        + (" AND kind = ?" if kind else "")
        + " ORDER BY sample_id, kind, source, score DESC NULLS FIRST",
        [dataset_id, *([kind] if kind else [])],
        id_relation(ids),
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for sample_id, label_id, kind_, source, cls, x, y, w, h, score in rows:
        found.setdefault(int(sample_id), []).append(
            {
                "id": int(label_id),
                "kind": kind_,
                "source": source,
                "class": cls,
                "bbox": [x, y, w, h],
                "score": score,
            }
        )
    return found


def paths(store: Store, dataset_id: int) -> list[tuple[int, str]]:
    return [
        (int(i), p)
        for i, p in store.query(
            "SELECT id, path FROM samples WHERE dataset_id = ? ORDER BY id", [dataset_id]
        )
    ]


def missing_ids(
    store: Store, dataset_id: int, ids: Sequence[int] | np.ndarray, limit: int = 10
) -> list[int]:
    """Up to `limit` of `ids` (ascending) that are not samples of the dataset."""
    rows = store.query(
        f"SELECT r.id FROM {_IDS} r ANTI JOIN "
        "(SELECT id FROM samples WHERE dataset_id = ?) s ON r.id = s.id "
        f"ORDER BY r.id LIMIT {int(limit)}",
        [dataset_id],
        id_relation(ids),
    )
    return [int(r[0]) for r in rows]


def add_tags(
    store: Store, dataset_id: int, ids: Sequence[int] | np.ndarray, tags: list[str]
) -> int:
    return _update_tags(
        store, dataset_id, ids, "list_sort(list_distinct(list_concat(coalesce(tags, []), ?)))", tags
    )


def remove_tags(
    store: Store, dataset_id: int, ids: Sequence[int] | np.ndarray, tags: list[str]
) -> int:
    return _update_tags(
        store,
        dataset_id,
        ids,
        "list_filter(coalesce(tags, []), lambda t: NOT list_contains(?, t))",
        tags,
    )


def _update_tags(
    store: Store, dataset_id: int, ids: Sequence[int] | np.ndarray, value: str, tags: list[str]
) -> int:
    with store.transaction() as cur, store.registered(cur, id_relation(ids)):
        cur.execute(
            f"UPDATE samples SET tags = {value} "
            f"WHERE dataset_id = ? AND id IN (SELECT id FROM {_IDS})",
            [tags, dataset_id],
        )
        found = cur.fetchall()  # to the end: the relation can't be dropped mid-result
    return int(found[0][0]) if found else 0


def counts(store: Store, dataset_id: int) -> dict[str, Any]:
    """Samples per split, labels per class and kind, samples per tag and per flag."""
    splits = store.query(
        "SELECT coalesce(split, '(none)'), count(*) FROM samples WHERE dataset_id = ? "
        "GROUP BY 1 ORDER BY 1",
        [dataset_id],
    )
    classes = store.query(
        "SELECT class, kind, count(*), count(DISTINCT sample_id) FROM labels "
        "WHERE dataset_id = ? GROUP BY 1, 2 ORDER BY 3 DESC, 1",
        [dataset_id],
    )
    tags = store.query(
        "SELECT t, count(*) FROM (SELECT unnest(tags) AS t FROM samples WHERE dataset_id = ?) "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
        [dataset_id],
    )
    flags = store.query(
        "SELECT f, count(*) FROM (SELECT unnest(flags) AS f FROM samples WHERE dataset_id = ?) "
        "GROUP BY 1 ORDER BY 1",
        [dataset_id],
    )
    return {
        "splits": {s: int(n) for s, n in splits},
        "classes": [
            {"class": c, "kind": k, "labels": int(n), "samples": int(m)} for c, k, n, m in classes
        ],
        "tags": {t: int(n) for t, n in tags},
        "flags": {f: int(n) for f, n in flags},
    }


def import_labels(store: Store, table: Any, source_name: str, dataset_id: int) -> None:
    """Replace the predictions of `source_name` with the rows of an Arrow table."""
    with store.transaction() as cur:
        cur.execute(
            "DELETE FROM labels WHERE dataset_id = ? AND kind = 'prediction' AND source = ?",
            [dataset_id, source_name],
        )
        store.insert_arrow(cur, "labels", table)
        cur.execute(
            "UPDATE samples SET num_labels = c.n FROM (SELECT sample_id, count(*) AS n "
            "FROM labels WHERE dataset_id = ? GROUP BY 1) c "
            "WHERE samples.dataset_id = ? AND samples.id = c.sample_id",
            [dataset_id, dataset_id],
        )


def filtered_ids(store: Store, dataset_id: int, filters: SampleFilter) -> np.ndarray:
    """Ids (int64) of the samples matching `filters`, ascending."""
    where, params = filters.where(dataset_id)
    cur = store.cursor()
    with store.registered(cur, filters.relations()):
        found = cur.execute(f"SELECT id FROM samples WHERE {where} ORDER BY id", params)
        return np.asarray(found.fetchnumpy()["id"], dtype=np.int64)


def paths_of(store: Store, dataset_id: int, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = store.query(
        "SELECT id, path FROM samples WHERE dataset_id = ? AND list_contains(?, id)",
        [dataset_id, ids],
    )
    return {int(i): str(p) for i, p in rows}


def prediction_sources(store: Store, dataset_id: int) -> dict[str, int]:
    """Prediction sources of a dataset and their number of boxes."""
    rows = store.query(
        "SELECT source, count(*) FROM labels WHERE dataset_id = ? AND kind = 'prediction' "
        "GROUP BY 1 ORDER BY 1",
        [dataset_id],
    )
    return {str(s): int(n) for s, n in rows}


def sizes(store: Store, dataset_id: int) -> list[tuple[int, str, int | None, int | None]]:
    """(id, path, width, height) of every sample."""
    rows = store.query(
        "SELECT id, path, width, height FROM samples WHERE dataset_id = ?", [dataset_id]
    )
    return [(int(i), str(p), w, h) for i, p, w, h in rows]


def splits(store: Store, dataset_id: int) -> list[str]:
    """The dataset's split names."""
    rows = store.query(
        "SELECT DISTINCT split FROM samples WHERE dataset_id = ? AND split IS NOT NULL ORDER BY 1",
        [dataset_id],
    )
    return [str(r[0]) for r in rows]


def coco_ids(store: Store, dataset_id: int) -> dict[Any, list[tuple[int, str | None]]]:
    """(sample id, split) of the samples ingested with each COCO image id: more than one
    where several annotation files number their images alike (one file per split)."""
    found: dict[Any, list[tuple[int, str | None]]] = {}
    for sample_id, split, coco_id in store.query(
        "SELECT id, split, json_extract(metadata, '$.coco_id') FROM samples "
        "WHERE dataset_id = ? AND json_extract(metadata, '$.coco_id') IS NOT NULL ORDER BY id",
        [dataset_id],
    ):
        found.setdefault(json.loads(coco_id), []).append((int(sample_id), split))
    return found
