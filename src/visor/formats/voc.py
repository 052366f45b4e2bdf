"""Pascal VOC: `Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/<split>.txt`."""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from visor.formats.records import (
    LabelRecord,
    Listing,
    Record,
    SampleRecord,
    Skipped,
    split_from_name,
)
from visor.sources import Source


def annotation_files(listing: Listing) -> list[str]:
    return sorted(
        p for p in listing.sizes if p.endswith(".xml") and "Annotations" in p.split("/")[:-1]
    )


def read(source: Source, listing: Listing) -> Iterator[Record]:
    """One sample per annotation file, with its objects as boxes."""
    splits = _splits(source, listing)
    for file in annotation_files(listing):
        base = file.split("Annotations/")[0]
        try:
            root = ET.fromstring(source.read_bytes(file))
        except ET.ParseError as e:
            yield Skipped(file, f"XML does not parse ({e})")
            continue
        filename = root.findtext("filename") or posixpath.basename(file)[:-4] + ".jpg"
        stem = posixpath.splitext(filename)[0]
        image = posixpath.join(base, "JPEGImages", filename)
        yield SampleRecord(
            key=image,
            path=image,
            split=splits.get((base, stem)),
            width=_int(root.findtext("size/width")),
            height=_int(root.findtext("size/height")),
        )
        for number, obj in enumerate(root.iter("object"), start=1):
            label = _object(obj, image)
            if isinstance(label, str):
                yield Skipped(file, f"object {number}: {label}")
            else:
                yield label


def _object(obj: ET.Element, image: str) -> LabelRecord | str:
    name = (obj.findtext("name") or "").strip()
    if not name:
        return "no <name>"
    box = obj.find("bndbox")
    if box is None:
        return LabelRecord(image, name)
    try:
        x0, y0, x1, y1 = (float(box.findtext(k) or "") for k in ("xmin", "ymin", "xmax", "ymax"))
    except ValueError:
        return "bndbox needs numeric xmin, ymin, xmax, ymax"
    if x1 <= x0 or y1 <= y0:
        return f"box has zero or negative size ({x0}, {y0}, {x1}, {y1})"
    flags = tuple(f for f in ("difficult", "truncated") if (obj.findtext(f) or "0").strip() == "1")
    return LabelRecord(image, name, (x0, y0, x1 - x0, y1 - y0), flags=flags)


def _splits(source: Source, listing: Listing) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for path in sorted(listing.sizes):
        if "ImageSets/Main/" not in path or not path.endswith(".txt"):
            continue
        name = posixpath.basename(path)[:-4]
        if "_" in name:
            continue  # per-class files (aeroplane_train.txt) repeat the split lists
        split = split_from_name(name)
        if split is None or name == "trainval":
            continue
        base = path.split("ImageSets/")[0]
        for line in source.read_bytes(path).decode("utf-8", "replace").splitlines():
            if line.strip():
                found[(base, line.split()[0])] = split
    return found


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None
