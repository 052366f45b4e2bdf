"""/api/datasets/{name}/edits: the edit log as the UI reads it (edits, undo, redo and revert:
the operations' routes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visor.api.deps import DatasetDep

router = APIRouter(prefix="/api/datasets/{name}/edits", tags=["edits"])


@router.get("")
def history(dataset: DatasetDep, limit: int = 100) -> list[dict[str, Any]]:
    """The edit batches, newest first."""
    return dataset.edits.history(limit)


@router.get("/{batch}")
def batch(dataset: DatasetDep, batch: int) -> list[dict[str, Any]]:
    """One batch's changes with each label before and after."""
    return dataset.edits.batch(batch)
