"""The health report's signals, computed in one job: what is missing and needs no choice
(image quality, duplicates and leaks, uniqueness, label errors, the boxes' analysis)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from visor.errors import VisorError
from visor.ops.base import Context, Op, register
from visor.services import analysis as analysis_service
from visor.services import clusters as cluster_service
from visor.services import health as health_service
from visor.services import labels as label_service
from visor.services import maps as map_service
from visor.services import quality as quality_service
from visor.services import vectors
from visor.services.jobs import JobContext
from visor.services.objects import analyse_objects, has_object_vectors
from visor.store import embeddings as vector_rows


@register
class ComputeHealth(Op):
    """Compute every signal of the health report not computed yet, as one job (image
    quality, duplicates and leaks, uniqueness, label errors, the boxes' analysis, the default
    map's density clusters), then
    report. A signal that needs a choice (vectors to embed, a prediction source) is left,
    and the result says why."""

    name = "health"
    job = True

    model: str | None = Field(
        default=None, description="whose vectors (default: the dataset's most recently embedded)"
    )

    def key(self) -> str:
        return "health"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        store, dataset = ctx.store, ctx.dataset
        models = vector_rows.models_newest_first(store, ctx.id, ctx.name)
        model = self.model or next(iter(models), None)
        computed: list[str] = []
        left: dict[str, str] = {}
        graph = vectors.graph_path(ctx.settings, ctx.id, model) if model else None
        steps = {
            "quality": lambda: quality_service.compute_quality(store, job, dataset),
            "duplicates": lambda: analysis_service.find_duplicates(
                store, job, ctx.id, ctx.source(), model=model, threshold=None, graph=graph
            ),
            "uniqueness": lambda: analysis_service.compute_uniqueness(
                store,
                job,
                ctx.id,
                model=str(model),
                k=analysis_service.DEFAULT_UNIQUENESS_K,
                graph=graph,
            ),
            "label_errors": lambda: label_service.find_label_errors(
                store, job, dataset, str(model)
            ),
            "objects": lambda: analyse_objects(store, job, ctx.id, str(model), None),
            "clusters": lambda: cluster_service.find_clusters(
                store, job, dataset, map_service.map_row(store, dataset, None)
            ),
        }
        for signal in health_service.missing(store, dataset):
            why = self._needs(ctx, signal, model)
            if why is not None:
                left[signal] = why
                continue
            try:
                steps[signal]()
            except VisorError as e:  # e.g. too few labels to weigh: said, the rest goes on
                left[signal] = e.message
            else:
                computed.append(signal)
            job.check_cancelled()
        return {"computed": computed, "left": left, "model": model}

    def summary(self, result: dict[str, Any]) -> str:
        return f"computed {', '.join(result['computed']) or 'nothing'}" + (
            f"; not computed: {', '.join(result['left'])}" if result["left"] else ""
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        return [f"  {signal}: {why}" for signal, why in result["left"].items()]

    def _needs(self, ctx: Context, signal: str, model: str | None) -> str | None:
        """Why `signal` can't be computed without a choice; None when it can."""
        embed = f"visor embed {ctx.name}"
        if signal in ("uniqueness", "label_errors") and model is None:
            return f"needs vectors: {embed}"
        if signal == "label_errors":
            return label_service.not_applicable(ctx.store, ctx.dataset)
        if signal == "objects" and (
            model is None or not has_object_vectors(ctx.store, ctx.id, model)
        ):
            return f"needs a vector per box: {embed} --objects"
        return None
