"""Visor: see and fix image datasets.

The names below are imported on first use, so that a process needing one part of Visor (a
decoding worker, the CLI's help) does not import the store, the server and the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from visor.client import launch
    from visor.client import open_workspace as open
    from visor.errors import VisorError
    from visor.store.samples import SampleFilter
    from visor.workspace import Dataset, Workspace

__all__ = ["Dataset", "SampleFilter", "VisorError", "Workspace", "launch", "open"]
__version__ = "0.1.0"

_WHERE = {
    "launch": ("visor.client", "launch"),
    "open": ("visor.client", "open_workspace"),
    "VisorError": ("visor.errors", "VisorError"),
    "SampleFilter": ("visor.store.samples", "SampleFilter"),
    "Dataset": ("visor.workspace", "Dataset"),
    "Workspace": ("visor.workspace", "Workspace"),
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'visor' has no attribute {name!r}")
    module, attribute = _WHERE[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
