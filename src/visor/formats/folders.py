"""Image folders: a classification tree (`<split>/<class>/*.jpg`, `<class>/*.jpg`) or a plain
folder of images with no labels."""

from __future__ import annotations

from collections.abc import Iterator

from visor.formats.records import (
    LabelRecord,
    Listing,
    Record,
    SampleRecord,
    split_alias,
    split_from_path,
)


def looks_like_classification(listing: Listing) -> bool:
    """True when every image sits in a class folder, all under split folders or none, and
    there are at least two classes."""
    return len({parts[-2] for parts in _class_paths(listing)}) >= 2


def _class_paths(listing: Listing) -> list[list[str]]:
    """Each image's path parts when the tree is `<class>/<image>` or `<split>/<class>/<image>`
    throughout (at least one top folder a split's name, e.g. `train/` beside `holdout/`);
    empty otherwise."""
    paths = [image.split("/") for image in listing.images()]
    depths = {len(parts) for parts in paths}
    if depths == {2} and not any(split_alias(parts[0]) for parts in paths):
        return paths
    if depths == {3} and any(split_alias(parts[0]) for parts in paths):
        return paths
    return []


def read_classification(listing: Listing) -> Iterator[Record]:
    """One sample per image, labelled with the name of its folder; the split is the top
    folder's (an unknown name like `holdout` is kept as it is)."""
    for parts in sorted(_class_paths(listing), key="/".join):
        image = "/".join(parts)
        split = (split_alias(parts[0]) or parts[0]) if len(parts) == 3 else None
        yield SampleRecord(key=image, path=image, split=split)
        yield LabelRecord(image, parts[-2])


def read_images(listing: Listing) -> Iterator[Record]:
    """One unlabelled sample per image; the split comes from folder names when they say."""
    for image in sorted(listing.images()):
        yield SampleRecord(key=image, path=image, split=split_from_path(image))
