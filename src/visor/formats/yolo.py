"""YOLO: `data.yaml` (`names` as a list or a dict) with `images/<split>` and `labels/<split>`.

Boxes are yielded normalised (`LabelRecord.normalized`); ingestion turns them into pixels with
the size read from each image's header.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from visor.errors import FormatError
from visor.formats.records import (
    CategoryTable,
    LabelRecord,
    Listing,
    Record,
    SampleRecord,
    Skipped,
    split_alias,
    split_from_path,
)
from visor.sources import Source

YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")


def config_file(listing: Listing) -> str | None:
    for name in YAML_NAMES:
        if name in listing.sizes:
            return name
    return None


def read(source: Source, listing: Listing) -> Iterator[Record]:
    """Samples and boxes for every image that sits in an `images` folder."""
    config = config_file(listing)
    if config is None:
        raise FormatError(f"{source.uri}: no data.yaml found (YOLO datasets need one)")
    data = _config(source, config)
    names = _class_names(data, config)
    yield CategoryTable(dict(enumerate(names)))
    images = sorted(i for i in listing.images() if "images" in i.split("/"))
    splits = _splits(data, config, images)
    for image in images:
        parts = image.split("/")
        yield SampleRecord(key=image, path=image, split=splits(image))
        label_file = _label_path(parts)
        if label_file in listing.sizes:
            yield from _read_labels(source, label_file, image, names)


def class_names_file(source: Source, config: str) -> list[str]:
    """Class names by index from a data.yaml (or any YAML with `names`), or a text file with
    one name a line."""
    if not config.endswith((".yaml", ".yml")):
        text = source.read_bytes(config).decode("utf-8", errors="replace")
        return [line.strip() for line in text.splitlines() if line.strip()]
    return _class_names(_config(source, config), config)


def _config(source: Source, config: str) -> Any:
    try:
        return yaml.safe_load(source.read_bytes(config))
    except yaml.YAMLError as e:
        raise FormatError(f"{config}: not valid YAML ({e})") from None
    except RecursionError:
        raise FormatError(f"{config}: YAML nested too deeply to read") from None


def _class_names(data: Any, config: str) -> list[str]:
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict):
        try:
            indexed = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise FormatError(f"{config}: 'names' keys must be class indices") from None
        return [indexed.get(i, str(i)) for i in range(max(indexed, default=-1) + 1)]
    raise FormatError(f"{config}: 'names' must be a list or a mapping of class names")


def _splits(data: Any, config: str, images: list[str]) -> Callable[[str], str | None]:
    """`image -> split`: the folder beside `images` (`train/images/`, `images/val/`) when it
    is named as a split (`valid`, `trainval`); else the data.yaml key (`train`/`val`/`test`)
    whose folder holds it (Roboflow's `../train/images` is matched by its tail); else, when
    another folder beside `images` is named as a split, the folder's own name (`holdout`)."""
    folders = {posixpath.dirname(i) for i in images}
    named: dict[str, str] = {}
    if isinstance(data, dict):
        for key in ("train", "val", "test"):
            entries = data.get(key)
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, str) and (folder := _dataset_folder(entry, config, folders)):
                    named.setdefault(folder, key)
    beside = {i: _folder_beside_images(i) for i in images}
    shaped = any(split_alias(f) for f in beside.values() if f)

    def split(image: str) -> str | None:
        near = beside[image]
        if near and split_alias(near):  # a folder named as a split says which (trainval)
            return split_alias(near)
        for folder in sorted(named, key=len, reverse=True):
            if image.startswith(folder + "/"):
                return named[folder]
        if near and shaped:
            return split_alias(near) or near
        return split_from_path(image)

    return split


def _dataset_folder(entry: str, config: str, folders: set[str]) -> str | None:
    """The dataset folder a data.yaml path points at: relative to data.yaml, else its longest
    tail that is a folder of images here (`../train/images` -> `train/images`)."""
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(config), entry.strip()))
    parts = [p for p in joined.split("/") if p not in ("", ".", "..")]
    for start in range(len(parts)):
        tail = "/".join(parts[start:])
        if tail in ("images", "labels"):
            break
        if any(f == tail or f.startswith(tail + "/") for f in folders):
            return tail
    return None


def _folder_beside_images(image: str) -> str | None:
    """`x` in `x/images/...` or `images/x/<file>`."""
    parts = image.split("/")
    i = parts.index("images")
    if i > 0:
        return parts[i - 1]
    return parts[i + 1] if len(parts) > i + 2 else None


def _label_path(parts: list[str]) -> str:
    i = len(parts) - 1 - parts[::-1].index("images")
    stem = posixpath.splitext(parts[-1])[0]
    return "/".join([*parts[:i], "labels", *parts[i + 1 : -1], stem + ".txt"])


def _read_labels(source: Source, label_file: str, image: str, names: list[str]) -> Iterator[Record]:
    try:
        text = source.read_bytes(label_file).decode("utf-8")
    except UnicodeDecodeError:
        yield Skipped(label_file, "not UTF-8 text")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parsed = _parse_line(line, names)
        if isinstance(parsed, str):
            yield Skipped(label_file, f"line {number}: {parsed}")
        else:
            category, box, score = parsed
            yield LabelRecord(image, category, box, score=score, normalized=True)


def _parse_line(
    line: str, names: list[str]
) -> tuple[str, tuple[float, float, float, float], float | None] | str:
    fields = line.split()
    if len(fields) not in (5, 6) and (len(fields) < 7 or len(fields) % 2 == 0):
        return f"expected 5 columns (class cx cy w h), got {len(fields)}"
    try:
        values = [float(v) for v in fields[1:]]
        index = int(fields[0])
    except ValueError:
        return f"not a number in {line.strip()!r}"
    if not 0 <= index < len(names):
        return f"class index {index} is not in data.yaml names (0..{len(names) - 1})"
    score = None
    if len(fields) == 6:  # class cx cy w h confidence: a prediction
        score = values.pop()
    coords = values
    if not all(0 <= v <= 1 for v in coords):  # NaN fails this too
        return "values must be normalised to [0, 1]"
    if len(coords) == 4:
        cx, cy, w, h = coords
        if w <= 0 or h <= 0:
            return "box has zero or negative size"
        return names[index], (cx - w / 2, cy - h / 2, w, h), score
    xs, ys = coords[0::2], coords[1::2]  # a segmentation polygon: keep its bounding box
    x0, y0 = min(xs), min(ys)
    w, h = max(xs) - x0, max(ys) - y0
    if w <= 0 or h <= 0:
        return "polygon has zero area"
    return names[index], (x0, y0, w, h), score
