"""Saved views (`ds.views`): a name for what a user is looking at — the samples API's filters,
a lasso's selection, the sort, and what the UI shows (map, colouring, tab) — kept in the store
so it survives restarts; exports and sample queries can name it."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np

from visor.errors import InvalidInput, NotFound
from visor.store import views as view_rows
from visor.store.samples import SampleFilter

if TYPE_CHECKING:
    from visor.workspace import Dataset

# The samples API's names for SampleFilter's fields where they differ.
_API_NAMES = {"category": "class", "quality_issue": "quality"}
_NAME = re.compile(r"^[\w .-]{1,80}$")


def filter_params(filters: SampleFilter) -> dict[str, Any]:
    """A SampleFilter as the samples API names its filters (ids and confusion apart)."""
    out: dict[str, Any] = {}
    for field in fields(SampleFilter):
        value = getattr(filters, field.name)
        if value is None or field.name in ("ids", "confusion"):
            continue
        out[_API_NAMES.get(field.name, field.name)] = value
    if filters.confusion is not None:
        out["confusion_gt"], out["confusion_pred"] = filters.confusion
    return out


def sample_filter(params: dict[str, Any], ids: np.ndarray | None = None) -> SampleFilter:
    """The SampleFilter of the samples API's filter names (unknown names refused)."""
    known = {_API_NAMES.get(f.name, f.name): f.name for f in fields(SampleFilter)}
    values: dict[str, Any] = {}
    confusion = (params.get("confusion_gt"), params.get("confusion_pred"))
    for key, value in params.items():
        if key in ("confusion_gt", "confusion_pred", "selection"):
            continue
        if key not in known or known[key] in ("ids", "confusion"):
            raise InvalidInput(f"filter {key!r} is not a samples filter")
        values[known[key]] = value
    if confusion != (None, None):
        values["confusion"] = (confusion[0] or "", confusion[1] or "")
    return SampleFilter(**values, ids=ids)


class Views:
    def __init__(self, dataset: Dataset) -> None:
        self._ds = dataset

    def save(
        self,
        name: str,
        *,
        filters: SampleFilter | dict[str, Any] | None = None,
        selection: str | np.ndarray | list[int] | None = None,
        sort: str = "id",
        order: str = "asc",
        ui: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Save (or replace) view `name`: filters (a SampleFilter or the samples API's names),
        a selection (a token, or sample ids, kept as a new selection), the sort, and what the
        UI shows (`ui`: its URL state)."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput(f"view name {name!r}: 1-80 letters, digits, spaces, '.', '-' or '_'")
        params = filters if isinstance(filters, dict) else filter_params(filters or SampleFilter())
        sample_filter(params)  # refuses unknown names now, not when the view is used
        token = None
        if isinstance(selection, str):
            self._ds.selection(selection)  # it must exist
            token = selection
        elif selection is not None:
            token = self._ds.select(np.asarray(selection))["selection"]
        if order not in ("asc", "desc"):
            raise InvalidInput(f"order {order!r}: use asc or desc")
        state = {"filters": params, "selection": token, "sort": sort, "order": order,
                 "ui": ui or {}}  # fmt: skip
        view_rows.save_view(self._ds.store, self._ds.id, name, state)
        self._ds.workspace.changes.record(self._ds.name, "views")
        return self.get(name)

    def list(self) -> list[dict[str, Any]]:
        return view_rows.views(self._ds.store, self._ds.id)

    def get(self, name: str) -> dict[str, Any]:
        found = view_rows.view(self._ds.store, self._ds.id, name)
        if found is None:
            known = ", ".join(v["name"] for v in self.list()) or "none yet"
            raise NotFound(f"view {name!r} not found in dataset {self._ds.name!r} (views: {known})")
        return found

    def delete(self, name: str) -> None:
        if not view_rows.delete_view(self._ds.store, self._ds.id, name):
            raise NotFound(f"view {name!r} not found in dataset {self._ds.name!r}")
        self._ds.workspace.changes.record(self._ds.name, "views")

    def filter(self, name: str) -> SampleFilter:
        """The samples view `name` shows, as a SampleFilter (its selection's ids included)."""
        found = self.get(name)
        ids = self._ds.selection(found["selection"]) if found.get("selection") else None
        return sample_filter(found["filters"], ids)
