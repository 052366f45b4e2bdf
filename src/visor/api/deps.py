"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from visor.dataset import Dataset
from visor.ops.base import Context
from visor.workspace import Workspace


def get_workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]


def get_dataset(name: str, workspace: WorkspaceDep) -> Dataset:
    return workspace.dataset(name)


DatasetDep = Annotated[Dataset, Depends(get_dataset)]


def get_context(name: str, workspace: WorkspaceDep) -> Context:
    """What the server holds for the dataset: for the routes that serve files and bytes."""
    return workspace.context(name)


ContextDep = Annotated[Context, Depends(get_context)]
