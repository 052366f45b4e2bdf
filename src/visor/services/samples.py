"""One dataset's samples as the API shows them: a sample with its checks, its image, its
thumbnail (made on first request, or all at once during an ingest), and tags."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visor.config import Settings
from visor.errors import InvalidInput, NotFound, VisorError
from visor.media.thumbnails import make_thumbnail, write_atomically
from visor.services.jobs import JobContext
from visor.sources import Source
from visor.store import Store
from visor.store import label_quality as label_quality_rows
from visor.store import samples as sample_rows
from visor.store.filters import SampleFilter


def sample(store: Store, dataset: dict[str, Any], sample_id: int) -> dict[str, Any]:
    """One sample; `detection_check` when cleanlab's detection check has scored it."""
    found = sample_rows.get(store, dataset["id"], sample_id)
    if found is None:
        raise NotFound(f"sample {sample_id} not found in dataset {dataset['name']!r}")
    check = label_quality_rows.detection_of_sample(store, dataset["id"], sample_id)
    if check is not None:
        found["detection_check"] = check
    return found


def known(store: Store, dataset: dict[str, Any], ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """`ids` sorted and unique; NotFound naming those the dataset lacks."""
    wanted = np.asarray(ids, dtype=np.int64)
    if len(wanted) > 1 and not (wanted[1:] > wanted[:-1]).all():  # else sorted and unique
        wanted = np.sort(wanted)
        wanted = wanted[np.concatenate(([True], wanted[1:] != wanted[:-1]))]
    if not len(wanted):
        raise InvalidInput("ids: give at least one sample id")
    beyond = wanted[(wanted < 0) | (wanted > np.iinfo(np.int32).max)]  # not sample ids
    missing = beyond[:10].tolist() or sample_rows.missing_ids(store, dataset["id"], wanted)
    if missing:
        raise NotFound(f"samples not found in dataset {dataset['name']!r}: {missing}")
    return wanted


def check_tags(tags: list[str]) -> list[str]:
    clean = [t.strip() for t in tags]
    if not clean or any(not t or len(t) > 64 for t in clean):
        raise InvalidInput("tags: give 1 or more tags of 1-64 characters")
    return clean


def image_bytes(
    store: Store, source: Source, dataset: dict[str, Any], sample_id: int
) -> tuple[bytes, str]:
    """The original file's bytes and its path."""
    path = sample(store, dataset, sample_id)["path"]
    return source.read_bytes(path), path


def thumbnail_path(settings: Settings, dataset_id: int, sample_id: int) -> Path:
    size = settings.thumbnail_size
    return settings.thumbnails_dir / str(dataset_id) / f"{sample_id}-{size}.jpg"


def thumbnail(
    store: Store, settings: Settings, source: Source, dataset: dict[str, Any], sample_id: int
) -> tuple[Path, str]:
    """The cached thumbnail file (made on first request) and its ETag."""
    found = sample(store, dataset, sample_id)
    size = settings.thumbnail_size
    path = thumbnail_path(settings, dataset["id"], sample_id)
    etag = hashlib.blake2s(
        f"{dataset['id']}:{sample_id}:{size}:{found['path']}:{found['size_bytes']}".encode(),
        digest_size=8,
    ).hexdigest()
    if not path.exists():
        write_atomically(
            path, make_thumbnail(source.read_bytes(found["path"]), found["path"], size)
        )
    return path, etag


def thumbnail_bytes(
    store: Store, settings: Settings, source: Source, dataset: dict[str, Any], sample_id: int
) -> bytes | None:
    """The thumbnail's JPEG bytes; None when the image cannot be read."""
    try:
        return thumbnail(store, settings, source, dataset, sample_id)[0].read_bytes()
    except VisorError:
        return None


def make_thumbnails(
    store: Store, settings: Settings, source: Source, dataset: dict[str, Any], job: JobContext
) -> dict[str, Any]:
    """Make every missing thumbnail now (a job phase); unreadable images are counted."""
    todo = sample_rows.paths(store, dataset["id"])
    job.phase("making thumbnails", total=len(todo))
    failed = 0
    for done, (sample_id, relpath) in enumerate(todo, start=1):
        path = thumbnail_path(settings, dataset["id"], sample_id)
        if not path.exists():
            try:
                data = make_thumbnail(source.read_bytes(relpath), relpath, settings.thumbnail_size)
            except VisorError:
                failed += 1
            else:
                write_atomically(path, data)
        if done % 50 == 0 or done == len(todo):
            job.progress(done)
            job.check_cancelled()
    return {"made": len(todo) - failed, "failed": failed}


_PLURAL = {"split": "its splits", "class": "its classes", "tag": "its tags"}


def check_known(store: Store, dataset: dict[str, Any], filters: SampleFilter) -> None:
    """Refuse a filter naming a split, class or tag the dataset doesn't have (a typo would
    otherwise act on no sample, or say "nothing to export"), naming the ones it has."""
    asked = {"split": ("split", filters.split), "class": ("category", filters.category),
             "tag": ("tag", filters.tag)}  # fmt: skip
    for kind, (field, value) in asked.items():
        # Asked of the filter itself, which stops at the first sample: this runs before every
        # filtered tag, relabel, export and search. The values are listed only to refuse.
        if value is None or sample_rows.any_match(
            store, int(dataset["id"]), SampleFilter(**{field: value})
        ):
            continue
        have = sample_rows.distinct_values(store, int(dataset["id"]), kind)
        close = difflib.get_close_matches(value, have, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else _listed(kind, have)
        where = "has no sample tagged" if kind == "tag" else f"has no {kind}"
        raise InvalidInput(f"dataset {dataset['name']!r} {where} {value!r} ({hint})")


def _listed(kind: str, values: list[str], first: int = 12) -> str:
    title = _PLURAL[kind]
    if not values:
        return f"{title}: none"
    more = f" and {len(values) - first} more" if len(values) > first else ""
    return f"{title}: {', '.join(values[:first])}{more}"
