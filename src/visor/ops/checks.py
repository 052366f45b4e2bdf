"""Operations that check labels and predictions: image quality, label errors (cleanlab, from
neighbours or against a prediction source), evaluation, and importing predictions."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, model_validator

from visor.errors import NotFound
from visor.evaluation.metrics import summary_lines
from visor.ops.base import Context, Op, register
from visor.services import evaluate as evaluate_service
from visor.services import labels as label_service
from visor.services import predictions as prediction_service
from visor.services import quality as quality_service
from visor.services import vectors
from visor.services.jobs import JobContext
from visor.services.objects import default_object_model, has_object_vectors
from visor.store import embeddings as vector_rows

SPLIT = evaluate_service.SPLIT


def check_predictions(ctx: Context, source: str, split: str | None) -> None:
    """Refuse, before a job is queued, a prediction source or a split the dataset lacks."""
    sources = prediction_service.sources(ctx.store, ctx.id)
    if source not in sources:
        known = ", ".join(sources) or "none yet"
        raise NotFound(
            f"dataset {ctx.name!r} has no predictions from {source!r} (sources: {known}); "
            "add them with import-predictions"
        )
    evaluate_service.check_split(ctx.store, ctx.dataset, split)


@register
class ComputeQuality(Op):
    """Measure every image not measured yet (brightness, blur, entropy, colour, size), then
    flag each sample's issues (the `quality` filter)."""

    name = "quality"
    job = True

    def key(self) -> str:
        return "quality"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        return quality_service.compute_quality(ctx.store, job, ctx.dataset)

    def summary(self, result: dict[str, Any]) -> str:
        found = ", ".join(f"{n} {issue}" for issue, n in result["issues"].items() if n)
        failed = result["failed_count"]
        return f"{result['measured']} images measured: {found or 'no issues'}" + (
            f"; {failed} could not be read" if failed else ""
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        return [
            f"  could not read sample {problem['sample_id']}: {problem['reason']}"
            for problem in result["failed"][:20]
        ]


@register
class FindLabelErrors(Op):
    """Find likely wrong labels (cleanlab).

    Each image's (and each box's) label is weighed against its neighbours' labels; with
    predictions, cleanlab's detection check weighs the boxes against a model's boxes."""

    name = "label-errors"
    job = True

    model: str | None = Field(
        default=None, description="whose vectors (default: the dataset's newest model)"
    )
    predictions: str | None = Field(
        default=None,
        description="instead: check the boxes against this prediction source (cleanlab)",
    )
    split: str | None = Field(
        default=None, description="with predictions: only this split's images (the model's run)"
    )

    @model_validator(mode="after")
    def _split_needs_predictions(self) -> FindLabelErrors:
        if self.split is not None and self.predictions is None:
            raise ValueError("split goes with predictions (the images a model ran on)")
        return self

    def check(self, ctx: Context) -> FindLabelErrors:
        if self.predictions is not None:
            check_predictions(ctx, self.predictions, self.split)
            return self
        if self.model is not None:
            if not has_object_vectors(ctx.store, ctx.id, self.model):
                vectors.version(ctx.store, ctx.dataset, self.model)  # neither kind: refused
            return self
        if vector_rows.models_newest_first(ctx.store, ctx.id, ctx.name):
            return self.model_copy(update={"model": vectors.default_model(ctx.store, ctx.dataset)})
        return self.model_copy(update={"model": default_object_model(ctx.store, ctx.dataset)})

    def key(self) -> str:
        return f"predictions:{self.predictions}" if self.predictions else str(self.model)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        if self.predictions is not None:
            return label_service.find_detection_label_errors(
                ctx.store, job, ctx.dataset, self.predictions, self.split
            )
        assert self.model is not None
        return label_service.find_label_errors(ctx.store, job, ctx.dataset, self.model)

    def summary(self, result: dict[str, Any]) -> str:
        if self.predictions is None:
            return (
                f"{result['flagged']} of {result['scored']} labels likely wrong "
                f"({result['model']}, {result['seconds']} s)"
            )
        boxes, split = result["boxes_flagged"], self.split
        return (
            f"{result['flagged']} of {result['images']} images"
            + (f" of split {split}" if split else "")
            + f" flagged by cleanlab's detection check against {self.predictions} "
            f"({result['seconds']} s): {boxes['overlooked']} boxes likely missing, "
            f"{boxes['swap']} likely of the wrong class, {boxes['badloc']} likely badly placed"
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        lonely, missing = result.get("classes_with_one_example"), result.get("not_embedded")
        return [
            *([f"not scored (one example, nothing to compare with): {', '.join(lonely)}"]
              if lonely else []),
            *([f"not scored (no vector yet): {missing} labels"] if missing else []),
        ]  # fmt: skip


@register
class Evaluate(Op, evaluate_service.EvaluateParams):
    """Evaluate a prediction source COCO-style: every box TP/FP/FN, AP/AR, confusion matrix.

    Results: `ds.evaluations[name]`, and per-sample fields for filters and sorting."""

    name = "evaluate"
    job = True

    def check(self, ctx: Context) -> Evaluate:
        check_predictions(ctx, self.source, self.split)
        return self.resolved()

    def key(self) -> str:
        return str(self.evaluation)

    def job_params(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        return evaluate_service.evaluate(ctx.store, job, ctx.dataset, self)

    def summary(self, result: dict[str, Any]) -> str:
        counts, split = result["counts"], self.split
        return (
            f"{result['evaluation']}: AP {result['summary']['AP']:.3f}; at IoU {self.iou}: "
            f"{counts['tp']} true positives, {counts['fp']} false positives, {counts['fn']} "
            f"missed ({counts['predictions']} predictions, {counts['gt']} boxes"
            + (f" in split {split}" if split else "")
            + ")"
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        return summary_lines(result["summary"], self.iou_thresholds, self.max_dets)


@register
class ImportPredictions(Op):
    """Add a model's predictions as a source: a COCO results .json (ultralytics'
    predictions.json too), a folder of YOLO .txt files, or a .parquet/.csv table
    (file_name, class, x, y, w, h, score). An existing source is replaced only with replace."""

    name = "import-predictions"

    path: str = Field(
        description="COCO results .json (ultralytics' predictions.json too), a folder of YOLO "
        ".txt files (class cx cy w h score), or a .parquet/.csv table (file_name, class, x, y, "
        "w, h, score)"
    )
    source: str = Field(description="name of the model (or run) that made them")
    format: str | None = Field(default=None, description="coco|yolo|table (default: from the path)")
    replace: bool = Field(default=False, description="replace an existing source of this name")
    names: str | None = Field(
        default=None,
        description="YOLO: the model's data.yaml when the dataset has no class indices",
    )
    split: str | None = Field(
        default=None,
        description="COCO results: the split whose annotation file's image ids they use (where "
        "each split's file numbers its images alike, as Roboflow's exports do)",
    )

    @model_validator(mode="after")
    def _absolute(self) -> ImportPredictions:
        # A server's working folder is not the caller's: paths travel absolute.
        object.__setattr__(self, "path", os.path.abspath(self.path))
        if self.names:
            object.__setattr__(self, "names", os.path.abspath(self.names))
        return self

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        result = prediction_service.import_predictions(
            ctx.store,
            ctx.dataset,
            self.path,
            self.source,
            fmt=self.format,
            replace=self.replace,
            names=self.names,
            split=self.split,
        )
        ctx.changed("predictions")
        return result

    def summary(self, result: dict[str, Any]) -> str:
        return (
            f"imported {result['predictions']} predictions on {result['images']} images "
            f"from {result['source']} into {result['dataset']}"
        )
