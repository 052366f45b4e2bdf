"""Operations on vectors: embed, map, the ANN index, duplicates and uniqueness."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from visor.ops.base import Context, Op, register
from visor.ops.models import backend_lines
from visor.services import analysis as analysis_service
from visor.services import embed as embed_service
from visor.services import maps as map_service
from visor.services import ray_embed as ray_embed_service
from visor.services import search as search_service
from visor.services import vectors
from visor.services.jobs import JobContext
from visor.services.objects import default_object_model

VECTORS_MODEL = "whose vectors (default: the dataset's most recently embedded model)"


def _model(ctx: Context, model: str | None) -> str:
    """`model`, else the dataset's newest; refused when the dataset has no vectors from it."""
    name = model or vectors.default_model(ctx.store, ctx.dataset)
    vectors.version(ctx.store, ctx.dataset, name)
    return name


@register
class Embed(Op, embed_service.EmbedParams):
    """Compute an embedding vector for every image, or with --objects for every box.

    Only the images (or boxes) still missing one are computed: a stopped job resumes."""

    name = "embed"
    job = True

    def check(self, ctx: Context) -> Embed:
        chosen = self.model_copy(
            update={
                "model": self.model or ctx.settings.model,
                "backend": self.backend or ctx.settings.embed_backend,
            }
        )
        chosen.options(ctx)  # refused now, not in the job
        return chosen

    def key(self) -> str:
        return (
            f"{self.model}:objects:{self.kind}:{self.source}" if self.objects else str(self.model)
        )

    def options(self, ctx: Context) -> Embed:
        """As the job reads it: automatic values resolved, converted models kept under home
        and a Ray job's staging folder chosen."""
        options = self.model_copy(
            update={
                "model": self.model or ctx.settings.model,
                "cache_dir": self.cache_dir or str(ctx.settings.compiled_dir),
            }
        ).resolved()
        if options.ray is not None and options.staging is None:
            boxes = f"{self.kind}-{self.source}" if self.source else self.kind
            where = ray_embed_service.default_staging(
                str(ctx.settings.home.resolve()),
                ctx.id,
                str(options.model),
                boxes if self.objects else None,
            )
            options = options.model_copy(update={"staging": where})
        return options

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        options = self.options(ctx)
        result = embed_service.embed_dataset(ctx.store, job, ctx.dataset, ctx.source(), options)
        model = str(result.get("model", options.model))
        wants = not self.objects and result["embedded"]
        if wants and vectors.wants_ann(ctx.store, ctx.settings, ctx.id, model):
            result["index_job"] = ctx.runner.run(BuildIndex(model=model), ctx.name)["id"]
        return result

    def summary(self, result: dict[str, Any]) -> str:
        existing = result["skipped_existing"]
        if not result.get("objects") and not result["embedded"] and not result["failed_count"]:
            return f"nothing to embed: all {existing} images have vectors from {result['model']}"
        if result.get("objects"):
            what = f"{result['embedded']} of {result['boxes']} {result['kind']} boxes"
            what += f" in {result['images']} images" if "images" in result else ""
            rate = result.get("boxes_per_s") and f" at {result['boxes_per_s']} boxes/s"
        else:
            what = f"{result['embedded']} images"
            rate = result.get("images_per_s") and f" at {result['images_per_s']} images/s"
        return (
            f"embedded {what} with {result['model']} ({result['dim']}-d, {result['device']}, "
            f"{result['precision']}) in {result['seconds']} s{rate or ''}"
            + (f"; {existing} already had vectors" if existing else "")
            + (f"; {result['failed_count']} failed" if result["failed_count"] else "")
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        if result.get("objects") or not (result["embedded"] or result["failed_count"]):
            return []
        return backend_lines(result.get("backend", "torch"), result.get("backend_facts") or {})


@register
class BuildIndex(Op):
    """Build the ANN index for similarity search.

    It is made on its own after embedding large datasets; smaller ones are searched
    exactly."""

    name = "index"
    job = True

    model: str | None = Field(default=None, description=VECTORS_MODEL)

    def check(self, ctx: Context) -> BuildIndex:
        return self.model_copy(update={"model": _model(ctx, self.model)})

    def key(self) -> str:
        return str(self.model)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None and self.model is not None
        path = vectors.ann_path(ctx.settings, ctx.id, self.model)
        return search_service.build_ann(ctx.store, job, ctx.id, self.model, path)

    def summary(self, result: dict[str, Any]) -> str:
        lists = f"{result['lists']} list{'' if result['lists'] == 1 else 's'}"
        return (
            f"index of {result['vectors']} vectors ({lists}, {result['probes']} probed per "
            f"query) in {result['seconds']} s"
        )


@register
class MakeMap(Op):
    """Lay the dataset's vectors out in 2D; the new map becomes the default."""

    name = "map"
    job = True

    model: str | None = Field(default=None, description=VECTORS_MODEL)
    method: Literal["umap", "pca", "tsne"] = Field(default="umap", description="umap|pca|tsne")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="the method's parameters: n_neighbors, min_dist, random_state, ...",
    )
    uniqueness: bool = Field(default=True, description="also score every sample's uniqueness")
    objects: bool = Field(default=False, description="a point per box (embed with objects first)")

    def check(self, ctx: Context) -> MakeMap:
        checked = map_service.check_params(self.method, self.params)
        if self.objects:
            model = self.model or default_object_model(ctx.store, ctx.dataset)
        else:
            model = _model(ctx, self.model)
        return self.model_copy(update={"model": model, "params": checked})

    def key(self) -> str:
        return f"{self.model}:{self.method}:{self.objects}"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None and self.model is not None
        result = map_service.make_map(
            ctx.store, job, ctx.id, self.model, self.method, self.params, objects=self.objects
        )
        if self.uniqueness and not self.objects:
            result["uniqueness"] = analysis_service.compute_uniqueness(
                ctx.store,
                job,
                ctx.id,
                model=self.model,
                k=analysis_service.DEFAULT_UNIQUENESS_K,
                graph=vectors.graph_path(ctx.settings, ctx.id, self.model),
            )
        if ctx.engine.serving:  # the page that asked for the map will want its points
            map_service.cached_points(ctx.store, ctx.engine.points, ctx.dataset, None)
        return result

    def summary(self, result: dict[str, Any]) -> str:
        what = "boxes" if result.get("objects") else "points"
        return (
            f"map {result['map_id']}: {result['method']} of {result['points']} {what} "
            f"({result['model']}) in {result['seconds']} s"
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        return [uniqueness_line(result["uniqueness"])] if "uniqueness" in result else []


@register
class FindDuplicates(Op):
    """Group exact copies and near-duplicates; each sample gets a duplicate_group.

    Near-duplicates: cosine similarity of the model's vectors at or above the threshold
    (default: the model's calibrated one, else one from the dataset's nearest-neighbour
    similarities). Every member of a group is within the threshold of its representative."""

    name = "duplicates"
    job = True

    model: str | None = Field(default=None, description=VECTORS_MODEL)
    threshold: float | None = Field(
        default=None,
        ge=0.5,
        le=1.0,
        description="cosine similarity from which images are near-duplicates (default: the "
        "model's calibrated one, else one from the dataset's nearest-neighbour similarities)",
    )
    exact_only: bool = Field(
        default=False, description="only byte-identical copies (no vectors needed)"
    )

    def check(self, ctx: Context) -> FindDuplicates:
        return self.model_copy(
            update={"model": None if self.exact_only else _model(ctx, self.model)}
        )

    def key(self) -> str:
        return str(self.model)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        return analysis_service.find_duplicates(
            ctx.store,
            job,
            ctx.id,
            ctx.source(),
            model=self.model,
            threshold=self.threshold,
            graph=vectors.graph_path(ctx.settings, ctx.id, self.model) if self.model else None,
        )

    def summary(self, result: dict[str, Any]) -> str:
        could_go = "" if result["removable"] is None else f"; {result['removable']} could go"
        return (
            f"{result['groups']} duplicate groups ({result['exact_groups']} exact) holding "
            f"{result['samples_in_groups']} samples{could_go} ({result['seconds']} s)"
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        nearest = result.get("nearest_similarity") or {}
        if not nearest.get("count"):
            return []
        cuts = ", ".join(f"{p}% {v:.4f}" for p, v in nearest["percentiles"].items())
        return [
            f"nearest-neighbour similarity of {nearest['count']} samples: {cuts}",
            f"threshold {result['threshold']} ({result['threshold_rule']})",
        ]


@register
class ComputeUniqueness(Op):
    """Score every embedded sample's uniqueness in [0, 1] (1: the most isolated)."""

    name = "uniqueness"
    job = True

    model: str | None = Field(default=None, description=VECTORS_MODEL)
    k: int = Field(
        default=analysis_service.DEFAULT_UNIQUENESS_K,
        ge=1,
        le=100,
        description="neighbours averaged",
    )

    def check(self, ctx: Context) -> ComputeUniqueness:
        return self.model_copy(update={"model": _model(ctx, self.model)})

    def key(self) -> str:
        return str(self.model)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None and self.model is not None
        return analysis_service.compute_uniqueness(
            ctx.store,
            job,
            ctx.id,
            model=self.model,
            k=self.k,
            graph=vectors.graph_path(ctx.settings, ctx.id, self.model),
        )

    def summary(self, result: dict[str, Any]) -> str:
        return uniqueness_line(result)


def uniqueness_line(result: dict[str, Any]) -> str:
    return (
        f"uniqueness of {result['samples']} samples (k={result['k']}, median "
        f"{result['median']}): the samples' uniqueness field, to sort and filter by"
    )
