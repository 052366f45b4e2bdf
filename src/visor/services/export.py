"""The export job: the chosen samples (a filter, tags left out, duplicate groups reduced to
their kept member, new splits by ratio) with their labels, written in a format training code
reads, with their images copied, linked or left out. Everything is written into a scratch
folder beside the output and moved into place at the end: an export is whole or absent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from visor.errors import Conflict, InvalidInput
from visor.export.classification import ClassificationWriter
from visor.export.coco import CocoWriter
from visor.export.records import (
    ExportBox,
    ExportSample,
    check_class_names,
    unique_names,
)
from visor.export.voc import VocWriter
from visor.export.yolo import YoloWriter
from visor.services.jobs import JobContext
from visor.sources import Source, put_folder, remote_folder_state
from visor.store import Store
from visor.store import export as export_rows
from visor.store import samples as sample_rows
from visor.store.samples import SampleFilter

CHUNK = 5000
REPORT_LIMIT = 100
PLACING_THREADS = 8


class Writer(Protocol):
    def image_path(self, sample: ExportSample) -> str: ...
    def add(self, sample: ExportSample) -> None: ...
    def finish(self) -> None: ...


class ExportParams(BaseModel):
    """What an export is asked with: the `export` operation's fields, and what the export
    job reads (`resolved(root)` refuses a bad target and makes `out` absolute)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    out: str | None = Field(default=None, description="a folder: absent, or empty (else overwrite)")
    format: Literal["coco", "yolo", "voc", "classification", "parquet"] = Field(
        default="coco", description="coco|yolo|voc|classification|parquet"
    )
    filters: SampleFilter = Field(
        default_factory=SampleFilter, description="which samples (selection included)"
    )
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
    seed: int = Field(
        default=0, description="the shuffle that deals samples into new splits (by ratio)"
    )
    overwrite: bool = Field(default=False, description="replace a non-empty folder")
    download: bool = Field(
        default=False,
        description="instead of out: a zip kept under home/exports (GET /api/exports/{file})",
    )

    def resolved(self, root: str) -> Self:
        """Checked against the target (fails before a job starts), `out` absolute and the
        split ratios summing to 1."""
        assert self.out is not None
        ratios = _ratios(self.split_ratios)
        if "://" in self.out:  # an object store: written locally, then uploaded
            if self.images == "link":
                raise InvalidInput("--link makes links on local disk; use --copy for S3/GCS")
            if self.download:
                raise InvalidInput("a download is written locally, not to an object store")
            if remote_folder_state(self.out) and not self.overwrite:
                raise Conflict(
                    f"{self.out}: exists and is not empty (use --overwrite to replace it)"
                )
            return self.model_copy(update={"out": self.out.rstrip("/"), "split_ratios": ratios})
        out = Path(self.out).expanduser().resolve()
        if "://" not in root:
            dataset_root = Path(root).resolve()
            if out == dataset_root or dataset_root in out.parents:
                raise InvalidInput(
                    f"{out}: the output is inside the dataset's root ({dataset_root}); "
                    "write it elsewhere"
                )
        elif self.images == "link":
            raise InvalidInput("--link needs images on local disk; use --copy for S3/GCS")
        if out.exists() and not out.is_dir():
            raise Conflict(f"{out}: exists and is not a folder")
        if out.exists() and any(out.iterdir()) and not self.overwrite:
            raise Conflict(f"{out}: exists and is not empty (use --overwrite to replace it)")
        made = next(folder for folder in out.parents if folder.exists())  # the rest: made
        if not made.is_dir() or not os.access(made, os.W_OK):
            raise InvalidInput(f"{made}: {'not writable' if made.is_dir() else 'not a folder'}")
        return self.model_copy(update={"out": str(out), "split_ratios": ratios})


def _ratios(ratios: list[float] | None) -> list[float] | None:
    if ratios is None:
        return None
    if not 2 <= len(ratios) <= 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise InvalidInput(
            f"split ratios {list(ratios)}: give 2 or 3 non-negative numbers "
            "(train, val[, test]), e.g. 0.8,0.1,0.1"
        )
    return [r / sum(ratios) for r in ratios]


def chosen_samples(store: Store, dataset: dict[str, Any], options: ExportParams) -> np.ndarray:
    """The ids (ascending) of the samples the export writes."""
    dataset_id = int(dataset["id"])
    ids = sample_rows.filtered_ids(store, dataset_id, options.filters)
    if options.exclude_tags:
        ids = np.setdiff1d(ids, export_rows.with_tags(store, dataset_id, options.exclude_tags))
    if options.dedupe:
        ids = np.setdiff1d(ids, export_rows.duplicates_to_drop(store, dataset_id))
    # Samples excluded by an edit never leave.
    return np.setdiff1d(ids, export_rows.with_flag(store, dataset_id, "excluded"))


def export_dataset(
    store: Store, ctx: JobContext, dataset: dict[str, Any], source: Source, options: ExportParams
) -> dict[str, Any]:
    started = time.monotonic()
    target = str(options.out)  # resolved: never None here
    remote = "://" in target
    out = Path(tempfile.gettempdir()) / "visor-export" if remote else Path(target)
    ids = chosen_samples(store, dataset, options)
    if not len(ids):
        raise InvalidInput("no sample matches: nothing to export")
    (out if remote else out.parent).mkdir(parents=True, exist_ok=True)
    scratch = Path(
        tempfile.mkdtemp(prefix=f".{out.name}.visor-", dir=out.parent if not remote else out)
    )
    try:
        ctx.phase(f"writing {len(ids)} samples as {options.format}", total=len(ids))
        if options.format == "parquet":
            result = _parquet(store, dataset, ids, options, scratch)
        else:
            result = _files(store, ctx, dataset, source, ids, options, scratch)
        ctx.check_cancelled()
        if remote:
            ctx.phase(f"uploading to {options.out}")
            result["uploaded"] = put_folder(str(scratch), target, replace=options.overwrite)
            shutil.rmtree(scratch, ignore_errors=True)
        elif options.download:
            if options.images == "link":
                raise InvalidInput("a zip can't hold links: copy the images, or leave them out")
            ctx.phase("zipping")
            made = shutil.make_archive(str(scratch), "zip", root_dir=scratch)
            os.replace(made, out.with_suffix(".zip"))
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            _move_into_place(scratch, out, options.overwrite)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if options.download:
        out = out.with_suffix(".zip")
    where = options.out if remote else str(out)
    result.update(out=where, format=options.format, seconds=round(time.monotonic() - started, 2))
    return result


def _move_into_place(scratch: Path, out: Path, overwrite: bool) -> None:
    if out.exists():
        if any(out.iterdir()) and not overwrite:
            raise Conflict(f"{out}: appeared meanwhile and is not empty; nothing was changed")
        old = out.with_name(f".{out.name}.visor-old-{os.getpid()}")
        out.rename(old)
        scratch.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        scratch.rename(out)


def _classes(store: Store, dataset: dict[str, Any], options: ExportParams) -> list[str]:
    names = set(dataset["categories"] or [])
    names |= {
        str(c)
        for (c,) in store.query(
            "SELECT DISTINCT class FROM labels WHERE dataset_id = ? AND kind = ? "
            "AND class IS NOT NULL",
            [dataset["id"], options.kind],
        )
    }
    return sorted(names)


def _writer(fmt: str, out: Path, classes: list[str], report: dict[str, Any]) -> Writer:
    if fmt == "coco":  # the source's own info and licenses, when it was COCO
        return CocoWriter(out, classes, report.get("coco_info"), report.get("coco_licenses"))
    if fmt == "yolo":
        return YoloWriter(out, classes)
    if fmt == "voc":
        return VocWriter(out, classes)
    return ClassificationWriter(out, classes)


def _samples(
    store: Store,
    dataset_id: int,
    ids: np.ndarray,
    options: ExportParams,
    splits: dict[int, str],
    writer: Writer,
    classes: list[str],
) -> Iterator[list[ExportSample]]:
    """The chosen samples with their labels, a chunk at a time: as boxes, or for a writer
    with a `BOX_SQL`, as its text."""
    box_sql: str | None = getattr(writer, "BOX_SQL", None)
    # The class table `BOX_SQL` reads as `c`: name, index, and the writer's own columns.
    class_table: dict[str, list[Any]] = {"name": classes, "idx": list(range(len(classes)))}
    if hasattr(writer, "class_columns"):
        class_table.update(writer.class_columns(classes))
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        rows = export_rows.samples_chunk(store, dataset_id, part)
        by_id = {
            row["id"]: ExportSample(
                id=row["id"],
                path=row["path"],
                name="",
                split=splits.get(row["id"], row["split"]),
                width=row["width"],
                height=row["height"],
            )
            for row in rows
        }
        labels = (options.kind, options.source, options.min_score)
        if box_sql is not None:
            texts = export_rows.label_texts_chunk(
                store, dataset_id, part, *labels, box_sql, class_table
            )
            for sample_id, (text, count, image_classes) in texts.items():
                sample = by_id[sample_id]
                sample.text, sample.box_count, sample.classes = text, count, image_classes
        else:
            for sample_id, cls, x, y, w, h, score in export_rows.labels_chunk(
                store, dataset_id, part, *labels
            ):
                sample = by_id[sample_id]
                if x is None:
                    if cls not in sample.classes:
                        sample.classes.append(cls)
                else:
                    sample.boxes.append(ExportBox(cls, x, y, w, h, score))
                    sample.box_count += 1
        yield list(by_id.values())


def _new_splits(ids: np.ndarray, ratios: list[float], seed: int) -> dict[int, str]:
    """train/val[/test] by ratio, from a seeded shuffle (the same seed: the same splits)."""
    order = np.random.default_rng(seed).permutation(len(ids))
    cuts = np.round(np.cumsum(ratios)[:-1] * len(ids)).astype(int)
    names = ("train", "val", "test")
    split_of: dict[int, str] = {}
    for part, rows in enumerate(np.split(order, cuts)):
        for row in rows.tolist():
            split_of[int(ids[row])] = names[part]
    return split_of


def _files(
    store: Store,
    ctx: JobContext,
    dataset: dict[str, Any],
    source: Source,
    ids: np.ndarray,
    options: ExportParams,
    scratch: Path,
) -> dict[str, Any]:
    dataset_id = int(dataset["id"])
    classes = _classes(store, dataset, options)
    if options.format in ("yolo", "classification"):
        check_class_names(classes, options.format)
    writer = _writer(options.format, scratch, classes, dataset.get("report") or {})
    splits = _new_splits(ids, options.split_ratios, options.seed) if options.split_ratios else {}
    # File names: unique within a split (VOC: within the whole export, one folder).
    paths = export_rows.samples_chunk(store, dataset_id, ids) if len(ids) else []
    groups: dict[str | None, list[str]] = {}
    for row in paths:
        key = None if options.format == "voc" else splits.get(row["id"], row["split"])
        groups.setdefault(key, []).append(row["path"])
    names = {
        (key, path): name for key, members in groups.items()
        for path, name in unique_names(
            members, by_stem=options.format in ("yolo", "voc")
        ).items()
    }  # fmt: skip
    written = boxes = dropped = image_labels = 0
    skipped: list[dict[str, Any]] = []
    skipped_count = 0
    split_counts: dict[str, int] = {}
    folders: set[Path] = set()
    placements: list[tuple[str, Path]] = []
    # Images are copied, linked or read from a bucket while the labels are written: on a
    # thread of their own on local disk (links into one folder wait on it one by one), on
    # several for a bucket (each read waits on the network).
    threads = 1 if source.is_local else PLACING_THREADS
    placing = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="visor-export")
    placed: deque[list[Future[None]]] = deque()
    try:
        for chunk in _samples(store, dataset_id, ids, options, splits, writer, classes):
            for sample in chunk:
                key = None if options.format == "voc" else sample.split
                sample.name = names[(key, sample.path)]
                reason = _skip_reason(writer, sample, options.format)
                if reason:
                    skipped_count += 1
                    if len(skipped) < REPORT_LIMIT:
                        skipped.append(
                            {"sample_id": sample.id, "path": sample.path, "reason": reason}
                        )
                    continue
                writer.add(sample)
                if options.format in ("coco", "yolo"):
                    dropped += len(sample.classes)  # these formats hold boxes only
                else:
                    image_labels += len(sample.classes)  # a class folder, a VOC object
                if options.images != "none":
                    target = scratch / writer.image_path(sample)
                    if target.parent not in folders:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        folders.add(target.parent)
                    placements.append((sample.path, target))
                written += 1
                boxes += sample.box_count
                label = sample.split or "(none)"
                split_counts[label] = split_counts.get(label, 0) + 1
            placed.append(_place_chunk(placing, source, placements, options.images))
            placements = []
            while len(placed) > 2:  # at most two chunks in flight
                _wait(placed.popleft())
            ctx.progress(written + skipped_count)
            ctx.check_cancelled()
        while placed:
            _wait(placed.popleft())
        writer.finish()
    finally:
        close = getattr(writer, "close", None)
        if close is not None:
            close()  # folders a writer holds open, also when the export stops early
        placing.shutdown(wait=True, cancel_futures=True)
    if not written:
        raise InvalidInput(
            f"no sample could be written as {options.format}"
            + (f" ({skipped[0]['reason']})" if skipped else "")
        )
    return {
        "samples": written,
        "boxes": boxes,
        "labels": boxes + image_labels,
        "splits": split_counts,
        "classes": classes,
        "images": options.images,
        "skipped_count": skipped_count,
        "skipped": skipped,
        "image_labels_not_written": dropped,
    }


def _skip_reason(writer: Writer, sample: ExportSample, fmt: str) -> str | None:
    if fmt == "classification":
        assert isinstance(writer, ClassificationWriter)
        return writer.skip_reason(sample)
    if fmt == "yolo" and sample.box_count and not (sample.width and sample.height):
        return "image size unknown (YOLO boxes are relative to it)"
    return None


def _place_chunk(
    pool: ThreadPoolExecutor, source: Source, placements: list[tuple[str, Path]], how: str
) -> list[Future[None]]:
    if source.is_local:
        return [pool.submit(_place_images, source, placements, how)] if placements else []
    return [pool.submit(_place_image, source, path, target, how) for path, target in placements]


def _wait(futures: list[Future[None]]) -> None:
    for future in futures:
        future.result()  # an image that could not be placed stops the export


def _place_images(source: Source, placements: list[tuple[str, Path]], how: str) -> None:
    for path, target in placements:
        _place_image(source, path, target, how)


def _place_image(source: Source, path: str, target: Path, how: str) -> None:
    local = source.local_path(path)
    if how == "link":
        assert local is not None
        os.symlink(local, target)
    elif local is not None:
        shutil.copyfile(local, target)
    else:
        target.write_bytes(source.read_bytes(path))


def _parquet(
    store: Store, dataset: dict[str, Any], ids: np.ndarray, options: ExportParams, scratch: Path
) -> dict[str, Any]:
    """samples.parquet (fields, tags, analysis results, image quality issues), labels.parquet
    (every label of the chosen kind), and one embeddings_<model>.parquet per model."""
    dataset_id = int(dataset["id"])
    written = export_rows.copy_parquet(
        store, dataset_id, ids,
        "SELECT s.id, s.path, s.filename, s.split, s.width, s.height, s.size_bytes, s.classes, "
        "s.tags, s.num_labels, s.content_hash, s.duplicate_group, s.uniqueness, q.issues AS "
        "quality_issues, s.metadata FROM samples s LEFT JOIN image_quality q ON "
        "q.dataset_id = s.dataset_id AND q.sample_id = s.id WHERE s.dataset_id = ? AND s.id IN "
        "(SELECT id FROM _export_ids) ORDER BY s.id",
        [dataset_id], _quoted(scratch / "samples.parquet"),
    )  # fmt: skip
    where = "l.kind = ?"
    params: list[Any] = [dataset_id, options.kind]
    if options.source is not None:
        where += " AND l.source = ?"
        params.append(options.source)
    if options.min_score is not None:
        where += " AND coalesce(l.score, 1.0) >= ?"
        params.append(options.min_score)
    boxes = export_rows.copy_parquet(
        store, dataset_id, ids,
        "SELECT l.id, l.sample_id, l.kind, l.source, l.class, l.x, l.y, l.w, l.h, l.score, "
        "l.iscrowd, q.quality AS label_quality, q.issue AS label_issue, q.suggested FROM labels "
        "l LEFT JOIN label_quality q ON q.dataset_id = l.dataset_id AND q.label_id = l.id "
        "WHERE l.dataset_id = ? AND l.sample_id IN (SELECT id FROM _export_ids) AND "
        f"{where} ORDER BY l.sample_id, l.id",
        params, _quoted(scratch / "labels.parquet"),
    )  # fmt: skip
    models = []
    for name, dim in store.query("SELECT name, dim FROM embedding_models ORDER BY name"):
        table = f"embeddings_{int(dim)}"
        if not store.has_table(table):
            continue
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
        count = export_rows.copy_parquet(
            store, dataset_id, ids,
            f"SELECT sample_id, vector FROM {table} WHERE dataset_id = ? AND model = ? AND "
            "sample_id IN (SELECT id FROM _export_ids) ORDER BY sample_id",
            [dataset_id, name], _quoted(scratch / f"embeddings_{slug}.parquet"),
        )  # fmt: skip
        if count:
            models.append({"model": name, "file": f"embeddings_{slug}.parquet", "vectors": count})
        else:
            (scratch / f"embeddings_{slug}.parquet").unlink()
    return {
        "samples": written,
        "boxes": boxes,  # every label row, image-level ones too
        "labels": boxes,
        "embeddings": models,
        "skipped_count": 0,
    }


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
