"""What the format writers get: samples with their file name in the export, split, size and
labels, grouped by split; and the checks every format shares."""

from __future__ import annotations

import os
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
    box_count: int = 0
    # The boxes in the format's own text, made by the store, for writers with a `BOX_SQL`
    # (YOLO, VOC): formatting a million boxes in Python was most of their export's time.
    text: str = ""

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.name)[0]


class TextFiles:
    """Many small files written quickly: each folder opened once, each file written with one
    system call (a Path and a text-mode file object per label file cost more than the disk)."""

    _FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    _BY_FOLDER = os.open in os.supports_dir_fd

    def __init__(self, root: str):
        self.root = root
        self._folders: dict[str, int | None] = {}

    def write(self, folder: str, name: str, text: str) -> None:
        if folder not in self._folders:
            path = os.path.join(self.root, folder)
            os.makedirs(path, exist_ok=True)
            self._folders[folder] = os.open(path, os.O_RDONLY) if self._BY_FOLDER else None
        at = self._folders[folder]
        if at is None:
            fd = os.open(os.path.join(self.root, folder, name), self._FLAGS, 0o644)
        else:
            fd = os.open(name, self._FLAGS, 0o644, dir_fd=at)
        try:
            data = memoryview(text.encode("utf-8"))
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)

    def close(self) -> None:
        for at in self._folders.values():
            if at is not None:
                os.close(at)
        self._folders.clear()


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
