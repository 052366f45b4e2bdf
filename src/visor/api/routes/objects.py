"""/api/datasets/{name}/objects: box vectors' status, a box's crop, similar boxes, the object
analysis's report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from visor.api.deps import ContextDep, DatasetDep, answers
from visor.embedding.models import with_weights_warning
from visor.ops import results
from visor.services import objects as object_service

router = APIRouter(prefix="/api/datasets/{name}/objects", tags=["objects"])


@router.get("", **answers(results.ObjectVectorStatus))
def status(dataset: DatasetDep) -> dict[str, Any]:
    """Per model: box vectors by kind and boxes skipped; the model box commands use by
    default; the last object analysis."""
    found = dataset.objects
    models = found.status()
    default = found.default_model() if any(m["vectors"] for m in models) else None
    return {"models": models, "default_model": default, "analysis": found.report()}


@router.get("/skipped")
def skipped(dataset: DatasetDep, model: str | None = None, limit: int = 1000) -> list[Any]:
    """The boxes that gave no vector, with the reason."""
    return dataset.objects.skipped(model, limit)


@router.get("/{label_id}", **answers(results.ObjectBoxRow))
def box(dataset: DatasetDep, label_id: int) -> dict[str, Any]:
    return dataset.objects.box(label_id)


@router.get("/{label_id}/similar", **answers(results.NearBoxes))
def similar(
    dataset: DatasetDep, label_id: int, k: int = 20, model: str | None = None
) -> dict[str, Any]:
    """The k boxes nearest to this one by cosine distance, as the images' similar answers:
    `neighbours`, the `model` whose box vectors were used, `warning` when its weights are
    random."""
    model = model or dataset.objects.default_model()
    found = dataset.objects.similar(label_id, k, model)
    return with_weights_warning({"label_id": label_id, "model": model, "neighbours": found})


@router.get("/{label_id}/crop")
def crop(ctx: ContextDep, label_id: int, request: Request) -> Response:
    """The box's crop as the object embedding sees it (context margin, squared), JPEG."""
    path, etag = object_service.crop(ctx.store, ctx.settings, ctx.source(), ctx.dataset, label_id)
    headers = {"ETag": f'"{etag}"', "Cache-Control": "private, max-age=86400"}
    if request.headers.get("if-none-match", "").strip('"') == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)
