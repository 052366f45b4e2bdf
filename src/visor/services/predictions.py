"""Importing a model's predictions as a named source: COCO results JSON, YOLO `.txt` files or a
table (Parquet/CSV). Every box is checked (image known, class known, finite positive size,
score in [0, 1]) and problems are counted and listed; the source is replaced in one
transaction, so a failed import leaves the previous one as it was."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from visor.errors import Conflict, InvalidInput, NotFound, SourceError
from visor.formats.coco import (
    kept_results,
    read_results,
    result_columns,
    result_file_names,
    results_file,
)
from visor.formats.predictions import PredictionColumns, read_table, read_yolo
from visor.formats.records import Skipped, box_problem
from visor.formats.yolo import class_names_file
from visor.services.ingest import NAME_PATTERN, REPORT_LIMIT
from visor.sources import Source
from visor.store import Store
from visor.store import samples as sample_rows

FORMATS = ("coco", "yolo", "table")


def detect_format(path: str) -> str:
    if os.path.isdir(path):
        return "yolo"
    if path.endswith((".parquet", ".csv")):
        return "table"
    if path.endswith(".json"):
        return "coco"
    raise InvalidInput(
        f"{path}: say which format with --format (coco: a results .json, yolo: a folder of "
        ".txt files, table: a .parquet or .csv)"
    )


def sources(store: Store, dataset_id: int) -> dict[str, int]:
    """Prediction sources of a dataset and their number of boxes."""
    return sample_rows.prediction_sources(store, dataset_id)


def import_predictions(
    store: Store,
    dataset: dict[str, Any],
    path: str,
    source_name: str,
    *,
    fmt: str | None = None,
    replace: bool = False,
    names: str | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """Read predictions from `path` and store them as `source_name`; returns a report with
    the number imported and every skipped box (counted; the first ones listed). `split`:
    COCO results only, the split whose annotation file's image ids they use (needed where
    each split's file numbers its images from the same start, as Roboflow's exports do)."""
    if not source_name or not NAME_PATTERN.match(source_name):
        raise InvalidInput(f"source name {source_name!r}: use letters, digits, '_', '-' or '.'")
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file or folder")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r}: use {', '.join(FORMATS)}")
    if not replace and source_name in sources(store, dataset["id"]):
        raise Conflict(
            f"dataset {dataset['name']!r} already has predictions from {source_name!r}: "
            "pass --replace (replace=True) to replace them"
        )
    if split is not None and fmt != "coco":
        raise InvalidInput(
            f"split {split!r}: only COCO results need one (their image ids are those of one "
            "annotation file); YOLO files and tables name their images by path"
        )
    if fmt == "coco":
        table, skipped = _from_coco(store, dataset, path, split, names)
    else:
        if fmt == "yolo":
            if not os.path.isdir(path):
                raise InvalidInput(f"{path}: YOLO predictions are a folder of .txt files")
            cols = read_yolo(Source(path))
            class_of = _yolo_classes(dataset, names)
        else:
            folder, base = os.path.split(os.path.abspath(path))
            cols = read_table(Source(folder), base)
            class_of = None
        samples = _Samples(store, dataset["id"])
        table, skipped = _checked(cols, samples, set(dataset["categories"]), class_of)
        skipped[:0] = cols.skipped
    if table.num_rows == 0:
        detail = f": {skipped[0].path}: {skipped[0].reason}" if skipped else ""
        raise InvalidInput(
            f"{path}: no predictions could be imported ({len(skipped)} skipped){detail}"
        )
    n = table.num_rows
    table = pa.table(
        {
            "dataset_id": pa.repeat(pa.scalar(dataset["id"], pa.int32()), n),
            **{c: table[c] for c in table.column_names},
            "kind": pa.repeat(pa.scalar("prediction"), n),
            "source": pa.repeat(pa.scalar(source_name), n),
        }
    )
    sample_rows.import_labels(store, table, source_name, dataset["id"])
    return {
        "dataset": dataset["name"],
        "source": source_name,
        "format": fmt,
        "predictions": n,
        "images": len(np.unique(table["sample_id"].to_numpy())),
        "skipped_count": len(skipped),
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped[:REPORT_LIMIT]],
    }


class _Samples:
    """Finds the sample an image path names: the same path, else the same path without its
    extension (YOLO names files by stem), else the same file name or stem if only one sample
    has it."""

    def __init__(self, store: Store, dataset_id: int) -> None:
        rows = sample_rows.sizes(store, dataset_id)
        self.size: dict[int, tuple[float, float]] = {}
        self.keys: list[dict[str, int]] = [{}, {}, {}, {}]
        for sample_id, path, width, height in rows:
            self.size[int(sample_id)] = (float(width or 0), float(height or 0))
            stem_path = posixpath.splitext(path)[0]
            base = posixpath.basename(path)
            for table, key in zip(
                self.keys, (path, stem_path, base, posixpath.splitext(base)[0]), strict=True
            ):
                table[key] = -1 if key in table else int(sample_id)  # -1: ambiguous

    def find(self, image: str) -> int | str:
        base = posixpath.basename(image)
        path, stem_path, name, stem = self.keys
        for table, key in (
            (path, image),
            (stem_path, image),  # YOLO: the image's path without its extension
            (stem_path, posixpath.splitext(image)[0]),
            (name, base),
            (stem, base),
            (stem, posixpath.splitext(base)[0]),
        ):
            found = table.get(key)
            if found is not None:
                return found if found >= 0 else f"{image!r} matches several images"
        return f"unknown image {image!r}"


def _yolo_classes(dataset: dict[str, Any], names: str | None) -> list[str]:
    if names:
        folder, base = os.path.split(os.path.abspath(names))
        return class_names_file(Source(folder), base)
    report = dataset.get("report") or {}
    indexed = report.get("class_indices") or report.get("coco_categories")
    if indexed:  # COCO datasets: YOLO class i is the i-th category by id, as ultralytics has it
        return [v for _, v in sorted((int(k), v) for k, v in indexed.items())]
    raise InvalidInput(
        f"dataset {dataset['name']!r} has no class index table: YOLO predictions name classes "
        "by index, so pass --names with the model's data.yaml (or a file with a name a line)"
    )


def _checked(
    cols: PredictionColumns,
    samples: _Samples,
    classes: set[str],
    class_of: list[str] | None,
) -> tuple[pa.Table, list[Skipped]]:
    out = _Rows()
    skipped: list[Skipped] = []
    found: dict[str, int | str] = {}
    for image, cls, box, score, where in zip(
        cols.image, cols.cls, cols.boxes, cols.score, cols.where, strict=True
    ):
        sample = found.get(image)
        if sample is None:
            sample = found[image] = samples.find(image)
        if isinstance(sample, str):
            skipped.append(Skipped(where, sample))
            continue
        name: str | None = cls
        if class_of is not None:
            index = int(cls) if cls.isdigit() else -1
            name = class_of[index] if 0 <= index < len(class_of) else None
            if name is None:
                skipped.append(Skipped(where, f"class index {cls} is not in the class names"))
                continue
        if name not in classes:
            skipped.append(Skipped(where, f"unknown class {name!r}"))
            continue
        problem = _score_problem(score)
        if cols.normalized and problem is None:
            width, height = samples.size[sample]
            box = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
        problem = problem or box_problem(*box)
        if problem:
            skipped.append(Skipped(where, problem))
            continue
        out.add(sample, name, box, score)
    return out.table(), skipped


def _score_problem(score: float | None) -> str | None:
    if score is None:
        return "prediction without score"
    if not 0 <= score <= 1:  # NaN fails this too
        return f"score {score} is outside [0, 1]"
    return None


class _Rows:
    """Accepted predictions, gathered as columns."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {
            k: [] for k in ("sample_id", "class", "x", "y", "w", "h", "score")
        }

    def add(self, sample: int, cls: str, box: tuple[float, ...], score: float) -> None:
        self.cols["sample_id"].append(sample)
        self.cols["class"].append(cls)
        for key, value in zip(("x", "y", "w", "h"), box, strict=True):
            self.cols[key].append(value)
        self.cols["score"].append(score)

    def table(self) -> pa.Table:
        return _table(self.cols)


def _table(cols: Mapping[str, Any]) -> pa.Table:
    """Predictions as the store takes them, from a column per field (lists or arrays)."""
    return pa.table(
        {
            "sample_id": pa.array(cols["sample_id"], pa.int32()),
            "class": pa.array(cols["class"], pa.string()),
            **{k: pa.array(cols[k], pa.float64()) for k in ("x", "y", "w", "h", "score")},
        }
    )


def _from_coco(
    store: Store, dataset: dict[str, Any], path: str, split: str | None, names: str | None
) -> tuple[pa.Table, list[Skipped]]:
    folder, base = os.path.split(os.path.abspath(path))
    coco_ids = sample_rows.coco_ids(store, dataset["id"])
    source = Source(folder)
    # Well-formed entries decoded straight into columns; else each entry read on its own.
    columns = result_columns(source, base)
    read = None if columns is not None else results_file(source, base)
    named = columns.file_names if columns else result_file_names(source, base, read)
    # ultralytics' save_json: each entry's image_id is its file's stem, its file_name beside
    # it; on a COCO dataset such ids are no COCO ids, and the file names find the images.
    by_file = named is not None and not all(isinstance(i, int) for i in named)
    images: Mapping[Any, int | str]
    if coco_ids and not by_file:
        images = _coco_images(coco_ids, dataset, path, split)
        found = (dataset.get("report") or {}).get("coco_categories")
        if not found:
            raise NotFound(f"dataset {dataset['name']!r} has no COCO category table")
        categories = {int(k): v for k, v in found.items()}
    else:
        if split is not None:
            raise InvalidInput(
                f"split {split!r}: the results' images are found by their file_name; no split "
                "is needed"
            )
        if coco_ids and names is None:  # the model's classes can't be told from COCO's
            raise InvalidInput(
                f"{path}: its entries name their images by file (image_id "
                f"{next(iter(named or {}))!r}), as ultralytics' save_json writes, so their "
                "category_id is the model's class index + 1: pass --names with the model's "
                "data.yaml (names=... in Python)"
            )
        images, categories = _named_images(store, dataset, named, names)
    kept = None if columns is None else kept_results(columns, base, categories, images)
    if kept is not None:
        boxes = {k: kept.boxes[:, i] for i, k in enumerate("xywh")}
        cols = {"sample_id": kept.sample_ids, "class": kept.classes, **boxes}
        return _table({**cols, "score": kept.scores}), kept.skipped
    out = _Rows()
    skipped: list[Skipped] = []
    for item in read_results(source, base, categories, images, read):
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        sample_id, label = item
        assert label.bbox is not None and label.score is not None
        out.add(sample_id, label.category, label.bbox, label.score)
    return out.table(), skipped


def _named_images(
    store: Store, dataset: dict[str, Any], by_id: dict[Any, str] | None, names: str | None
) -> tuple[dict[Any, int | str], dict[int, str]]:
    """The images of ultralytics' `predictions.json` (`yolo val save_json=True`), found by
    each entry's `file_name` (`by_id`: by image_id), and its categories, the model's class
    index + 1 (the dataset's data.yaml names, or `names`)."""
    if by_id is None:
        raise InvalidInput(
            f"dataset {dataset['name']!r} has no COCO image ids: predictions in COCO results "
            "format need a dataset ingested from COCO, or a file_name in every entry (as "
            "ultralytics writes with save_json=True); or use a table or YOLO files"
        )
    samples = _Samples(store, dataset["id"])
    # A sample id, or why there is none (an unknown file, a name several images share): the
    # entries of such an image are skipped with it.
    images = {image_id: samples.find(file_name) for image_id, file_name in by_id.items()}
    classes = _yolo_classes(dataset, names)
    return images, {index + 1: name for index, name in enumerate(classes)}


def _coco_images(
    found: dict[Any, list[tuple[int, str | None]]],
    dataset: dict[str, Any],
    path: str,
    split: str | None,
) -> dict[Any, int]:
    """Sample ids by COCO image id (`found`: the dataset's (sample id, split) per id), for
    results that use the image ids of `split`'s annotation file (None: of the dataset's only
    numbering). Ids that name several images are refused rather than guessed: predictions on
    the wrong image would go unnoticed."""
    name = dataset["name"]
    splits = sorted({s or "(none)" for members in found.values() for _, s in members})
    if split is not None:
        found = {
            key: kept
            for key, members in found.items()
            if (kept := [m for m in members if m[1] == split])
        }
        if not found:
            raise InvalidInput(
                f"dataset {name!r} has no COCO images in split {split!r} "
                f"(its splits: {', '.join(splits)})"
            )
    shared = [key for key, members in found.items() if len(members) > 1]
    if shared:
        example = found[shared[0]]
        where = ", ".join(sorted({s or "(none)" for _, s in example}))
        hint = (
            "; pass --split S (split=S) to say which split's annotation file the results "
            f"number their images by (splits: {', '.join(splits)})"
            if split is None and len(splits) > 1
            else ""
        )
        raise InvalidInput(
            f"{path}: {len(shared)} COCO image ids of dataset {name!r} name more than one "
            f"image (image_id {shared[0]!r}: {len(example)} images, in {where}), as when "
            f"each split has its own annotation file{hint}"
        )
    return {key: members[0][0] for key, members in found.items()}
