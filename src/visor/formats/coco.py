"""COCO detection (`instances*.json`, `_annotations.coco.json`) and COCO results files.

A file up to `IN_MEMORY_LIMIT` is parsed whole in one pass (msgspec, ~5x faster than three
streaming passes); a larger one is streamed (ijson), one section at a time, so its size is not
bounded by memory: only the category table and one record at a time are held.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import ijson
import msgspec
import numpy as np

from visor.errors import FormatError
from visor.formats.records import (
    MAX_COORDINATE,
    CategoryTable,
    LabelColumns,
    LabelRecord,
    Listing,
    Record,
    SampleRecord,
    Skipped,
    SourceInfo,
    box_problem,
    image_side,
    split_from_name,
    usable_boxes,
)
from visor.sources import Source

_IMAGE_KEYS = {"id", "file_name", "width", "height"}
# Up to this size a file is parsed whole (its objects take ~4x its size in memory); above it,
# it is streamed, and a syntax error is reported by byte offset rather than by line/column.
IN_MEMORY_LIMIT = 256 * 1024 * 1024

Sections = Callable[[str | None], Iterator[Any]]


def annotation_files(listing: Listing) -> list[str]:
    """The COCO annotation files in a dataset, in a stable order."""
    found = []
    for path in listing.sizes:
        name = posixpath.basename(path)
        if name == "_annotations.coco.json" or (
            name.startswith("instances") and name.endswith(".json")
        ):
            found.append(path)
    return sorted(found)


def read(source: Source, listing: Listing) -> Iterator[Record]:
    """Samples and boxes from every COCO annotation file under the root."""
    files = annotation_files(listing)
    if not files:
        raise FormatError(f"{source.uri}: no COCO annotation file (instances*.json) found")
    for file in files:
        yield from _read_file(source, listing, file)


def _read_file(source: Source, listing: Listing, file: str) -> Iterator[Record]:
    split = split_from_name(
        posixpath.basename(posixpath.dirname(file))
        if file.endswith("_annotations.coco.json")
        else posixpath.basename(file)
    )
    items = _sections(source, file)
    categories: dict[Any, str] = {}
    for category in items("categories"):
        if (
            not isinstance(category, dict)
            or _id(category.get("id")) is None
            or "name" not in category
        ):
            yield Skipped(file, f"category without id or name: {_short(category)}")
            continue
        categories[category["id"]] = str(category["name"])
    yield CategoryTable({int(k): v for k, v in categories.items() if isinstance(k, int)})
    info = next(items("info"), None)
    licenses = list(items("licenses"))
    if isinstance(info, dict) or licenses:
        yield SourceInfo(info if isinstance(info, dict) else None, licenses or None)
    prefix: str | None = None
    images: set[Any] = set()
    for image in items("images"):
        file_name = image.get("file_name") if isinstance(image, dict) else None
        if not isinstance(file_name, str) or _id(image.get("id")) is None:
            yield Skipped(file, f"image entry without id or file_name: {_short(image)}")
            continue
        if prefix is None:
            prefix = _image_prefix(listing, file, file_name)
        path = posixpath.normpath(posixpath.join(prefix, file_name)) if prefix else file_name
        images.add(image["id"])
        extra = {k: v for k, v in image.items() if k not in _IMAGE_KEYS}
        extra["coco_id"] = image["id"]
        yield SampleRecord(
            key=(file, image["id"]),
            path=path,
            split=split,
            width=image_side(image.get("width")),
            height=image_side(image.get("height")),
            metadata=extra,
        )
    yield from _read_annotations(items("annotations"), file, categories, images)


_BATCH = 50_000


def _read_annotations(
    annotations: Iterator[Any], file: str, categories: dict[Any, str], images: set[Any]
) -> Iterator[LabelColumns | Skipped]:
    """Boxes in column batches; the checks are inlined because this loop runs per box."""
    batch = _empty_batch()
    for ann in annotations:
        if not isinstance(ann, dict):
            yield Skipped(file, f"annotation is not an object: {_short(ann)}")
            continue
        image_id = _id(ann.get("image_id"))
        category = categories.get(_id(ann.get("category_id")))
        bbox: Any = ann.get("bbox")
        try:
            ok = (
                image_id in images
                and category is not None
                and type(bbox) is list
                and len(bbox) == 4
                and -MAX_COORDINATE < bbox[0] < MAX_COORDINATE
                and -MAX_COORDINATE < bbox[1] < MAX_COORDINATE
                and 0 < bbox[2] < MAX_COORDINATE
                and 0 < bbox[3] < MAX_COORDINATE
            )
        except TypeError:  # a value that is not a number: the slow path says which
            ok = False
        if ok:
            batch.sample_keys.append((file, image_id))
            batch.categories.append(category)  # type: ignore[arg-type] # checked above
            batch.x.append(bbox[0])
            batch.y.append(bbox[1])
            batch.w.append(bbox[2])
            batch.h.append(bbox[3])
            batch.iscrowd.append(bool(ann.get("iscrowd", 0)))
            if len(batch) >= _BATCH:
                yield batch
                batch = _empty_batch()
            continue
        label = _annotation(ann, categories, images, file)
        if isinstance(label, str):
            yield Skipped(file, label)
    if len(batch):
        yield batch


def _empty_batch() -> LabelColumns:
    return LabelColumns([], [], [], [], [], [], [])


def _annotation(
    ann: dict[str, Any], categories: dict[Any, str], images: set[Any], file: str
) -> LabelRecord | str:
    ann_id = _short(ann.get("id", "?"))
    if _id(ann.get("image_id")) not in images:
        return f"annotation {ann_id}: unknown image_id {_short(ann.get('image_id'))}"
    category = categories.get(_id(ann.get("category_id")))
    if category is None:
        return f"annotation {ann_id}: unknown category_id {_short(ann.get('category_id'))}"
    bbox = _bbox(ann.get("bbox"))
    if isinstance(bbox, str):
        return f"annotation {ann_id}: {bbox}"
    score = ann.get("score")
    return LabelRecord(
        sample_key=(file, ann["image_id"]),
        category=category,
        bbox=bbox,
        score=float(score) if score is not None else None,
        iscrowd=bool(ann.get("iscrowd", 0)),
    )


def _bbox(value: Any) -> tuple[float, float, float, float] | str | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        return f"bbox must be [x, y, width, height], got {_short(value)}"
    if not all(isinstance(v, int | float) for v in value):
        return f"bbox values must be numbers, got {_short(value)}"
    try:
        x, y, w, h = (float(v) for v in value)
    except OverflowError:
        return f"bbox values too large, got {_short(value)}"
    return box_problem(x, y, w, h) or (x, y, w, h)


def read_results(
    source: Source,
    file: str,
    categories: dict[int, str],
    images: Mapping[Any, int | str],
    sections: Sections | None = None,
) -> Iterator[tuple[int, LabelRecord] | Skipped]:
    """Predictions from a COCO results file: `[{image_id, category_id, bbox, score}]`.

    `images` maps COCO image ids to sample ids (or to why an id has none: its entries are
    skipped with that reason), `categories` COCO category ids to names. `sections`: the file
    as `results_file` read it (read again when not given).
    """
    seen: set[Any] = set()
    for i, det in enumerate((sections or _sections(source, file))(None)):
        if not isinstance(det, dict):
            yield Skipped(file, f"entry {i}: expected an object, got {_short(det)}")
            continue
        sample_id = images.get(_id(det.get("image_id")))
        if sample_id is None or isinstance(sample_id, str):
            why = sample_id or f"unknown image_id {_short(det.get('image_id'))}"
            yield Skipped(file, f"entry {i}: {why}")
            continue
        given_id = _id(det.get("id"))
        if given_id is not None:
            if given_id in seen:
                yield Skipped(file, f"entry {i}: duplicate prediction id {_short(given_id)}")
                continue
            seen.add(given_id)
        score = det.get("score")
        if score is None:
            yield Skipped(file, f"entry {i}: prediction without score")
            continue
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            yield Skipped(file, f"entry {i}: score {_short(score)} is not a number in [0, 1]")
            continue
        label = _annotation({**det, "id": i}, categories, {det.get("image_id")}, file)
        if isinstance(label, str):
            yield Skipped(file, label)
        else:
            yield sample_id, label


class _Detection(msgspec.Struct, gc=False):  # no cycles: no GC tracking, a faster decode
    """One well-formed results entry, as msgspec decodes it (in C, checking every type)."""

    image_id: int | str
    category_id: int
    bbox: tuple[float, float, float, float]
    score: float
    id: int | str | None = None
    file_name: str | None = None


class ResultColumns(msgspec.Struct):
    """A results file's entries as columns: image ids and prediction ids as written, the
    rest as arrays; `file_names` when every entry names its image's file."""

    image_ids: list[int | str]
    category_ids: np.ndarray
    boxes: np.ndarray  # (n, 4) x, y, width, height
    scores: np.ndarray
    ids: list[int | str | None]  # the entries' own ids (None: none given)
    file_names: dict[int | str, str] | None


def result_columns(source: Source, file: str) -> ResultColumns | None:
    """The file's entries as columns when every one of them is well-formed and the file is
    small enough to read whole; None otherwise (`read_results` then reads it entry by entry
    and says why each irregular one is skipped)."""
    if source.size(file) > IN_MEMORY_LIMIT:
        return None
    with source.open(file) as f:
        data = f.read()
    try:
        found = msgspec.json.decode(data, type=list[_Detection])
    except (msgspec.DecodeError, RecursionError):  # a type, a missing field or bad syntax
        return None
    del data
    names: dict[int | str, str] = {}
    for d in found:
        if d.file_name:
            names.setdefault(d.image_id, d.file_name)
    return ResultColumns(
        image_ids=[d.image_id for d in found],
        category_ids=np.fromiter((d.category_id for d in found), np.int64, len(found)),
        boxes=np.array([d.bbox for d in found], dtype=np.float64).reshape(-1, 4),
        scores=np.fromiter((d.score for d in found), np.float64, len(found)),
        ids=[d.id for d in found],
        file_names=names if found and all(d.file_name for d in found) else None,
    )


class KeptResults(msgspec.Struct):
    """The entries of a results file that are kept, as columns, and those skipped."""

    sample_ids: np.ndarray
    classes: np.ndarray  # names (object)
    boxes: np.ndarray
    scores: np.ndarray
    skipped: list[Skipped]


def kept_results(
    columns: ResultColumns, file: str, categories: dict[int, str], images: Mapping[Any, int | str]
) -> KeptResults | None:
    """`read_results` as arrays: entries of unknown images skipped, in the same words; None
    when any other entry would be (a duplicate id, a score outside [0, 1], an unknown
    category, an unusable box), for `read_results` to say which and why."""
    found = [images.get(i) for i in columns.image_ids]
    keep = np.fromiter((s is not None and not isinstance(s, str) for s in found), bool, len(found))
    skipped = [
        Skipped(
            file, f"entry {i}: {found[i] or f'unknown image_id {_short(columns.image_ids[i])}'}"
        )
        for i in np.flatnonzero(~keep).tolist()
    ]
    ids = [i for i, kept in zip(columns.ids, keep.tolist(), strict=True) if kept and i is not None]
    if len(set(ids)) != len(ids):
        return None
    boxes, scores = columns.boxes[keep], columns.scores[keep]
    codes, which = np.unique(columns.category_ids[keep], return_inverse=True)
    usable = usable_boxes(boxes)
    in_range = (scores >= 0) & (scores <= 1)  # NaN is not
    if not (usable.all() and in_range.all() and all(int(c) in categories for c in codes)):
        return None
    names = np.array([categories[int(c)] for c in codes], dtype=object)
    sample_ids = np.asarray(found, dtype=object)[keep].astype(np.int64)
    return KeptResults(sample_ids, names[which.reshape(-1)], boxes, scores, skipped)


def results_file(source: Source, file: str) -> Sections:
    """A results file read once (parsed whole when small enough, else streamed each time it
    is asked), for `result_file_names` and `read_results` both."""
    return _sections(source, file)


def result_file_names(
    source: Source, file: str, sections: Sections | None = None
) -> dict[Any, str] | None:
    """image_id -> file_name of a results file whose every entry names its image's file (as
    ultralytics' `save_json` writes: image_id the file's stem); None if any entry does not."""
    found: dict[Any, str] = {}
    for det in (sections or _sections(source, file))(None):
        name = det.get("file_name") if isinstance(det, dict) else None
        if not isinstance(name, str) or not name:
            return None
        found.setdefault(_id(det.get("image_id")), name)
    return found or None


def _image_prefix(listing: Listing, file: str, file_name: str) -> str:
    """The folder that `file_name` is relative to: found by trying the usual COCO layouts."""
    ann_dir = posixpath.dirname(file)
    parent = posixpath.dirname(ann_dir)
    stem = posixpath.splitext(posixpath.basename(file))[0].removeprefix("instances_")
    candidates = [
        ann_dir,
        posixpath.join(parent, stem),
        stem,
        posixpath.join("images", stem),
        posixpath.join(parent, "images", stem),
        posixpath.join(parent, "images"),
        "images",
        parent,
        "",
    ]
    split = split_from_name(stem)
    if split:
        candidates += [posixpath.join("images", split), split]
    for candidate in candidates:
        if posixpath.normpath(posixpath.join(candidate, file_name)).lstrip("./") in listing.sizes:
            return candidate
    return ann_dir


_OBJECT_SECTIONS = ("info",)  # sections that are one object, not an array


def _sections(source: Source, file: str) -> Sections:
    """`items(key)`: the items of the file's top-level array `key` (None: the file's own array),
    from the whole parsed file when it is small enough, else streamed."""
    if source.size(file) > IN_MEMORY_LIMIT:
        with source.open(file) as f:
            first = f.read(4096).lstrip()[:1]
        top = {b"{": dict, b"[": list}.get(first, type(None))

        def streamed(key: str | None) -> Iterator[Any]:
            _check_top_level(file, top, key)
            if key in _OBJECT_SECTIONS:
                return _items(source, file, key)
            return _items(source, file, f"{key}.item" if key else "item")

        return streamed
    with source.open(file) as f:
        data = f.read()
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as e:
        del data
        raise FormatError(_syntax_error(source, file, e)) from None
    except RecursionError:
        raise FormatError(f"{file}: JSON nested too deeply to read") from None
    del data

    def items(key: str | None) -> Iterator[Any]:
        _check_top_level(file, type(document), key)
        found = document if key is None else document.get(key)
        if key in _OBJECT_SECTIONS:
            return iter([found]) if isinstance(found, dict) else iter(())
        return iter(found) if isinstance(found, list) else iter(())

    return items


def _check_top_level(file: str, top: type, key: str | None) -> None:
    """A COCO dataset is an object of sections; a results file, a list of detections."""
    wanted = list if key is None else dict
    if top is not wanted:
        what = "a COCO results list" if key is None else "a COCO object"
        names: dict[type, str] = {dict: "an object", list: "a list"}
        found = names.get(top, "not an object or a list")
        raise FormatError(f"{file}: not {what}: top level is {found}")


def _items(source: Source, file: str, prefix: str) -> Iterator[Any]:
    with source.open(file) as f:
        try:
            yield from ijson.items(f, prefix, use_float=True)
        except ijson.JSONError as e:
            raise FormatError(_syntax_error(source, file, e)) from None


def _syntax_error(source: Source, file: str, error: Exception) -> str:
    if source.size(file) <= IN_MEMORY_LIMIT:
        with source.open(file) as f:
            text = _decode(f, file)
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            return f"{file}: JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}"
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{file}: JSON syntax error: {first_line}"


def _decode(f: IO[bytes], file: str) -> str:
    try:
        return f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{file}: not UTF-8 text (byte {e.start})") from None


def _id(value: Any) -> int | str | None:
    """An id as COCO files write them (a number or a string); None for anything else."""
    return value if isinstance(value, int | str) else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
