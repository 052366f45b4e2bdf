"""Which format a dataset root is in, and the one entry point that reads any of them."""

from __future__ import annotations

from collections.abc import Iterator

from visor.errors import FormatError, InvalidInput
from visor.formats import coco, folders, voc, yolo
from visor.formats.records import Listing, Record
from visor.sources import Source

FORMATS = ("coco", "yolo", "voc", "classification", "images")


def detect_format(listing: Listing) -> str:
    """The format of a dataset, from the names of its files."""
    if coco.annotation_files(listing):
        return "coco"
    if yolo.config_file(listing):
        return "yolo"
    if voc.annotation_files(listing):
        return "voc"
    if not any(True for _ in listing.images()):
        raise FormatError("no images and no annotation files found")
    if folders.looks_like_classification(listing):
        return "classification"
    return "images"


def read_dataset(source: Source, listing: Listing, fmt: str) -> Iterator[Record]:
    """Records of a dataset in format `fmt` (one of FORMATS)."""
    if fmt == "coco":
        return coco.read(source, listing)
    if fmt == "yolo":
        return yolo.read(source, listing)
    if fmt == "voc":
        return voc.read(source, listing)
    if fmt == "classification":
        return folders.read_classification(listing)
    if fmt == "images":
        return folders.read_images(listing)
    raise InvalidInput(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
