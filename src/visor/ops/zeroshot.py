"""Zero-shot tags from a CLIP or SigLIP model's text tower."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from visor.errors import InvalidInput
from visor.ops.base import Context, Op, register
from visor.ops.collections import edits
from visor.ops.reads import text_vector
from visor.services import vectors
from visor.services import zeroshot as zeroshot_service
from visor.services.jobs import JobContext


def words(value: Any) -> Any:
    """A list of words (each may hold several, comma-separated), none empty, none twice."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = [p.strip() for v in value for p in str(v).split(",")]
        if not value or not all(value):
            raise ValueError("give at least one label, none empty")
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            raise ValueError(f"{', '.join(repr(v) for v in twice)} given more than once")
    return value


@register
class TagZeroShot(Op):
    """Tag each image with the label a CLIP or SigLIP model finds likeliest (prompted as
    "a photo of a {label}") when it is sure enough, as one undoable edit.

    Without labels, the dataset's classes: then the images whose ground truth the model
    disagrees with are tagged too (PREFIX + "disagrees"), and the health report counts them."""

    name = "tag-zero-shot"
    job = True

    labels: list[str] | None = Field(
        default=None, description="labels, comma-separated (default: the dataset's classes)"
    )
    model: str | None = Field(
        default=None, description="whose vectors: a CLIP or SigLIP model (default: the newest)"
    )
    template: str = Field(default="a photo of a {}", description="the prompt; {} is the label")
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="tag only where the label's probability is at least"
    )
    prefix: str = Field(default="zero-shot:", description="the tags' prefix")

    @field_validator("labels", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return words(value)

    @field_validator("template")
    @classmethod
    def _slot(cls, value: str) -> str:
        if value.count("{}") != 1:
            raise ValueError("the prompt needs one {} where the label goes")
        return value

    def check(self, ctx: Context) -> TagZeroShot:
        model = self.model or vectors.default_model(ctx.store, ctx.dataset)
        vectors.version(ctx.store, ctx.dataset, model)  # it has vectors from it
        text_vector(model, "a photo", ctx.settings.compiled_dir)  # a text tower, or refused now
        labels = self.labels
        if labels is None:
            labels = [str(c) for c in ctx.dataset.get("categories") or []]
            if not labels:
                raise InvalidInput(
                    f"dataset {ctx.name!r} has no classes: give the labels (--labels a,b,c)"
                )
        return self.model_copy(update={"model": model, "labels": labels})

    def key(self) -> str:
        return f"{self.model}:{self.prefix}"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None and self.model is not None and self.labels is not None
        classes = sorted(self.labels) == sorted(ctx.dataset.get("categories") or [])
        return zeroshot_service.tag_zero_shot(
            ctx.store,
            job,
            ctx.dataset,
            edits(ctx),
            model=self.model,
            labels=self.labels,
            template=self.template,
            threshold=self.threshold,
            prefix=self.prefix,
            classes=classes,
            compiled=ctx.settings.compiled_dir,
        )

    def summary(self, result: dict[str, Any]) -> str:
        counts = ", ".join(f"{tag} {n}" for tag, n in result["tagged"].items())
        return (
            f"zero-shot tags on {result['samples']} images with {result['model']} "
            f"({result['seconds']} s): {counts or 'none'}"
        )
