"""The plain records every format reader yields; they know nothing of the store."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})

# The split names people give folders and list files, case-insensitive, and what they mean.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "trainval": "trainval",
}


@dataclass(slots=True)
class SampleRecord:
    """One image. `key` is the format's own id for it, used by labels to point at it."""

    key: Hashable
    path: str  # relative to the dataset root
    split: str | None = None
    width: int | None = None
    height: int | None = None
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class LabelRecord:
    """A box (x, y, w, h; pixels, or fractions of the image when `normalized`) or, with no box,
    an image-level class."""

    sample_key: Hashable
    category: str
    bbox: tuple[float, float, float, float] | None = None
    score: float | None = None
    iscrowd: bool = False
    normalized: bool = False
    flags: tuple[str, ...] = ()


@dataclass(slots=True)
class LabelColumns:
    """Many boxes at once, column by column: what readers of large files yield (one Python
    object per box would dominate ingest time at millions of boxes)."""

    sample_keys: list[Hashable]
    categories: list[str]
    x: list[float]
    y: list[float]
    w: list[float]
    h: list[float]
    iscrowd: list[bool]
    scores: list[float | None] | None = None

    def __len__(self) -> int:
        return len(self.sample_keys)


@dataclass(slots=True)
class Skipped:
    """A record that could not be read: the file it came from and why."""

    path: str
    reason: str


@dataclass(slots=True)
class CategoryTable:
    """A format's own category ids and their names (COCO), kept to read predictions later."""

    names: dict[int, str]


@dataclass(slots=True)
class SourceInfo:
    """What a format says of the dataset itself (COCO's `info` and `licenses`), kept so an
    export can say it again."""

    info: dict[str, Any] | None
    licenses: list[Any] | None


Record = SampleRecord | LabelRecord | LabelColumns | Skipped | CategoryTable | SourceInfo


@dataclass(slots=True)
class Listing:
    """The dataset's files (relative path -> size), listed once and shared by the readers."""

    sizes: dict[str, int]
    problems: list[Skipped] = field(default_factory=list)

    def images(self) -> Iterator[str]:
        return (p for p in self.sizes if is_image(p))


# Coordinates beyond this many pixels are not a box in any image Visor reads (200 MP at most).
MAX_COORDINATE = 1e9


def box_problem(x: float, y: float, w: float, h: float) -> str | None:
    """Why (x, y, w, h) in pixels is not a usable box, or None when it is."""
    values = (x, y, w, h)
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values):
        return f"box values must be finite numbers within ±{MAX_COORDINATE:.0e}, got {list(values)}"
    if w <= 0 or h <= 0:
        return f"box has zero or negative size {list(values)}"
    return None


def usable_boxes(boxes: np.ndarray) -> np.ndarray:
    """`box_problem` of each row of `boxes` ((n, 4) x, y, w, h in pixels) as arrays: True
    where the row is a usable box."""
    return (
        np.isfinite(boxes).all(axis=1)
        & (np.abs(boxes) <= MAX_COORDINATE).all(axis=1)
        & (boxes[:, 2] > 0)
        & (boxes[:, 3] > 0)
    )


def image_side(value: Any) -> int | None:
    """An annotation's image width or height as a positive whole number of pixels (from a
    number or its text), or None when it isn't one (the file's header then gives it)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(number) if 1 <= number <= MAX_COORDINATE else None


def is_image(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def split_alias(name: str) -> str | None:
    """`train`, `val`, `test` or `trainval` when `name` is one of their usual names."""
    return SPLIT_ALIASES.get(name.lower())


def split_from_path(path: str) -> str | None:
    """The split a folder in `path` names (`train/`, `validate/`, `Testing/` ...), if any."""
    for part in path.split("/")[:-1]:
        if split := split_alias(part):
            return split
    return None


def split_from_name(name: str) -> str | None:
    """The split in a file or folder name like `instances_train2017`, `val.txt` or `valid`:
    a word of the name (between separators and digits) that is a split's name."""
    for word in re.split(r"[^a-zA-Z]+", name):
        if split := split_alias(word):
            return split
    return None
