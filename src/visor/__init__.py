"""Visor: see and fix image datasets."""

from visor.client import launch
from visor.client import open_workspace as open
from visor.errors import VisorError
from visor.store.samples import SampleFilter
from visor.workspace import Dataset, Workspace

__all__ = ["Dataset", "SampleFilter", "VisorError", "Workspace", "launch", "open"]
__version__ = "0.1.0"
