"""/api/datasets/{name}/edits: label edits as batches (apply, relabel in bulk, accept
suggested classes), the edit log, undo, redo and revert."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from visor.api.deps import DatasetDep

router = APIRouter(prefix="/api/datasets/{name}/edits", tags=["edits"])


class Relabel(BaseModel):
    from_class: str
    to_class: str
    ids: list[int] | None = Field(default=None, description="only among these samples")
    selection: str | None = Field(default=None, description="only among a lasso's samples")


class EditRequest(BaseModel):
    changes: list[dict[str, Any]] | None = Field(
        default=None,
        description='each {"action": "set_class", "label_id", "class"} | {"action": "delete", '
        '"label_id"} | {"action": "add", "sample_id", "class", "box"?} | {"action": '
        '"set_image_class", "sample_id", "class"} | {"action": "exclude"|"include", "sample_id"}',
    )
    relabel: Relabel | None = None
    accept: list[int] | None = Field(
        default=None, description="label ids whose suggested class (label-errors) is taken"
    )
    who: str | None = None


@router.get("")
def history(dataset: DatasetDep, limit: int = 100) -> list[dict[str, Any]]:
    """The edit batches, newest first."""
    return dataset.edits.history(limit)


@router.post("", status_code=201)
def edit(dataset: DatasetDep, body: EditRequest) -> dict[str, Any]:
    """One batch of edits, all made or none (404 unknown label or sample; 409 a label another
    edit deleted; 422 a bad class, box or action)."""
    edits = dataset.edits
    if body.relabel is not None:
        ids: Any = body.relabel.ids
        if body.relabel.selection is not None:
            ids = dataset.selection(body.relabel.selection)
        return edits.relabel(body.relabel.from_class, body.relabel.to_class, ids, who=body.who)
    if body.accept is not None:
        return edits.accept_suggestions(body.accept, who=body.who)
    return edits.apply(body.changes or [], who=body.who)


@router.post("/undo")
def undo(dataset: DatasetDep) -> dict[str, Any]:
    return dataset.edits.undo()


@router.post("/redo")
def redo(dataset: DatasetDep) -> dict[str, Any]:
    return dataset.edits.redo()


@router.get("/{batch}")
def batch(dataset: DatasetDep, batch: int) -> list[dict[str, Any]]:
    """One batch's changes with each label before and after."""
    return dataset.edits.batch(batch)


@router.post("/{batch}/revert")
def revert(dataset: DatasetDep, batch: int) -> dict[str, Any]:
    return dataset.edits.revert(batch)
