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


# In words: what `visor models` prints under its table, and what `visor embed` says of the
# backend a job ran on. Kept beside `describe`, whose answer (and the embed job's
# `backend_facts`, made by `embedding.choice`) they read, for any surface that shows them.


def models_lines(found: dict[str, Any]) -> list[str]:
    """`describe`'s answer, less its table of models: the backend, the int8 path, the rates
    auto measured and the static int8 guards, a line each."""
    backend = found["backend"]
    runs_on = backend["chosen"] or f"none ({backend['problem']})"
    if runs_on == "auto":
        runs_on = "auto (the faster of torch and openvino, measured on a model's first use)"
    has = ", ".join(found["int8_flags"])
    lines = [
        "Also: random:<name> (random weights, for trials), a model folder, or a hub id.",
        f"On this CPU the model runs on: {runs_on} (VISOR_EMBED_BACKEND={backend['setting']})",
        f"int8 on this CPU: static, calibrated on the dataset ({has}); auto uses it where it "
        "keeps the neighbours and runs 1.1x as fast as float"
        if has
        else "int8 on this CPU: int8 weights only (no VNNI or AMX: static int8 would be slower)",
    ]
    for row in found["measured"]:
        making = f"; making int8 took {row['making_s']} s" if row["making_s"] else ""
        lines.append(
            f"  {row['model']} ({row['precision']}): {row['chosen']} (measured images/s: "
            f"{rates_text(row['rates'])}{making})"
        )
    for row in found["static_int8"]:
        answer = "kept" if row["kept"] else f"not kept: {row['reason']}"
        lines.append(
            f"  {row['model']} static int8, on {row['images']} calibration images, against "
            f"{row.get('against') or 'fp32'}: {guard_text(row)} ({answer})"
        )
    return lines


def backend_lines(backend: str, facts: dict[str, Any]) -> list[str]:
    """Which backend ran an embed job's model, and why: auto's measured rates, int8's guard or
    cosine to float, a failed conversion."""
    line = f"backend: {backend}"
    if "auto" in facts:
        line += f" (auto, measured images/s: {rates_text(facts['auto']['rates'])})"
    if "fallback_from" in facts:
        line += f" ({facts['fallback_from']} could not convert the model: {facts['reason']})"
    lines = [line]
    if "int8" in facts:
        lines.append(_int8_line(facts["int8"]))
    if "int8_note" in facts:
        lines.append(f"int8 weights only: {facts['int8_note']}")
    if "cosine_to_fp32" in facts:
        cos = facts["cosine_to_fp32"]
        lines.append(
            f"int8 vectors against fp32 on {cos['images']} images: cosine min "
            f"{cos['min']}, mean {cos['mean']}"
        )
    return lines


def rates_text(measured: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in measured.items())


def guard_text(facts: dict[str, Any]) -> str:
    """What static int8's guard measured against float on the calibration images."""
    return (
        f"cosine min {facts['cosine_min']}, median {facts['cosine_median']}; "
        f"top-{facts['k']} neighbours kept {facts['neighbours']:.1%}"
    )


def _int8_line(facts: dict[str, Any]) -> str:
    """Static int8's guard, measured on the calibration images: used, or why not."""
    if "cosine_min" not in facts:
        return f"int8 not used: {facts['reason']}"
    measured = (
        f"on {facts['images']} of the dataset's images, int8 against "
        f"{facts.get('against') or 'fp32'}: {guard_text(facts)}"
    )
    if "used" not in facts:  # asked for
        kept = "" if facts["kept"] else f", though {facts['reason']}"
        return f"static int8 as asked{kept} ({measured})"
    if facts["used"]:
        return f"static int8 used ({measured})"
    return f"int8 not used: {facts['reason']} ({measured})"
