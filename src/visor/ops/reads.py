"""Reading what the operations made: vectors and their status, neighbours, maps, and the
reports of quality, label errors, duplicates and health."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Base64Bytes, Field, field_validator

from visor.embedding.models import with_weights_warning
from visor.errors import Conflict, InvalidInput, NotFound
from visor.ops import reports, results
from visor.ops.base import ArrowOp, Context, Op, npz_arrays, npz_bytes, register
from visor.ops.vectors import VECTORS_MODEL, BuildIndex
from visor.services import analysis as analysis_service
from visor.services import health as health_service
from visor.services import labels as label_service
from visor.services import maps as map_service
from visor.services import predictions as prediction_service
from visor.services import quality as quality_service
from visor.services import vectors
from visor.services.jobs import JobContext
from visor.services.search import Searcher, check_k
from visor.store import embeddings as vector_rows
from visor.store import maps as map_rows
from visor.store import samples as sample_rows
from visor.store.samples import SampleFilter

EXAMPLES = "worst examples listed"


def searcher(ctx: Context, model: str) -> Searcher:
    rebuild = lambda: ctx.runner.run(BuildIndex(model=model), ctx.name)  # noqa: E731
    return vectors.searcher(
        ctx.store, ctx.settings, ctx.engine.indexes, ctx.dataset, model, rebuild
    )


def described(ctx: Context, found: list[tuple[int, float]]) -> list[dict[str, Any]]:
    names = sample_rows.paths_of(ctx.store, ctx.id, [i for i, _ in found])
    return [{"sample_id": i, "distance": round(d, 6), "path": names.get(i)} for i, d in found]


class _Neighbours(Op):
    k: int = Field(default=20, description="how many neighbours")
    model: str | None = Field(default=None, description=VECTORS_MODEL)
    filters: SampleFilter | None = Field(default=None, description="only among these samples")

    def allowed(self, ctx: Context) -> np.ndarray | None:
        if self.filters is None or self.filters.is_empty():
            return None
        return sample_rows.filtered_ids(ctx.store, ctx.id, ctx.filters(self.filters))


@register
class Similar(_Neighbours):
    """The k samples nearest to a sample by cosine distance (itself excluded)."""

    name = "similar"
    result = list[results.Neighbour]

    sample_id: int

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        from visor.services.samples import sample

        check_k(self.k)
        sample(ctx.store, ctx.dataset, self.sample_id)
        model = self.model or vectors.default_model(ctx.store, ctx.dataset)
        index = searcher(ctx, model)
        vector = index.vector_of(self.sample_id)
        if vector is None:
            raise Conflict(
                f"sample {self.sample_id} has no vector from {model!r} (its image could not be "
                "read, or embed has not reached it yet)"
            )
        found = index.query(vector, self.k, exclude=self.sample_id, allowed=self.allowed(ctx))
        return described(ctx, found)


@register
class SimilarToImage(_Neighbours):
    """The k samples nearest to an image that is not in the dataset (embedded now with the
    same model)."""

    name = "similar-to-image"
    result = list[results.Neighbour]

    image: Base64Bytes = Field(description="the image file's bytes (base64 in JSON)")
    filename: str = Field(description="its file name (for its type)")

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        import torch

        from visor.embedding.models import load_model

        check_k(self.k)
        model = self.model or vectors.default_model(ctx.store, ctx.dataset)
        index = searcher(ctx, model)
        embedder = load_model(model, cache_dir=ctx.settings.compiled_dir)
        crop = embedder.preprocessing.prepare(self.image, self.filename)
        vector = embedder.forward(torch.from_numpy(crop[None].copy())).cpu().numpy()[0]
        return described(ctx, index.query(vector, self.k, allowed=self.allowed(ctx)))


@register
class SimilarToText(_Neighbours):
    """The k samples whose images are nearest to a text (CLIP and SigLIP models: the text
    embedded by the model's text tower, searched among the images' vectors)."""

    name = "similar-to-text"
    result = list[results.Neighbour]

    text: str = Field(description="what to look for, in words", min_length=1)

    @field_validator("text")
    @classmethod
    def _words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give words to search for")
        return value.strip()

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        check_k(self.k)
        model = self.model or vectors.default_model(ctx.store, ctx.dataset)
        vector = text_vector(model, self.text, ctx.settings.compiled_dir)
        index = searcher(ctx, model)
        found = index.query(vector, self.k, allowed=self.allowed(ctx), wide=True)
        return described(ctx, found)


def text_vector(model: str, text: str, compiled: Path | None = None) -> np.ndarray:
    """`text` embedded by `model`'s text tower (refused for a model without one); its
    OpenVINO conversion kept in `compiled` (default: the home folder's)."""
    from visor.embedding.models import load_model
    from visor.embedding.registry import REGISTRY

    base = model.removeprefix("random:")
    if base in REGISTRY and not REGISTRY[base].has_text:  # said before loading anything
        from visor.embedding.models import text_models

        raise InvalidInput(
            f"{model} embeds images only: words (text search, zero-shot tags, cluster names) "
            "need a model with a text tower; "
            f"embed the dataset with one ({', '.join(text_models())})"
        )
    return load_model(model, cache_dir=compiled).encode_text([text])[0]


@register
class Vectors(Op):
    """Sample ids (int64, ascending) and their vectors, an (n, d) float32 array (as an .npz
    over HTTP)."""

    name = "vectors"
    media_type = "application/octet-stream"

    model: str | None = Field(default=None, description=VECTORS_MODEL)

    def run(self, ctx: Context, job: JobContext | None) -> tuple[np.ndarray, np.ndarray]:
        model = self.model or vectors.default_model(ctx.store, ctx.dataset)
        ids, found = vector_rows.vectors(ctx.store, ctx.id, model)
        if not len(ids):
            raise NotFound(
                f"dataset {ctx.name!r} has no vectors from model {model!r} (run visor embed)"
            )
        return ids, found

    def encode(self, result: Any) -> bytes:
        return npz_bytes(ids=result[0], vectors=result[1])

    def decode(self, body: Any) -> tuple[np.ndarray, np.ndarray]:
        found = npz_arrays(body)
        return found["ids"], found["vectors"]


@register
class DefaultModel(Op):
    """The model the dataset has vectors from (the newest when several)."""

    name = "default-model"

    def run(self, ctx: Context, job: JobContext | None) -> str:
        return vectors.default_model(ctx.store, ctx.dataset)


@register
class EmbeddingStatus(Op):
    """Per model: dimension, vectors stored, unreadable images, complete or not, last job."""

    name = "embedding-status"
    result = results.VectorStatus

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        samples = int(ctx.dataset["num_samples"])
        jobs = ctx.engine.jobs.list(dataset=ctx.name, kind="embed")
        models = []
        for row in vector_rows.status(ctx.store, ctx.id):
            last = next((j for j in jobs if (j["params"] or {}).get("model") == row["model"]), None)
            missing = max(samples - row["vectors"] - row["errors"], 0)
            models.append({**row, "samples": samples, "missing": missing,
                           "complete": missing == 0, "last_job": last})  # fmt: skip
        newest = vector_rows.models_newest_first(ctx.store, ctx.id, ctx.name)
        return {
            "dataset": ctx.name,
            "samples": samples,
            "models": models,
            "running": [j for j in jobs if j["state"] in ("queued", "running")],
            "default_model": next(iter(newest), None),  # what commands use when given none
        }


@register
class EmbeddingErrors(Op):
    """The images a model could not embed, with the reason for each."""

    name = "embedding-errors"

    model: str | None = Field(default=None, description=VECTORS_MODEL)
    limit: int = Field(default=1000, ge=1)

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        newest = vector_rows.models_newest_first(ctx.store, ctx.id, ctx.name)
        chosen = self.model or next(iter(newest), ctx.settings.model)
        return vector_rows.errors(ctx.store, ctx.id, chosen, limit=self.limit)


@register
class IndexStatus(Op):
    """Which search serves a model's vectors (exact or ann) and the stored index, if any."""

    name = "index-status"

    model: str | None = Field(default=None, description=VECTORS_MODEL)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        model = self.model or vectors.default_model(ctx.store, ctx.dataset)
        return vectors.index_status(ctx.store, ctx.settings, ctx.dataset, model)


@register
class PredictionSources(Op):
    """The prediction sources and their number of boxes."""

    name = "prediction-sources"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, int]:
        return prediction_service.sources(ctx.store, ctx.id)


@register
class QualityReport(Op):
    """Per image-quality issue: how many samples have it, their share, the worst ones."""

    name = "quality-report"
    result = reports.Quality

    examples: int = Field(default=12, ge=0, description=EXAMPLES)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return quality_service.report(ctx.store, ctx.dataset, self.examples)


@register
class LabelErrorsReport(Op):
    """Labels scored and flagged, and the worst flagged samples; None before a run."""

    name = "label-errors-report"

    examples: int = Field(default=12, ge=0, description=EXAMPLES)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any] | None:
        return label_service.summary(ctx.store, ctx.id, self.examples)


@register
class HealthReport(Op):
    """What is wrong with the dataset, from every signal computed so far: per kind of
    problem its count, share, worst examples and the samples filter showing them all."""

    name = "health-report"
    result = reports.Health

    examples: int = Field(default=12, ge=0, description=EXAMPLES)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return health_service.health(ctx.store, ctx.dataset, self.examples)


@register
class DuplicateGroups(Op):
    """The duplicate groups of the last duplicates run, largest first, and its look-alike
    clusters."""

    name = "duplicate-groups"
    result = reports.DuplicatesReport

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return analysis_service.duplicates_report(
            ctx.store, ctx.id, offset=self.offset, limit=self.limit
        )


@register
class Maps(Op):
    """Every map, each with a `warning` when its vectors came from random weights."""

    name = "maps"
    result = list[results.MapRow]

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        return [with_weights_warning(m) for m in map_rows.list_maps(ctx.store, ctx.id)]


@register
class MapInfo(Op):
    """One map, or the default one."""

    name = "map-info"
    result = results.MapRow

    map_id: int | None = None

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return map_service.map_row(ctx.store, ctx.dataset, self.map_id)


@register
class MapPoints(ArrowOp):
    """sample_id, x, y, split, first class and first tag of every point of a map (a map of
    objects: label_id too, and the box's class)."""

    name = "map-points"

    map_id: int | None = None

    def run(self, ctx: Context, job: JobContext | None) -> Any:
        found = map_service.map_row(ctx.store, ctx.dataset, self.map_id)
        return map_rows.points(ctx.store, ctx.id, found["id"], objects=found["objects"])


@register
class SetDefaultMap(Op):
    """Make a map the dataset's default."""

    name = "default-map"
    result = results.MapRow

    map_id: int

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        map_service.map_row(ctx.store, ctx.dataset, self.map_id)
        map_rows.set_default(ctx.store, ctx.id, self.map_id)
        return map_service.map_row(ctx.store, ctx.dataset, self.map_id)
