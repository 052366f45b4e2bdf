"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from visor.workspace import Dataset, Workspace


def get_workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]


def get_dataset(name: str, workspace: WorkspaceDep) -> Dataset:
    return workspace.dataset(name)


DatasetDep = Annotated[Dataset, Depends(get_dataset)]
