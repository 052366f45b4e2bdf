"""Operations on the workspace (ingest, the datasets, read-only SQL) and on one dataset's
samples (info, pages, tags, selections, a table of it all, deletion)."""

from __future__ import annotations

import os
import shutil
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from visor.ops import results
from visor.ops.base import ArrowOp, Chosen, Context, Op, register
from visor.services import ingest as ingest_service
from visor.services import samples as sample_service
from visor.services.jobs import JobContext
from visor.store import datasets as dataset_rows
from visor.store import embeddings as vector_rows
from visor.store import samples as sample_rows
from visor.store import tables
from visor.store.samples import SampleFilter

# -- the workspace ------------------------------------------------------------------------


def _absolute(root: str) -> str:
    # Made absolute where the op is made: a server's working folder is not the caller's.
    return root if "://" in root else os.path.abspath(root)


Root = Annotated[
    str, AfterValidator(_absolute), Field(description="dataset root: folder, s3://… or gs://…")
]


@register
class Ingest(Op):
    """Read a dataset's images and labels into the store."""

    name = "ingest"
    job = True
    scope = "workspace"

    path: Root
    dataset: str = Field(alias="name", description="name for the dataset")
    format: str | None = Field(
        default=None, description="coco|yolo|voc|classification|images (default: detected)"
    )
    replace: bool = Field(default=False, description="replace a dataset of the same name")
    thumbnails: bool = Field(
        default=False, description="make all thumbnails now instead of on first view"
    )

    def check(self, ctx: Context) -> Ingest:
        ingest_service.check_can_create(ctx.store, self.dataset, self.replace)
        ctx.engine.source(self.path)  # a missing path or unreachable bucket fails here
        return self

    def key(self) -> str:
        return ""

    def job_dataset(self, dataset: str | None) -> str | None:
        return self.dataset

    def job_params(self) -> dict[str, Any]:
        return {"root": self.path, "format": self.format, "replace": self.replace,
                "thumbnails": self.thumbnails}  # fmt: skip

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        assert job is not None
        result = ingest_service.ingest(
            ctx.store, job, name=self.dataset, root=self.path, fmt=self.format, replace=self.replace
        )
        if self.thumbnails:
            row = dataset_rows.get_by_name(ctx.store, self.dataset)
            assert row is not None
            result["thumbnails"] = sample_service.make_thumbnails(
                ctx.store, ctx.settings, ctx.engine.source(self.path), row, job
            )
        return result

    def summary(self, result: dict[str, Any]) -> str:
        made = result.get("thumbnails")
        return (
            f"ingested {self.dataset}: {result['samples']} samples, {result['labels']} labels "
            f"({result['format']})" + (f", {made['made']} thumbnails" if made else "")
        )


@register
class Inspect(Op):
    """The format an ingest of a folder would detect, and its number of images."""

    name = "inspect"
    result = results.Inspection
    scope = "workspace"

    path: Root

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return ingest_service.inspect(self.path)


@register
class Datasets(Op):
    """Every dataset, with its samples per split, vectors per model and number of maps."""

    name = "datasets"
    scope = "workspace"
    result = list[results.DatasetSummary]

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        rows = dataset_rows.list_datasets(ctx.store)
        splits: dict[int, dict[str, int]] = {}
        for dataset_id, split, n in ctx.store.query(
            "SELECT dataset_id, coalesce(split, '(none)'), count(*) FROM samples "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            splits.setdefault(int(dataset_id), {})[str(split)] = int(n)
        maps = dict(ctx.store.query("SELECT dataset_id, count(*) FROM maps GROUP BY 1"))
        vectors = vector_rows.counts(ctx.store)
        for row in rows:
            row["splits"] = splits.get(row["id"], {})
            row["vectors"] = vectors.get(row["id"], {})
            row["maps"] = int(maps.get(row["id"], 0))
        return rows


@register
class Sql(ArrowOp):
    """One read-only SELECT over the store (DuckDB), as an Arrow table."""

    name = "sql"
    scope = "workspace"

    query: str = Field(description="one SELECT statement")

    def run(self, ctx: Context, job: JobContext | None) -> Any:
        return tables.read_only(ctx.store, self.query)


# -- one dataset --------------------------------------------------------------------------


@register
class Find(Op):
    """The dataset's row: id, name, root, format, counts of samples and labels."""

    name = "find"

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return ctx.dataset


@register
class Info(Op):
    """The dataset's row, samples per split, labels per class, tags and flags."""

    name = "info"
    result = results.DatasetInfo

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return {**ctx.dataset, **sample_rows.counts(ctx.store, ctx.id)}


@register
class DeleteDataset(Op):
    """Delete the dataset from the store (its files are not touched)."""

    name = "delete"

    def run(self, ctx: Context, job: JobContext | None) -> None:
        dataset_rows.delete_dataset(ctx.store, ctx.id)
        ctx.engine.indexes.forget(ctx.id)
        for folder in (ctx.settings.thumbnails_dir / str(ctx.id), ctx.home("indexes", str(ctx.id))):
            shutil.rmtree(folder, ignore_errors=True)
        ctx.changed("deleted")


class _Tagging(Op, Chosen):
    result = int  # how many samples changed
    tags: list[str] = Field(min_length=1, description="1-64 characters each")

    @model_validator(mode="after")
    def _one_target(self) -> _Tagging:
        if self.ids is None and self.selection is None and self.filters is None:
            raise ValueError("give the samples: ids, a selection or filters")
        return self

    def retag(self, ctx: Context, add: bool) -> int:
        change = sample_rows.add_tags if add else sample_rows.remove_tags
        ids = self.chosen(ctx)
        assert ids is not None  # one of ids, selection or filters (_one_target)
        updated = change(ctx.store, ctx.id, ids, sample_service.check_tags(self.tags))
        ctx.changed("tags")
        return updated

    def summary(self, result: int) -> str:
        return f"{self.name}ged {result} samples: {', '.join(self.tags)}"  # tagged, untagged


@register
class AddTags(_Tagging):
    """Tag samples; returns how many changed."""

    name = "tag"

    def run(self, ctx: Context, job: JobContext | None) -> int:
        return self.retag(ctx, True)


@register
class RemoveTags(_Tagging):
    """Untag samples; returns how many changed."""

    name = "untag"

    def run(self, ctx: Context, job: JobContext | None) -> int:
        return self.retag(ctx, False)


@register
class Select(Op):
    """Keep a set of sample ids (e.g. a lasso) under a token that filters, tags and pages
    can name instead of sending the ids again."""

    name = "select"

    ids: list[int] = Field(max_length=1_000_000, description="sample ids")

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return ctx.select(self.ids)


class _Paged(Op):
    filters: SampleFilter = Field(default_factory=SampleFilter, description="which samples")


@register
class Samples(_Paged):
    """A page of samples matching the filters: {total, items}."""

    name = "samples"
    result = results.SamplePage

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)
    sort: str = Field(
        default="id",
        description="id, filename, path, size_bytes, width, height, num_labels, split, "
        "uniqueness, duplicate_group, label_quality, detection_quality, cluster (on the default "
        "map), eval.<tp|fp|fn|errors> or metadata.<numeric field>",
    )
    descending: bool = False

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        filters = ctx.filters(self.filters, known=False)
        if filters.evaluation is not None:
            from visor.services.evaluate import Evaluations

            Evaluations(ctx.store, ctx.dataset).id_of(filters.evaluation)  # unknown: NotFound
        total, items = sample_rows.page(
            ctx.store,
            ctx.id,
            filters,
            offset=self.offset,
            limit=self.limit,
            sort=self.sort,
            descending=self.descending,
        )
        return {"total": total, "items": items}


@register
class Table(ArrowOp, _Paged):
    """The samples (one row each, with their classes, tags and scores), or with labels one
    row per label, as an Arrow table."""

    name = "table"

    labels: bool = Field(default=False, description="one row per label instead")

    def run(self, ctx: Context, job: JobContext | None) -> Any:
        return tables.samples_table(
            ctx.store, ctx.id, ctx.filters(self.filters), labels=self.labels
        )


@register
class Sample(Op):
    """One sample; `detection_check` when cleanlab's detection check has scored it."""

    name = "sample"
    result = results.SampleDetail

    sample_id: int

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return sample_service.sample(ctx.store, ctx.dataset, self.sample_id)


@register
class Labels(Op):
    """A sample's labels; a scored label has `label_quality`."""

    name = "labels"
    result = list[results.Label]

    sample_id: int

    def run(self, ctx: Context, job: JobContext | None) -> list[dict[str, Any]]:
        sample_service.sample(ctx.store, ctx.dataset, self.sample_id)
        return sample_rows.labels(ctx.store, ctx.id, self.sample_id)


@register
class Thumbnail(Op):
    """A sample's thumbnail, JPEG bytes (None when its image cannot be read)."""

    name = "thumbnail"
    media_type = "image/jpeg"

    sample_id: int

    def run(self, ctx: Context, job: JobContext | None) -> bytes | None:
        return sample_service.thumbnail_bytes(
            ctx.store, ctx.settings, ctx.source(), ctx.dataset, self.sample_id
        )

    def encode(self, result: Any) -> bytes:
        return result or b""

    def decode(self, body: Any) -> bytes | None:
        return body or None
