"""Density clusters on a map: find them (a job), and read them."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from visor.embedding.models import with_weights_warning
from visor.errors import InvalidInput
from visor.ops import results
from visor.ops.base import Context, Op, register
from visor.ops.reads import text_vector
from visor.ops.zeroshot import words
from visor.services import clusters as cluster_service
from visor.services import maps as map_service
from visor.services.jobs import JobContext

MAP = "the map (default: the dataset's default map)"


@register
class FindClusters(Op):
    """Find density clusters on a map (HDBSCAN on its 2-D points) and label each by what its
    members share: the dominant class and its share, a folder, split or tag.

    Each point gets its cluster (filter the samples by `cluster`); the map's last clustering
    is replaced."""

    name = "clusters"
    job = True

    map_id: int | None = Field(default=None, description=MAP)
    min_cluster_size: int | None = Field(
        default=None,
        ge=2,
        description="the fewest points a cluster holds (auto: 1% of the points, 10 to 5000)",
    )

    vocabulary: list[str] | None = Field(
        default=None,
        description="words, comma-separated: with a CLIP/SigLIP map, the likeliest of them "
        "for each cluster leads its label",
    )

    @field_validator("vocabulary", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return words(value)

    def check(self, ctx: Context) -> FindClusters:
        found = map_service.map_row(ctx.store, ctx.dataset, self.map_id)
        if self.vocabulary:
            if found["objects"]:
                raise InvalidInput("a vocabulary names clusters of a map of images, not boxes")
            text_vector(found["model"], "a photo", ctx.settings.compiled_dir)  # or refused now
        return self.model_copy(update={"map_id": int(found["id"])})

    def key(self) -> str:
        return str(self.map_id)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        found = map_service.map_row(ctx.store, ctx.dataset, self.map_id)
        result = cluster_service.find_clusters(
            ctx.store,
            job,
            ctx.dataset,
            found,
            self.min_cluster_size,
            self.vocabulary,
            ctx.settings.compiled_dir,
        )
        return with_weights_warning({**result, "model": found["model"]})

    def summary(self, result: dict[str, Any]) -> str:
        return result.get("message") or (
            f"map {result['map_id']}: {result['clusters']} clusters of at least "
            f"{result['min_cluster_size']} points among {result['points']} ({result['noise']} "
            f"in none); {result['mixing_classes']} mixing classes ({result['seconds']} s)"
        )


@register
class MapClusters(Op):
    """A map's clusters, largest first: label, size, centroid, bounds, outline, dominant
    classes, split, folder and tag (`clusters` null when the map was never clustered)."""

    name = "map-clusters"
    result = results.ClusterList

    map_id: int | None = Field(default=None, description=MAP)

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        found = map_service.map_row(ctx.store, ctx.dataset, self.map_id)
        return cluster_service.listed(ctx.store, ctx.dataset, found)
