"""The embedding models known by name, and how this process's CPU runs them: the backend
chosen, whether int8 is static here, and what auto measured (`visor models`, `ws.models()`,
`GET /api/models`). Asked through a server, it is the server's CPU: the one its jobs run on."""

from __future__ import annotations

from typing import Any

from visor.config import Settings
from visor.embedding.backends import (
    check_backend,
    chosen,
    fastest,
    recorded_choices,
    static_int8_models,
)
from visor.embedding.cpu import INT8_FLAGS, cpu_flags
from visor.embedding.models import describe_models, loaded_models
from visor.errors import InvalidInput
from visor.ops import results
from visor.ops.base import Context, Op, register
from visor.services.jobs import JobContext


@register
class Models(Op):
    """The models known by name and those loaded; the backend this CPU runs them on, its int8
    path, and the rates auto measured and the static int8 guards kept under home."""

    name = "models"
    scope = "workspace"
    result = results.Models

    def run(self, ctx: Context, job: JobContext | None) -> dict[str, Any]:
        return describe(ctx.settings)


def describe(settings: Settings) -> dict[str, Any]:
    """`Models`' answer: it needs settings only, not the store."""
    setting = settings.embed_backend
    try:
        backend, problem = check_backend(setting, "cpu"), None
    except InvalidInput as e:  # a setting naming a backend not installed: said
        backend, problem = None, e.message
    folder = settings.compiled_dir
    measured = []
    for key, found in recorded_choices(folder).items():
        model, precision = key.split("|")[:2]
        rates = found["rates"]
        measured.append({"model": model, "precision": precision, "fastest": fastest(rates),
                         "chosen": _chosen(rates), "rates": rates,
                         "making_s": found.get("making_s")})  # fmt: skip
    return {
        "models": describe_models(),
        "loaded": loaded_models(),
        "backend": {"setting": setting, "chosen": backend, "problem": problem},
        "int8_flags": sorted(INT8_FLAGS & cpu_flags()),
        "measured": measured,
        "static_int8": [{"model": m, **facts} for m, facts in static_int8_models(folder)],
    }


def _chosen(rates: dict[str, float]) -> str:
    """What auto runs given a record's rates (`backends.chosen`); the fastest where the
    record is a file a person edited into something `chosen` can't weigh."""
    try:
        return chosen(rates)
    except (TypeError, ValueError, ZeroDivisionError):
        return fastest(rates)
