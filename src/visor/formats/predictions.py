"""Prediction files other than COCO results: YOLO `.txt` files (one per image, `class cx cy w h
score` normalised, as ultralytics writes with `save_txt=True, save_conf=True`) and tables
(Parquet or CSV with `file_name, class, x, y, w, h, score` in pixels).

Both give columns: the image each box is for (a path as the file names it), the class (a name,
or an index for YOLO), the box and the score; problems are `Skipped` with file and line. Which
sample an image is, and what a class index means, is the caller's business.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from visor.errors import FormatError
from visor.formats.records import Skipped
from visor.sources import Source

TABLE_COLUMNS = ("file_name", "class", "x", "y", "w", "h", "score")


@dataclass
class PredictionColumns:
    """Predicted boxes as columns; `normalized` boxes are fractions of the image's size."""

    image: list[str] = field(default_factory=list)
    cls: list[str] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # file and line, for messages
    normalized: bool = False
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0

    def __len__(self) -> int:
        return len(self.image)


def read_yolo(source: Source) -> PredictionColumns:
    """Every `.txt` under the source's root; `image` is the file's path without `.txt`, `cls`
    the class index as written."""
    cols = PredictionColumns(normalized=True)
    for entry in source.walk():
        if not entry.path.endswith(".txt"):
            continue
        cols.files += 1
        try:
            text = source.read_bytes(entry.path).decode("utf-8")
        except UnicodeDecodeError:
            cols.skipped.append(Skipped(entry.path, "not UTF-8 text"))
            continue
        image = entry.path.removesuffix(".txt")
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{entry.path} line {number}"
            if len(fields) != 6:
                cols.skipped.append(
                    Skipped(where, f"expected 6 columns (class cx cy w h score), got {len(fields)}")
                )
                continue
            try:
                cx, cy, w, h, score = (float(v) for v in fields[1:])
            except ValueError:
                cols.skipped.append(Skipped(where, f"not a number in {line.strip()!r}"))
                continue
            cols.image.append(image)
            cols.cls.append(fields[0])
            cols.boxes.append((cx - w / 2, cy - h / 2, w, h))
            cols.score.append(score)
            cols.where.append(where)
    return cols


def read_table(source: Source, file: str) -> PredictionColumns:
    """A Parquet or CSV table with the columns `file_name, class, x, y, w, h, score`."""
    try:
        if file.endswith(".parquet"):
            import pyarrow.parquet as pq

            with source.open(file) as f:
                table = pq.read_table(f)
        else:
            import pyarrow.csv as pcsv

            with source.open(file) as f:
                table = pcsv.read_csv(f)
    except (pa.ArrowInvalid, OSError) as e:
        raise FormatError(f"{file}: not a readable table ({e})") from None
    missing = [c for c in TABLE_COLUMNS if c not in table.column_names]
    if missing:
        raise FormatError(
            f"{file}: missing column(s) {', '.join(missing)} "
            f"(a predictions table has {', '.join(TABLE_COLUMNS)})"
        )
    cols = PredictionColumns(files=1)
    try:
        numbers = {
            c: pc.cast(table[c], pa.float64()).to_numpy(zero_copy_only=False)
            for c in ("x", "y", "w", "h", "score")
        }
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise FormatError(f"{file}: columns x, y, w, h and score must be numbers ({e})") from None
    names = table["file_name"].to_pylist()
    classes = table["class"].to_pylist()
    boxes = np.stack([numbers[c] for c in ("x", "y", "w", "h")], axis=1)
    for i, (name, cls) in enumerate(zip(names, classes, strict=True)):
        if name is None or cls is None:
            cols.skipped.append(Skipped(f"{file} row {i + 1}", "file_name or class is empty"))
            continue
        cols.image.append(posixpath.normpath(str(name)).lstrip("./"))
        cols.cls.append(str(cls))
        cols.boxes.append(tuple(boxes[i].tolist()))
        cols.score.append(float(numbers["score"][i]))
        cols.where.append(f"{file} row {i + 1}")
    return cols
