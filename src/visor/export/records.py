"""What the format writers get: samples with their file name in the export, split, size and
labels, grouped by split; and the checks every format shares."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from visor.errors import InvalidInput


class ExportBox(NamedTuple):  # a tuple: a million of them are made quickly
    cls: str
    x: float
    y: float
    w: float
    h: float
    score: float | None = None


@dataclass
class ExportSample:
    id: int
    path: str  # in the source dataset
    name: str  # file name in the export (unique within its split; within all for VOC)
    split: str | None
    width: int | None
    height: int | None
    boxes: list[ExportBox] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # image-level labels

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.name)[0]


_BAD_NAME = re.compile(r"[\x00-\x1f/\\]")


def check_class_names(classes: Iterable[str], fmt: str) -> None:
    """Class names become file or folder names (classification) or lines (YOLO's names):
    a slash, backslash or control character (newline) has no place there."""
    for name in classes:
        if not name.strip() or _BAD_NAME.search(name) or name in (".", ".."):
            raise InvalidInput(
                f"class name {name!r} can't be written in {fmt}: it is empty or holds a slash, "
                "backslash or control character (rename the class first)"
            )


def split_folder(split: str | None) -> str:
    """The folder (and file-name part) of a split; samples without one go to `all`."""
    return split or "all"


def unique_names(paths: Iterable[str], *, by_stem: bool = False) -> dict[str, str]:
    """Export file names for source paths: the base name, or where two share one (`by_stem`:
    share a stem, where label files are named by it: `a.png` and `a.tif` both want `a.txt`),
    the path with its folders joined by `__`, then a number."""
    chosen: dict[str, str] = {}
    taken: set[str] = set()  # names or stems, case-folded (file systems that ignore case)
    for path in paths:
        name = posixpath.basename(path)
        base, ext = posixpath.splitext(name)
        if (base if by_stem else name).casefold() in taken:
            base = posixpath.splitext(path.strip("/").replace("/", "__"))[0]
            first, n = base, 1
            while (base if by_stem else base + ext).casefold() in taken:
                n += 1
                base = f"{first}-{n}"
        taken.add((base if by_stem else base + ext).casefold())
        chosen[path] = base + ext
    return chosen
