"""The demo: a synthetic dataset of shapes written under home, then ingested, embedded,
mapped and deduplicated, as one job (`visor demo`, `ws.demo()`, the UI's empty page). A
finished one is left as it is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field

from visor.errors import ModelUnavailable
from visor.ops.base import Context, Op, register
from visor.ops.datasets import Ingest, Root
from visor.ops.reads import EmbeddingStatus, Maps
from visor.ops.vectors import Embed, FindDuplicates, MakeMap
from visor.services.jobs import JobContext
from visor.store import datasets as dataset_rows

FALLBACK = "random:dinov2-small"


@register
class Demo(Op):
    """A synthetic dataset of shapes: ingested, embedded, mapped and deduplicated, as one
    job. A finished one (every image embedded, a map) is left as it is unless `fresh`."""

    name = "demo"
    job = True
    scope = "workspace"

    images: int = Field(default=2000, ge=10, le=1_000_000, description="number of images")
    dataset: str = Field(default="demo", alias="name", description="the dataset's name")
    path: Root | None = Field(
        default=None, description="where to write the images (default: VISOR_HOME/demo-images)"
    )
    model: str | None = Field(
        default=None,
        description=f"embedding model (default: VISOR_MODEL's; {FALLBACK} when its weights "
        "can't be loaded)",
    )
    precision: str | None = Field(default=None, description="auto|fp32|fp16|bf16")
    fresh: bool = Field(
        default=False, description="build it again even when a finished one is there"
    )

    def job_dataset(self, dataset: str | None) -> str | None:
        return self.dataset

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        root = Path(os.path.abspath(self.path or ctx.home("demo-images")))
        marker = root / f".complete-{self.images}"
        found = {"dataset": self.dataset, "images": self.images, "root": str(root)}
        model = None if self.fresh or not marker.exists() else self._finished(ctx, root)
        if model is not None:
            return found | {
                "model": model,
                "built": False,
                "steps": [],
                "warnings": [],
                "note": None,
            }
        if not marker.exists():
            from visor.synthetic import generate

            job.phase("writing demo images", total=self.images)
            generate(root, self.images, progress=lambda done, total: job.progress(done))
            marker.touch()
        model, warnings = self._model(ctx)
        steps: list[dict[str, Any]] = []
        asked = {"precision": self.precision} if self.precision else {}
        for op in (
            Ingest(path=str(root), dataset=self.dataset, replace=True),
            Embed(model=model, **asked),
            MakeMap(model=model),
            FindDuplicates(model=model),
        ):
            step = ctx.runner.context(None if op.scope == "workspace" else self.dataset)
            checked = op.check(step)
            result = checked.run(step, job)
            steps.append({"op": op.name, "params": checked.model_dump(mode="json"),
                          "summary": checked.summary(result), "result": result})  # fmt: skip
            job.check_cancelled()
        note = None
        if model.startswith("random:"):
            note = (
                f"{model} has random weights, so the map, neighbours and duplicates above show "
                "the pipeline running, not real similarity. For real results, put DINOv2 weights "
                "where Visor finds them (the Hugging Face cache, or a model folder: --model "
                f"./dinov2-base) and run visor embed {self.dataset} --model dinov2-base, then "
                "visor map and visor duplicates."
            )
        built = {"built": True, "steps": steps, "warnings": warnings, "note": note}
        return found | {"model": model} | built

    def summary(self, result: dict[str, Any]) -> str:
        state = "built" if result["built"] else "finished"
        return (
            f"the demo {result['dataset']} is {state} ({result['images']} images, vectors from "
            f"{result['model']}, a map)"
        )

    def _model(self, ctx: Context) -> tuple[str, list[str]]:
        """The model asked for, else the configured one if its weights load, else random."""
        from visor.embedding.models import load_model

        if self.model is not None:
            return self.model, []
        try:
            load_model(ctx.settings.model, cache_dir=ctx.settings.compiled_dir)
            return ctx.settings.model, []
        except ModelUnavailable as e:
            return FALLBACK, [
                e.message,
                f"the demo uses {FALLBACK} instead: random weights, so the map and neighbours "
                "show the pipeline working, not real similarity",
            ]

    def _finished(self, ctx: Context, root: Path) -> str | None:
        """The model whose vectors a finished demo of these images under `root` has (every
        image embedded, and a map); None when it isn't one."""
        row = dataset_rows.get_by_name(ctx.store, self.dataset)
        if row is None or row["root"] != str(root) or row["num_samples"] != self.images:
            return None
        step = ctx.runner.context(self.dataset)
        done = [m["model"] for m in EmbeddingStatus().run(step, None)["models"] if m["complete"]]
        return done[0] if done and Maps().run(step, None) else None
