"""Which samples: the filter model every surface shares, and the SQL it becomes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from visor.errors import InvalidInput


class SampleFilter(BaseModel):
    """Which samples: the one filter model of the store's queries, the HTTP routes (query
    parameters or a body), saved views, the Python API and the CLI. Its API names differ
    from the field names in two places (`class`, `quality`); both are accepted."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", arbitrary_types_allowed=True)

    split: str | None = Field(default=None, description="samples of this split")
    category: str | None = Field(
        default=None, alias="class", description="samples with a label of this class"
    )
    tag: str | None = Field(default=None, description="samples with this tag")
    filename: str | None = Field(default=None, description="substring of the path")
    has_label: bool | None = Field(default=None, description="samples with (or without) labels")
    ids: Any = Field(default=None, description="sample ids (e.g. a lasso); any number")
    selection: str | None = Field(default=None, description="a token from POST /selections")
    duplicate_group: int | None = Field(default=None, description="from the duplicates job")
    has_duplicates: bool | None = Field(default=None, description="in a duplicate group")
    uniqueness_min: float | None = Field(default=None, ge=0, le=1, description="uniqueness from")
    uniqueness_max: float | None = Field(default=None, ge=0, le=1, description="uniqueness up to")
    evaluation: str | None = Field(
        default=None, description="an evaluation: its outcomes on boxes, its filters and sorts"
    )
    outcome: str | None = Field(
        default=None,
        description="with evaluation: samples with a tp, fp, fn, error or confused box",
    )
    confusion_gt: str | None = Field(
        default=None,
        description="with evaluation and confusion_pred: a confusion cell's ground-truth class "
        "('' for the background)",
    )
    confusion_pred: str | None = Field(default=None, description="its predicted class")
    quality_issue: str | None = Field(
        default=None, alias="quality", description="an image-quality issue: dark, blurry, ..."
    )
    leaked: bool | None = Field(
        default=None, description="in a duplicate group whose members sit in several splits"
    )
    label_issue: bool | None = Field(
        default=None, description="a label cleanlab finds likely wrong (from label-errors)"
    )
    object_issue: str | None = Field(
        default=None, description="holding a box that is an outlier or in a duplicate group"
    )
    detection_issue: bool | None = Field(
        default=None, description="flagged by cleanlab's detection check (label-errors)"
    )
    cluster: int | None = Field(
        default=None, description="in this density cluster of a map (visor clusters)"
    )
    cluster_map: int | None = Field(
        default=None, description="with cluster: whose map (default: the default map)"
    )

    @model_validator(mode="before")
    @classmethod
    def _confusion_pair(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("confusion") is not None:
            data = dict(data)
            data["confusion_gt"], data["confusion_pred"] = data.pop("confusion")
        elif isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "confusion"}
        return data

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> np.ndarray | None:
        if value is None:
            return None
        try:
            return np.asarray(value, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError("ids: give a list of sample ids") from None

    @field_serializer("ids")
    def _ids_out(self, value: Any) -> list[int] | None:
        return None if value is None else [int(i) for i in value]

    def __eq__(self, other: object) -> bool:  # ids are an array: compared as one
        if not isinstance(other, SampleFilter):
            return NotImplemented
        same_ids = (self.ids is None) == (other.ids is None) and (
            self.ids is None or np.array_equal(self.ids, other.ids)
        )
        return same_ids and self.params() == other.params()

    __hash__ = None  # type: ignore[assignment]

    @property
    def confusion(self) -> tuple[str, str] | None:
        if self.confusion_gt is None and self.confusion_pred is None:
            return None
        return (self.confusion_gt or "", self.confusion_pred or "")

    def params(self) -> dict[str, Any]:
        """The filters set, by their API names (ids apart: they go in a body)."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude={"ids"})

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
        if self.cluster is not None:
            clauses.append(
                "id IN (SELECT sample_id FROM map_points WHERE dataset_id = ? AND map_id = "
                "coalesce(?, (SELECT id FROM maps WHERE dataset_id = ? AND is_default)) "
                "AND cluster = ?)"
            )
            params += [dataset_id, self.cluster_map, dataset_id, self.cluster]
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
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def relations(self) -> dict[str, pa.Table]:
        """The tables `where()` reads (pass them to the query)."""
        return {} if self.ids is None else id_relation(self.ids)


_IDS = "_visor_ids"
# The object analysis's per-box results a sample can be filtered by (samples holding one).
OBJECT_ISSUES = {"outlier": "outlier", "duplicate": "duplicate_group IS NOT NULL"}


def id_relation(ids: Sequence[int] | np.ndarray) -> dict[str, pa.Table]:
    """A set of sample ids as a table that SQL reads as `_visor_ids` (column `id`)."""
    return {_IDS: pa.table({"id": np.asarray(ids, dtype=np.int32)})}
