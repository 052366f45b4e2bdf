"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated, Any

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


def answers(model: Any) -> dict[str, Any]:
    """A route's answer described in /openapi.json (where the UI's types come from) without
    reshaping it: the operation's dict goes out as it is; the tests hold it to the model."""
    return {"response_model": None, "responses": {200: {"model": model}}}
