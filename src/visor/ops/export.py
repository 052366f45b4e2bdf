"""Export: write the dataset (or the samples filters or a saved view choose) to a folder as
COCO, YOLO, VOC, class folders or Parquet; or into a zip kept for download."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any, Literal

from pydantic import Field, model_validator

from visor.ops.base import Context, Op, register
from visor.services import export as export_service
from visor.services import views as view_service
from visor.services.jobs import JobContext
from visor.store.samples import SampleFilter


@register
class Export(Op):
    """Write the dataset (or the samples the filters keep) in a format training code reads.

    The folder appears whole when the export ends, or not at all."""

    name = "export"
    job = True

    out: str | None = Field(default=None, description="a folder: absent, or empty (else overwrite)")
    format: Literal["coco", "yolo", "voc", "classification", "parquet"] = Field(
        default="coco", description="coco|yolo|voc|classification|parquet"
    )
    filters: SampleFilter = Field(
        default_factory=SampleFilter, description="which samples (selection included)"
    )
    view: str | None = Field(default=None, description="the samples a saved view shows")
    exclude_tags: list[str] = Field(
        default_factory=list, description="leave out samples with these tags"
    )
    images: Literal["copy", "link", "none"] = Field(
        default="copy", description="copy|link|none: the images copied, linked, or left out"
    )
    kind: Literal["gt", "prediction"] = Field(
        default="gt", description="gt|prediction: which boxes"
    )
    source: str | None = Field(default=None, description="with kind prediction: the source")
    min_score: float | None = Field(
        default=None, ge=0, le=1, description="predictions scoring at least this"
    )
    dedupe: bool = Field(
        default=False, description="one sample of each duplicate group (visor duplicates)"
    )
    split_ratios: list[float] | None = Field(
        default=None, description="new splits by ratio: train, val[, test] (e.g. 0.8,0.1,0.1)"
    )
    seed: int = Field(default=0, description="the shuffle behind split_ratios")
    overwrite: bool = Field(default=False, description="replace a non-empty folder")
    download: bool = Field(
        default=False,
        description="instead of out: a zip kept under home/exports (GET /api/exports/{file})",
    )

    @model_validator(mode="after")
    def _one_target(self) -> Export:
        if self.download == (self.out is not None):
            raise ValueError("give a folder (out) or ask for a download, one of the two")
        if self.view is not None and not self.filters.is_empty():
            raise ValueError("give a view or filters, not both")
        if self.out is not None and "://" not in self.out:
            object.__setattr__(self, "out", os.path.abspath(os.path.expanduser(self.out)))
        return self

    def check(self, ctx: Context) -> Export:
        if self.download:  # a fresh folder name, fixed before the job so it is in its params
            folder = ctx.home("exports")
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            base = f"{ctx.name}-{self.format}-{stamp}-{secrets.token_hex(3)}"
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in base)
            chosen = self.model_copy(update={"out": str(folder / safe)})
        else:
            chosen = self
        chosen.options(ctx)
        return chosen

    def options(self, ctx: Context) -> export_service.ExportOptions:
        assert self.out is not None
        if self.view is not None:
            filters = view_service.view_filter(ctx.store, ctx.dataset, self.view, ctx.selection)
        else:
            filters = ctx.filters(self.filters)
        return export_service.ExportOptions(
            self.out,
            self.format,
            filters=filters,
            exclude_tags=tuple(self.exclude_tags),
            images=self.images,
            kind=self.kind,
            source=self.source,
            min_score=self.min_score,
            dedupe=self.dedupe,
            split_ratios=tuple(self.split_ratios) if self.split_ratios else None,
            seed=self.seed,
            overwrite=self.overwrite,
            archive=self.download,
        ).checked(ctx.dataset["root"])

    def key(self) -> str:
        return str(self.out)

    def job_params(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json", by_alias=True), "filters": self.filters.params()}

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        options = self.options(ctx)
        return export_service.export_dataset(ctx.store, job, ctx.dataset, ctx.source(), options)
