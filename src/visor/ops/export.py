"""Export: write the dataset (or the samples filters or a saved view choose) to a folder as
COCO, YOLO, VOC, class folders or Parquet; or into a zip kept for download."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from pydantic import Field, model_validator

from visor.ops.base import Context, Op, register
from visor.services import export as export_service
from visor.services import views as view_service
from visor.services.jobs import JobContext


@register
class Export(Op, export_service.ExportParams):
    """Write the dataset (or the samples the filters keep) in a format training code reads.

    The folder appears whole when the export ends, or not at all."""

    name = "export"
    job = True

    view: str | None = Field(default=None, description="the samples a saved view shows")

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

    def options(self, ctx: Context) -> Export:
        """As the export job reads it: the view or selection turned into filters, the target
        checked."""
        if self.view is not None:
            filters = view_service.view_filter(ctx.store, ctx.dataset, self.view, ctx.selection)
        else:
            filters = ctx.filters(self.filters)
        return self.model_copy(update={"filters": filters}).resolved(ctx.dataset["root"])

    def key(self) -> str:
        return str(self.out)

    def job_params(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json", by_alias=True), "filters": self.filters.params()}

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        options = self.options(ctx)
        return export_service.export_dataset(ctx.store, job, ctx.dataset, ctx.source(), options)

    def summary(self, result: dict[str, Any]) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in sorted(result.get("splits", {}).items()))
        return (
            f"exported {result['samples']} samples and {result['labels']} labels as "
            f"{result['format']} to {result['out']} in {result['seconds']} s"
            + (f" ({splits})" if splits else "")
        )

    def said(self, result: dict[str, Any]) -> list[str]:
        if not result.get("image_labels_not_written"):
            return []
        return [
            f"{result['image_labels_not_written']} image-level labels not written: "
            f"{result['format']} holds boxes only (use classification, voc or parquet)"
        ]
