"""Ingestion: a dataset's files -> validated records -> one atomic write to the store."""

from __future__ import annotations

import re
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from visor.errors import Conflict, FormatError, InvalidInput, NotFound, SourceError
from visor.formats import (
    FORMATS,
    CategoryTable,
    LabelColumns,
    LabelRecord,
    Listing,
    SampleRecord,
    Skipped,
    SourceInfo,
    detect_format,
    read_dataset,
)
from visor.media.images import header_size, probe
from visor.services.jobs import JobContext
from visor.sources import Source
from visor.store import Store
from visor.store import datasets as dataset_rows

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_BATCH = 50_000
_PROBE_THREADS = 16
REPORT_LIMIT = 1000  # problems listed in a report; the count is always exact


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"dataset name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit (no spaces or '/')"
        )
    return name


def check_can_create(store: Store, name: str, replace: bool) -> dict[str, Any] | None:
    """The dataset that `name` would replace; Conflict if it exists and `replace` is off."""
    check_name(name)
    existing = dataset_rows.get_by_name(store, name)
    if existing is not None and not replace:
        raise Conflict(f"dataset {name!r} already exists (use --replace to ingest it again)")
    return existing


def list_files(source: Source) -> Listing:
    problems: list[tuple[str, str]] = []
    sizes = {entry.path: entry.size for entry in source.walk(problems)}
    return Listing(sizes, [Skipped(p, r) for p, r in problems])


def inspect(root: str) -> dict[str, Any]:
    """What an ingest of `root` would find: the detected format and how many images."""
    listing = list_files(Source(root))
    return {
        "path": root,
        "format": _format_of(root, listing),
        "images": sum(1 for _ in listing.images()),
        "problems": len(listing.problems),
    }


def _format_of(root: str, listing: Listing) -> str:
    try:
        return detect_format(listing)
    except FormatError as e:
        raise FormatError(f"{root}: {e.message}") from None


@dataclass
class _Columns:
    """Samples and labels gathered as columns, ready to become Arrow tables."""

    samples: list[SampleRecord] = field(default_factory=list)
    index: dict[Hashable, int] = field(default_factory=dict)
    labels: list[tuple[int, LabelRecord]] = field(default_factory=list)
    batches: list[tuple[np.ndarray, LabelColumns]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    category_ids: dict[int, str] = field(default_factory=dict)
    source_info: SourceInfo | None = None  # the first the format gave
    # sample index -> (width, height) the annotations gave, where the file says otherwise
    size_mismatches: dict[int, tuple[int, int]] = field(default_factory=dict)


def ingest(
    store: Store,
    ctx: JobContext,
    *,
    name: str,
    root: str,
    fmt: str | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Read the dataset at `root` and store it as `name`; returns the ingest report."""
    check_can_create(store, name, replace)
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    ctx.phase(f"listing files in {root}")
    source = Source(root)
    listing = list_files(source)
    fmt = fmt or _format_of(root, listing)
    ctx.check_cancelled()

    ctx.phase(f"reading {fmt} annotations")
    cols = _gather(source, listing, fmt, ctx)
    cols.skipped[:0] = listing.problems
    ctx.check_cancelled()

    before = len(cols.skipped)
    sizes = _probe_images(source, listing, cols, ctx)
    keep = [i for i, s in enumerate(cols.samples) if sizes[i] is not None]
    if not keep:  # a dataset of nothing is a mistake to say, not one to store
        unread = cols.skipped[before:]
        raise FormatError(
            f"{root}: "
            + (
                "its one image could not be read"
                if len(cols.samples) == 1
                else f"none of its {len(cols.samples)} images could be read"
            )
            + f" ({unread[0].path}: {unread[0].reason}); nothing was ingested"
            if unread
            else f"{root}: its {fmt} annotations name no images; nothing was ingested"
        )
    dataset_id = dataset_rows.next_id(store)
    samples_table, labels_table, categories = _tables(cols, sizes, keep, listing, dataset_id)
    # Stored in sample order: reading one sample's labels then skips most of the table.
    labels_table = labels_table.sort_by("sample_id")
    ctx.check_cancelled()

    ctx.phase("writing to the store", total=samples_table.num_rows)
    existing = check_can_create(store, name, replace)
    report = _report(cols.skipped)
    if cols.size_mismatches:
        report["size_mismatch_count"] = len(cols.size_mismatches)
        report["size_mismatches"] = [
            {
                "path": cols.samples[i].path,
                "annotated": list(annotated),
                "file": list(sizes[i] or ()),
            }
            for i, annotated in list(cols.size_mismatches.items())[:REPORT_LIMIT]
        ]
    if cols.category_ids:
        # The format's own class ids (COCO category ids, YOLO class indices), to read
        # predictions that give classes by id.
        key = "coco_categories" if fmt == "coco" else "class_indices"
        report[key] = {str(k): v for k, v in sorted(cols.category_ids.items())}
    if cols.source_info is not None:  # said again by a COCO export
        report["coco_info"] = cols.source_info.info
        report["coco_licenses"] = cols.source_info.licenses
    dataset_rows.write_dataset(
        store,
        {
            "id": dataset_id,
            "name": name,
            "root": source.uri,
            "format": fmt,
            "num_samples": samples_table.num_rows,
            "num_labels": labels_table.num_rows,
            "categories": categories,
            "report": report,
        },
        [samples_table.slice(i, _BATCH) for i in range(0, samples_table.num_rows, _BATCH)],
        [labels_table.slice(i, _BATCH) for i in range(0, labels_table.num_rows, _BATCH)],
        replace_id=existing["id"] if existing else None,
    )
    ctx.progress(samples_table.num_rows, message=f"ingested {samples_table.num_rows} samples")
    return {
        "dataset": name,
        "format": fmt,
        "samples": samples_table.num_rows,
        "labels": labels_table.num_rows,
        **report,
    }


def _gather(source: Source, listing: Listing, fmt: str, ctx: JobContext) -> _Columns:
    cols = _Columns()
    seen = 0
    for record in read_dataset(source, listing, fmt):
        seen += 1
        if seen % 20_000 == 0:
            ctx.progress(seen, message=f"reading {fmt} annotations: {seen:,} records")
            ctx.check_cancelled()
        if isinstance(record, LabelColumns):
            keys = cols.index
            rows = np.fromiter((keys.get(k, -1) for k in record.sample_keys), np.int64, len(record))
            unknown = int((rows < 0).sum())
            if unknown:
                cols.skipped.append(Skipped(fmt, f"{unknown} labels for unknown images"))
            cols.batches.append((rows, record))
            seen += len(record) - 1
        elif isinstance(record, LabelRecord):
            row = cols.index.get(record.sample_key)
            if row is None:
                cols.skipped.append(Skipped(str(record.sample_key), "label for an unknown image"))
            else:
                cols.labels.append((row, record))
        elif isinstance(record, SampleRecord):
            if record.key in cols.index:
                cols.skipped.append(Skipped(record.path, "listed twice; the first entry is kept"))
                continue
            cols.index[record.key] = len(cols.samples)
            cols.samples.append(record)
        elif isinstance(record, CategoryTable):
            cols.category_ids.update(record.names)
        elif isinstance(record, SourceInfo):
            cols.source_info = cols.source_info or record
        else:
            cols.skipped.append(record)
    return cols


def _probe_images(
    source: Source, listing: Listing, cols: _Columns, ctx: JobContext
) -> list[tuple[int, int] | None]:
    """Each sample's (width, height) from its header, or None when the file is missing or bad.

    Every image is checked (in parallel): it catches empty, non-image and truncated files at
    ingest rather than when someone looks at them. Where the annotations give the size, a look at
    the signature and the JPEG end marker suffices; otherwise the header is parsed for the size.
    """
    total = len(cols.samples)
    ctx.phase("checking image files", total=total)

    def check(i: int) -> tuple[int, int] | Skipped:
        sample = cols.samples[i]
        size = listing.sizes.get(sample.path)
        if size is None:
            return Skipped(sample.path, "image file is missing (referenced by the annotations)")
        try:
            with source.open_listed(sample.path) as f:
                if sample.width and sample.height and (found := header_size(f, size)):
                    return found
                f.seek(0)
                info = probe(f, sample.path, size)
        except (FormatError, SourceError, NotFound) as e:
            return Skipped(sample.path, e.message.removeprefix(f"{sample.path}: "))
        return (info.width, info.height)

    result: list[tuple[int, int] | None] = [None] * total
    # Local reads take microseconds: a plain loop (threads would only fight over the GIL, and a
    # future per file costs more than the read). Object stores take milliseconds per request,
    # so many requests go out at once.
    with ThreadPoolExecutor(_PROBE_THREADS) as pool:
        outcomes = (
            map(check, range(total))
            if source.is_local
            else pool.map(check, range(total), chunksize=256)
        )
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, Skipped):
                cols.skipped.append(outcome)
            else:
                result[i] = _checked_size(cols, i, outcome)
            if i % 2000 == 0:
                ctx.progress(i)
                ctx.check_cancelled()
    ctx.progress(total)
    return result


def _checked_size(cols: _Columns, i: int, found: tuple[int, int]) -> tuple[int, int]:
    """The sample's size: the annotation's where the file agrees (either way round: EXIF may
    turn it), else the file's, and the disagreement is recorded."""
    sample = cols.samples[i]
    if not (sample.width and sample.height):
        return found
    annotated = (sample.width, sample.height)
    if annotated in (found, found[::-1]):
        return annotated
    cols.size_mismatches[i] = annotated
    return found


@dataclass
class _Labels:
    """Every label as columns, one entry per label, in reading order."""

    rows: np.ndarray  # the sample's row in _Columns.samples (-1: unknown image)
    classes: np.ndarray  # object array of str
    boxes: np.ndarray  # (n, 4) float64 x, y, w, h; NaN for image-level labels
    scores: np.ndarray  # float64, NaN where none
    iscrowd: np.ndarray  # bool
    normalized: np.ndarray  # bool: boxes in fractions of the image size
    flags: dict[int, list[str]]  # sparse: most labels have none


def _label_columns(cols: _Columns) -> _Labels:
    singles = [label for _, label in cols.labels]
    rows = [np.array([i for i, _ in cols.labels], np.int64)]
    classes = [np.array([label.category for label in singles], object)]
    boxes = [
        np.array([label.bbox or (np.nan,) * 4 for label in singles], np.float64).reshape(-1, 4)
    ]
    scores = [np.array([label.score for label in singles], np.float64).reshape(-1)]
    iscrowd = [np.array([label.iscrowd for label in singles], bool).reshape(-1)]
    normalized = [np.array([label.normalized for label in singles], bool).reshape(-1)]
    flags = {i: list(label.flags) for i, label in enumerate(singles) if label.flags}
    for batch_rows, batch in cols.batches:
        rows.append(batch_rows)
        classes.append(np.array(batch.categories, object))
        boxes.append(np.column_stack([batch.x, batch.y, batch.w, batch.h]).astype(np.float64))
        scores.append(
            np.array(batch.scores, np.float64) if batch.scores else np.full(len(batch), np.nan)
        )
        iscrowd.append(np.array(batch.iscrowd, bool))
        normalized.append(np.zeros(len(batch), bool))
    return _Labels(
        rows=np.concatenate(rows),
        classes=np.concatenate(classes),
        boxes=np.concatenate(boxes),
        scores=np.concatenate(scores),
        iscrowd=np.concatenate(iscrowd),
        normalized=np.concatenate(normalized),
        flags=flags,
    )


def _tables(
    cols: _Columns,
    sizes: list[tuple[int, int] | None],
    keep: list[int],
    listing: Listing,
    dataset_id: int,
) -> tuple[pa.Table, pa.Table, list[str]]:
    n_all = len(cols.samples)
    new_id = np.full(n_all + 1, -1, np.int64)  # the last slot maps "unknown image" (-1)
    new_id[keep] = np.arange(len(keep))
    width = np.array([s[0] if s else 0 for s in sizes] + [0], np.float64)
    height = np.array([s[1] if s else 0 for s in sizes] + [0], np.float64)

    found = _label_columns(cols)
    sample_ids = new_id[found.rows]
    take = np.flatnonzero(sample_ids >= 0)
    sample_ids = sample_ids[take]
    x, y, w, h = found.boxes[take].T
    iw, ih = width[found.rows[take]], height[found.rows[take]]
    normalized = found.normalized[take]
    x, w = np.where(normalized, x * iw, x), np.where(normalized, w * iw, w)
    y, h = np.where(normalized, y * ih, y), np.where(normalized, h * ih, h)
    with np.errstate(invalid="ignore"):
        outside = (x < -0.5) | (y < -0.5) | (x + w > iw + 0.5) | (y + h > ih + 0.5)
    label_flags = (
        {new: found.flags[old] for new, old in enumerate(take.tolist()) if old in found.flags}
        if found.flags
        else {}
    )
    classes = found.classes[take]
    n = len(take)
    labels = pa.table(
        {
            "dataset_id": pa.array(np.full(n, dataset_id, np.int32)),
            "sample_id": pa.array(sample_ids.astype(np.int32)),
            "class": pa.array(classes, pa.string()),
            **{
                k: pa.array(v, pa.float64(), from_pandas=True)
                for k, v in (("x", x), ("y", y), ("w", w), ("h", h))
            },
            "score": pa.array(found.scores[take], pa.float64(), from_pandas=True),
            "kind": pa.array(["gt"] * n, pa.string()),
            "source": pa.array(["ground_truth"] * n, pa.string()),
            "iscrowd": pa.array(found.iscrowd[take], pa.bool_()),
            "flags": _flag_column(outside, "outside_image", label_flags),
        }
    )

    # Per sample: its distinct classes (sorted) and its number of labels.
    pairs = (
        pa.table({"sid": labels["sample_id"], "class": labels["class"]})
        .group_by(["sid", "class"])
        .aggregate([])
        .sort_by([("sid", "ascending"), ("class", "ascending")])
    )
    offsets = np.zeros(len(keep) + 1, np.int32)
    np.cumsum(np.bincount(pairs["sid"].to_numpy(), minlength=len(keep)), out=offsets[1:])
    sample_classes = pa.ListArray.from_arrays(pa.array(offsets), pairs["class"].combine_chunks())
    counts = np.bincount(sample_ids, minlength=len(keep)).astype(np.int32)
    has_outside = np.zeros(len(keep), bool)
    has_outside[sample_ids[outside]] = True

    kept_samples = [cols.samples[i] for i in keep]
    samples = pa.table(
        {
            "dataset_id": pa.array(np.full(len(keep), dataset_id, np.int32)),
            "id": pa.array(np.arange(len(keep), dtype=np.int32)),
            "path": [s.path for s in kept_samples],
            "filename": [s.path.rsplit("/", 1)[-1] for s in kept_samples],
            "width": pa.array(width[keep].astype(np.int32)),
            "height": pa.array(height[keep].astype(np.int32)),
            "size_bytes": pa.array([listing.sizes.get(s.path) for s in kept_samples], pa.int64()),
            "split": pa.array([s.split for s in kept_samples], pa.string()),
            "classes": sample_classes,
            "tags": _flag_column(np.zeros(len(keep), bool), ""),
            "flags": _flag_column(
                has_outside,
                "box_outside_image",
                {int(new_id[i]): ["size_mismatch"] for i in cols.size_mismatches if new_id[i] >= 0},
            ),
            "num_labels": pa.array(counts),
            "metadata": pa.array(
                [_encode_json(s.metadata) if s.metadata else None for s in kept_samples],
                pa.string(),
            ),
        }
    )
    categories = sorted(set(classes.tolist()))
    return samples, labels, categories


_json_encoder = msgspec.json.Encoder()


def _encode_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def _flag_column(
    marked: np.ndarray, flag: str, extra: dict[int, list[str]] | None = None
) -> pa.Array:
    """A list<string> column: each row's `extra` flags (sparse), then `flag` where `marked`.
    Built from offsets, because a Python list per row costs seconds at millions of rows."""
    if not extra:
        counts = marked.astype(np.int64)
        values: list[str] = [flag] * int(counts.sum())
    else:
        counts = np.zeros(len(marked), np.int64)
        values = []
        rows = np.union1d(np.flatnonzero(marked), np.fromiter(extra, np.int64, len(extra)))
        for row in rows.tolist():
            names = [*extra.get(row, ()), *((flag,) if marked[row] else ())]
            counts[row] = len(names)
            values.extend(names)
    offsets = np.zeros(len(marked) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.string()))


def _report(skipped: list[Skipped]) -> dict[str, Any]:
    return {
        "skipped_count": len(skipped),
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped[:REPORT_LIMIT]],
    }
