"""Image folders: a classification tree (`<split>/<class>/*.jpg`, `<class>/*.jpg`) or a plain
folder of images with no labels."""

from __future__ import annotations

from collections.abc import Iterator

from visor.formats.records import LabelRecord, Listing, Record, SampleRecord, split_from_path

_SPLITS = {"train", "val", "valid", "validation", "test"}


def looks_like_classification(listing: Listing) -> bool:
    """True when every image sits in a class folder, optionally under a split folder, and
    there are at least two classes."""
    classes = set()
    for image in listing.images():
        parts = image.split("/")
        if len(parts) == 3 and parts[0].lower() in _SPLITS:
            classes.add(parts[1])
        elif len(parts) == 2 and parts[0].lower() not in _SPLITS:
            classes.add(parts[0])
        else:
            return False
    return len(classes) >= 2


def read_classification(listing: Listing) -> Iterator[Record]:
    """One sample per image, labelled with the name of its folder."""
    for image in sorted(listing.images()):
        parts = image.split("/")
        yield SampleRecord(key=image, path=image, split=split_from_path(image))
        yield LabelRecord(image, parts[-2])


def read_images(listing: Listing) -> Iterator[Record]:
    """One unlabelled sample per image; the split comes from folder names when they say."""
    for image in sorted(listing.images()):
        yield SampleRecord(key=image, path=image, split=split_from_path(image))
