"""Pascal VOC: `Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/<split>.txt`; or a labelImg
folder, where each image's XML sits beside it."""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from visor.formats.records import (
    IMAGE_EXTENSIONS,
    LabelRecord,
    Listing,
    Record,
    SampleRecord,
    Skipped,
    box_problem,
    image_side,
    is_image,
    split_alias,
    split_from_path,
)
from visor.sources import Source


def annotation_files(listing: Listing) -> list[str]:
    """XML files under an `Annotations/` folder, or beside an image of the same name."""
    images = {posixpath.splitext(p)[0] for p in listing.images()}
    return sorted(
        p
        for p in listing.sizes
        if p.endswith(".xml") and ("Annotations" in p.split("/")[:-1] or p[:-4] in images)
    )


def read(source: Source, listing: Listing) -> Iterator[Record]:
    """One sample per annotation file, with its objects as boxes; then the images no file
    describes (in `JPEGImages/` or beside the XML files), unlabelled."""
    splits = _splits(source, listing)
    described: set[str] = set()
    for file in annotation_files(listing):
        try:
            root = ET.fromstring(source.read_bytes(file))
        except ET.ParseError as e:
            yield Skipped(file, f"XML does not parse ({e})")
            described.add(_image_path(listing, file, None))  # skipped with it, not unlabelled
            continue
        image = _image_path(listing, file, root.findtext("filename"))
        described.add(image)
        base = file.split("Annotations/")[0] if "/Annotations/" in f"/{file}" else None
        stem = posixpath.splitext(posixpath.basename(image))[0]
        split = splits.get((base, stem)) if base is not None else None
        yield SampleRecord(
            key=image,
            path=image,
            split=split or split_from_path(image),
            width=image_side(root.findtext("size/width")),
            height=image_side(root.findtext("size/height")),
        )
        for number, obj in enumerate(root.iter("object"), start=1):
            label = _object(obj, image)
            if isinstance(label, str):
                yield Skipped(file, f"object {number}: {label}")
            else:
                yield label
    folders = {_image_folder(file) for file in annotation_files(listing)}
    for image in sorted(listing.images()):
        if image not in described and posixpath.dirname(image) in folders:
            base = image.split("JPEGImages/")[0]
            stem = posixpath.splitext(posixpath.basename(image))[0]
            yield SampleRecord(
                key=image, path=image, split=splits.get((base, stem)) or split_from_path(image)
            )


def _image_folder(file: str) -> str:
    """Where the images of annotation `file` are: `JPEGImages/` beside `Annotations/`, or
    the XML's own folder (labelImg)."""
    folder = posixpath.dirname(file)
    if posixpath.basename(folder) == "Annotations":
        return posixpath.join(posixpath.dirname(folder), "JPEGImages")
    return folder


def _image_path(listing: Listing, file: str, filename: str | None) -> str:
    """The image that annotation `file` describes: its `<filename>` in the image folder, else
    an image of the XML's name there with any image extension."""
    folder = _image_folder(file)
    stem = posixpath.basename(file)[:-4]
    if filename and filename.strip():
        named = posixpath.join(folder, posixpath.basename(filename.strip()))
        if named in listing.sizes:
            return named
        stem = posixpath.splitext(posixpath.basename(filename.strip()))[0]
    for extension in sorted(IMAGE_EXTENSIONS):
        for candidate in (stem + extension, stem + extension.upper()):
            path = posixpath.join(folder, candidate)
            if path in listing.sizes and is_image(path):
                return path
    return posixpath.join(
        folder, posixpath.basename(filename.strip()) if filename else stem + ".jpg"
    )


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
    if problem := box_problem(x0, y0, x1 - x0, y1 - y0):
        return problem
    flags = tuple(f for f in ("difficult", "truncated") if (obj.findtext(f) or "0").strip() == "1")
    return LabelRecord(image, name, (x0, y0, x1 - x0, y1 - y0), flags=flags)


def _splits(source: Source, listing: Listing) -> dict[tuple[str, str], str]:
    """(dataset folder, image stem) -> split, from `ImageSets/Main/<split>.txt`. A name like
    `holdout.txt` is a split of its own; `trainval` applies where no train/val list says."""
    found: dict[tuple[str, str], str] = {}
    lists = [p for p in listing.sizes if "ImageSets/Main/" in p and p.endswith(".txt")]
    # per-class files (aeroplane_train.txt) repeat the split lists
    named = [(posixpath.basename(p)[:-4], p) for p in lists if "_" not in posixpath.basename(p)]
    for name, path in sorted(named, key=lambda item: (item[0].lower() == "trainval", item)):
        split = split_alias(name) or name
        base = path.split("ImageSets/")[0]
        for line in source.read_bytes(path).decode("utf-8", "replace").splitlines():
            if line.strip():
                found.setdefault((base, line.split()[0]), split)
    return found
