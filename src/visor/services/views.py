"""Saved views (`ds.views`): a name for what a user is looking at — the samples filters, a
lasso's selection, the sort, and what the UI shows (map, colouring, tab) — kept in the store
so it survives restarts; exports and sample queries can name it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from visor.errors import InvalidInput, NotFound
from visor.store import Store
from visor.store import views as view_rows
from visor.store.samples import SampleFilter

_NAME = re.compile(r"^[\w .-]{1,80}$")


def save(
    store: Store,
    dataset: dict[str, Any],
    name: str,
    filters: SampleFilter,
    selection: str | None,
    sort: str,
    order: str,
    ui: dict[str, Any],
) -> dict[str, Any]:
    """Save (or replace) view `name` (the selection: a token that exists)."""
    if not _NAME.match(name):
        raise InvalidInput(f"view name {name!r}: 1-80 letters, digits, spaces, '.', '-' or '_'")
    state = {"filters": filters.params(), "selection": selection, "sort": sort, "order": order,
             "ui": ui}  # fmt: skip
    view_rows.save_view(store, dataset["id"], name, state)
    return get(store, dataset, name)


def get(store: Store, dataset: dict[str, Any], name: str) -> dict[str, Any]:
    found = view_rows.view(store, dataset["id"], name)
    if found is None:
        known = ", ".join(v["name"] for v in view_rows.views(store, dataset["id"])) or "none yet"
        raise NotFound(f"view {name!r} not found in dataset {dataset['name']!r} (views: {known})")
    return found


def delete(store: Store, dataset: dict[str, Any], name: str) -> None:
    if not view_rows.delete_view(store, dataset["id"], name):
        raise NotFound(f"view {name!r} not found in dataset {dataset['name']!r}")


def view_filter(
    store: Store, dataset: dict[str, Any], name: str, selection: Callable[[str], np.ndarray]
) -> SampleFilter:
    """The samples view `name` shows, as a SampleFilter (its selection's ids included)."""
    found = get(store, dataset, name)
    ids = selection(found["selection"]) if found.get("selection") else None
    try:
        return SampleFilter.model_validate({**found["filters"], "ids": ids})
    except ValueError as e:
        raise InvalidInput(f"view {name!r}: {e}") from None
