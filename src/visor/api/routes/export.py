"""/api/exports: the zips of finished exports with `download` (the export itself: the
operations' route, POST /api/datasets/{name}/export)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from visor.api.deps import WorkspaceDep
from visor.errors import NotFound

downloads = APIRouter(prefix="/api/exports", tags=["export"])


@downloads.get("/{file}")
def download(file: str, workspace: WorkspaceDep) -> FileResponse:
    """A finished export's zip (from an export with `download`)."""
    folder = (workspace.settings.home / "exports").resolve()
    path = (folder / file).resolve()
    if path.parent != folder or path.suffix != ".zip" or not path.is_file():
        raise NotFound(f"export {file!r} not found")
    return FileResponse(path, media_type="application/zip", filename=file)
