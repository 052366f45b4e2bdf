"""Operations on a dataset's collections: its evaluations, its boxes as objects, its edit
log and its saved views."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from visor.ops import reports, results
from visor.ops.base import ArrowOp, Chosen, Context, Op, npz_arrays, npz_bytes, register
from visor.services import edits as edit_service
from visor.services import objects as object_service
from visor.services import views as view_service
from visor.services.evaluate import Evaluations
from visor.services.jobs import JobContext
from visor.store.samples import SampleFilter

# -- evaluations --------------------------------------------------------------------------


class _Named(Op):
    evaluation: str = Field(description="the evaluation's name")

    def evaluations(self, ctx: Context) -> Evaluations:
        return Evaluations(ctx.store, ctx.dataset)


@register
class ListEvaluations(Op):
    """Every evaluation with its summary and counts (no curves)."""

    name = "evaluations"
    result = list[reports.EvaluationRow]

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        return Evaluations(ctx.store, ctx.dataset).list()


@register
class GetEvaluation(_Named):
    """One evaluation: parameters, summary, counts, per-class rows, PR curves and the
    confusion matrix."""

    name = "evaluation"
    result = reports.Evaluation

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return self.evaluations(ctx).get(self.evaluation)


@register
class DeleteEvaluation(_Named):
    """Delete an evaluation and its per-box outcomes."""

    name = "delete-evaluation"

    def run(self, ctx: Context, job: JobContext | None) -> None:
        self.evaluations(ctx).delete(self.evaluation)


@register
class EvaluationSamples(ArrowOp, _Named):
    """sample_id, tp, fp, fn, confused per evaluated sample (an Arrow table)."""

    name = "evaluation-samples"

    def run(self, ctx: Context, job: JobContext | None) -> Any:
        return self.evaluations(ctx).sample_counts(self.evaluation)


@register
class ConfusionCell(_Named):
    """The boxes of one confusion-matrix cell (None: the background)."""

    name = "confusion-cell"

    gt_class: str | None = None
    pred_class: str | None = None
    limit: int = Field(default=1000, ge=1)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return self.evaluations(ctx).cell(
            self.evaluation, self.gt_class or None, self.pred_class or None, self.limit
        )


# -- objects ------------------------------------------------------------------------------


@register
class AnalyseObjects(Op):
    """Outlier and near-duplicate boxes: one neighbour search over the box vectors."""

    name = "objects"
    job = True

    model: str | None = Field(default=None, description="whose box vectors (default: newest)")
    threshold: float | None = Field(
        default=None, ge=0.5, le=1.0, description="cosine similarity for duplicate boxes (auto)"
    )

    def check(self, ctx: Context) -> AnalyseObjects:
        model = self.model or object_service.default_object_model(ctx.store, ctx.dataset)
        return self.model_copy(update={"model": model})

    def key(self) -> str:
        return str(self.model)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None and self.model is not None
        return object_service.analyse_objects(ctx.store, job, ctx.id, self.model, self.threshold)

    def summary(self, result: dict[str, Any]) -> str:
        return (
            f"{result['boxes']} boxes: {result['outliers']} outliers (uniqueness above "
            f"{result['outlier_threshold']}), {result['duplicate_groups']} groups of "
            f"near-identical boxes holding {result['boxes_in_duplicate_groups']} "
            f"(similarity >= {result['threshold']})"
        )


@register
class ObjectStatus(Op):
    """Per model: box vectors by kind (gt, prediction) and the boxes skipped."""

    name = "object-status"
    result = list[results.BoxVectors]

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        from visor.store import objects as object_rows

        return object_rows.status(ctx.store, ctx.id)


@register
class ObjectModel(Op):
    """The model the boxes were embedded with (the most recently embedded of several)."""

    name = "object-model"

    def run(self, ctx: Context, job: JobContext | None) -> str:
        return object_service.default_object_model(ctx.store, ctx.dataset)


@register
class ObjectVectors(Op):
    """Label ids (ascending), their sample ids and their vectors (an .npz over HTTP)."""

    name = "object-vectors"
    media_type = "application/octet-stream"

    model: str | None = None

    def run(self, ctx: Context, job: JobContext | None) -> Any:
        from visor.store import objects as object_rows

        model = self.model or object_service.default_object_model(ctx.store, ctx.dataset)
        return object_rows.vectors(ctx.store, ctx.id, model)

    def encode(self, result: Any) -> bytes:
        return npz_bytes(
            label_ids=result.label_ids, sample_ids=result.sample_ids, vectors=result.vectors
        )

    def decode(self, body: Any) -> Any:
        from visor.store.objects import ObjectVectors as Found

        return Found(**npz_arrays(body))


@register
class SkippedObjects(Op):
    """The boxes that gave no vector, and why."""

    name = "skipped-objects"

    model: str | None = None
    limit: int = Field(default=1000, ge=1)

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        from visor.store import objects as object_rows

        model = self.model or object_service.default_object_model(ctx.store, ctx.dataset)
        return object_rows.skipped(ctx.store, ctx.id, model, self.limit)


@register
class ObjectBox(Op):
    """One box: its sample, class, kind, source and (x, y, w, h)."""

    name = "box"
    result = results.ObjectBoxRow

    label_id: int

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return object_service.box(ctx.store, ctx.dataset, self.label_id)


@register
class SimilarObjects(Op):
    """The k boxes nearest to a box by cosine distance (itself excluded)."""

    name = "similar-objects"
    result = list[results.NearBox]

    label_id: int
    k: int = Field(default=20, description="how many neighbours")
    model: str | None = None

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        return object_service.similar_boxes(
            ctx.store, ctx.engine.indexes, ctx.dataset, self.label_id, self.k, self.model
        )


@register
class ObjectReport(Op):
    """The last object analysis: boxes scored, outliers, duplicate groups, worst boxes."""

    name = "object-report"

    examples: int = Field(default=12, ge=0)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any] | None:
        return object_service.report(ctx.store, ctx.id, self.examples)


# -- edits --------------------------------------------------------------------------------


def edits(ctx: Context) -> edit_service.Edits:
    return edit_service.Edits(ctx.store, ctx.dataset, lambda: ctx.changed("edits"))


class _Edit(Op):
    who: str | None = Field(default=None, description="who made the edit (for the log)")


@register
class ApplyEdits(_Edit):
    """One batch of edits, all made or none."""

    name = "edit"
    result = results.EditMade

    changes: list[dict[str, Any]] = Field(
        description='each {"action": "set_class", "label_id", "class"} | {"action": "delete", '
        '"label_id"} | {"action": "add", "sample_id", "class", "box"?} | {"action": '
        '"set_image_class", "sample_id", "class"} | {"action": "exclude"|"include", "sample_id"}'
    )

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return edits(ctx).apply(self.changes, who=self.who)


@register
class Relabel(_Edit, Chosen):
    """Every ground-truth label of one class (among some samples: ids, a lasso or filters;
    else all) gets another, as one batch."""

    name = "relabel"
    result = results.EditMade

    from_class: str = Field(description="the class to change")
    to_class: str = Field(description="its new name")

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        ids = self.chosen(ctx)
        return edits(ctx).relabel(self.from_class, self.to_class, ids, who=self.who)

    def summary(self, result: dict[str, Any]) -> str:
        changed = f"{result['changes']} labels {self.from_class} -> {self.to_class}"
        return f"edit {result['batch']}: {changed}"


@register
class AcceptSuggestions(_Edit):
    """Give each label the class its neighbours suggest (from label-errors)."""

    name = "accept-suggestions"
    result = results.EditMade

    label_ids: list[int] = Field(min_length=1)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return edits(ctx).accept_suggestions(self.label_ids, who=self.who)


@register
class EditHistory(Op):
    """The edit batches, newest first."""

    name = "edit-history"

    limit: int = Field(default=100, ge=1)

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        return edits(ctx).history(self.limit)


@register
class EditBatch(Op):
    """One batch's changes with each label before and after."""

    name = "edit-batch"

    batch: int

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        return edits(ctx).batch(self.batch)


class _Step(Op):
    result = results.EditStepped

    def summary(self, result: dict[str, Any]) -> str:
        return f"edit {result['batch']} {result['state']} ({result['changes']} changes)"


@register
class Undo(_Step):
    """Undo the newest batch of edits."""

    name = "undo"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return edits(ctx).undo()


@register
class Redo(_Step):
    """Redo the newest undone batch."""

    name = "redo"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return edits(ctx).redo()


@register
class Revert(_Step):
    """Undo one batch by its number, later ones kept."""

    name = "revert"

    batch: int

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return edits(ctx).revert(self.batch)


# -- views --------------------------------------------------------------------------------


@register
class SaveView(Op):
    """Save (or replace) a view: filters, a selection (a token, or sample ids kept as a new
    selection), the sort, and what the UI shows (its URL state)."""

    name = "save-view"
    result = results.SavedView

    view: str = Field(description="the view's name")
    filters: SampleFilter = Field(default_factory=SampleFilter)
    selection: str | None = Field(default=None, description="a selection token (a lasso)")
    ids: list[int] | None = Field(default=None, description="instead: sample ids to keep")
    sort: str = "id"
    order: Literal["asc", "desc"] = "asc"
    ui: dict[str, Any] = Field(default_factory=dict, description="what the UI shows")

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        from visor.ops.datasets import Select
        from visor.services.samples import check_known

        check_known(ctx.store, ctx.dataset, self.filters)  # a typo saved would show nothing
        token = self.selection
        if token is not None:
            ctx.selection(token)  # it must exist
        elif self.ids is not None:
            token = Select(ids=self.ids).run(ctx, None)["selection"]
        found = view_service.save(
            ctx.store, ctx.dataset, self.view, self.filters, token, self.sort, self.order, self.ui
        )
        ctx.changed("views")
        return found

    def summary(self, result: dict[str, Any]) -> str:
        return f"view {self.view} saved"


@register
class ListViews(Op):
    """The saved views."""

    name = "views"
    result = list[results.SavedView]

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        from visor.store import views as view_rows

        return view_rows.views(ctx.store, ctx.id)


@register
class GetView(Op):
    """One saved view."""

    name = "view"
    result = results.SavedView

    view: str

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return view_service.get(ctx.store, ctx.dataset, self.view)


@register
class DeleteView(Op):
    """Delete a saved view."""

    name = "delete-view"

    view: str

    def run(self, ctx: Context, job: JobContext | None) -> None:
        view_service.delete(ctx.store, ctx.dataset, self.view)
        ctx.changed("views")

    def summary(self, result: None) -> str:
        return f"view {self.view} deleted"
