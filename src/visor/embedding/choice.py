"""Which backend and precision run a loaded model on this machine (`models.load_model`):
PyTorch as loaded, the model converted to OpenVINO, or the faster of the two (auto, measured
once per model and machine and kept); and int8.

int8 comes in two kinds (`backends.openvino_runner`): static (weights and activations, the
activations calibrated on the dataset's images, `int8.py`) on a CPU with int8 dot products,
and int8 weights computed in f32 elsewhere or without images to calibrate on. Asked for
(`precision="int8"`) it is used, its agreement with fp32 reported; with precision auto on a
CPU with int8 dot products it is considered, and kept only when the guard passes and it is
faster than the best float choice; otherwise the float choice runs, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visor.embedding import backends, int8
from visor.embedding.backends import FloatModel, Runner, openvino_runner
from visor.embedding.cpu import cpu_flags, cpu_has_int8

if TYPE_CHECKING:
    from visor.embedding.models import Embedder

log = logging.getLogger("visor.models")


def pick(
    base: Embedder,
    backend: str,
    folder: Path,
    *,
    consider_int8: bool = False,
    calibration: np.ndarray | None = None,
    images: Callable[[Embedder], int] | None = None,
) -> Embedder:
    """`base` (the PyTorch model) run by `backend` (torch, openvino or auto); int8 as asked by
    its precision, or considered (`consider_int8`) with `calibration` (uint8 model inputs of
    the dataset's first images) where it can pay for itself on the job's `images` (how many
    it will embed, asked only when this machine has a record to weigh them against)."""
    if base.precision == "int8":
        return _asked_int8(base, folder, calibration)
    if backend == "auto":
        best = _auto(base, folder)
    elif backend == "torch":
        best = base
    else:
        best = _converted(base, backend, folder)
    if not consider_int8 or calibration is None:
        return best
    return _auto_int8(best, base, folder, calibration, images)


def _auto(base: Embedder, folder: Path) -> Embedder:
    """The faster of PyTorch and OpenVINO for this model on this machine: measured on a
    batch of 8, four times each in turn, on first use (after converting), kept in `folder`
    and read from there after."""
    key = backends.choice_key(base.name, base.precision, cpu_flags())
    recorded = backends.recorded_choices(folder).get(key)
    if recorded is not None and backends.fastest(recorded["rates"]) == "torch":
        return replace(base, backend_facts={"auto": recorded})
    converted = _converted(base, "openvino", folder)
    if converted.runner is None:
        return converted  # could not convert: torch, with the reason
    if recorded is None:
        rates = backends.measure_rates(
            {"torch": base.forward, "openvino": converted.forward}, _probe(base)
        )
        backends.record_choice(folder, key, rates)
        log.info("%s: measured images/s %s; using %s", base.name, rates, backends.fastest(rates))
        recorded = {"rates": rates, "measured_now": True}
    chosen = converted if backends.fastest(recorded["rates"]) == "openvino" else base
    return replace(chosen, backend_facts={**chosen.backend_facts, "auto": recorded})


def _probe(base: Embedder) -> Any:
    """8 images of random pixels to time a model on."""
    import torch

    hw = base.preprocessing.input_hw or (224, 224)
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, (8, *hw, 3), dtype=np.uint8))


def _converted(
    base: Embedder,
    backend: str,
    folder: Path,
    calibration: np.ndarray | None = None,
    float_model: FloatModel | None = None,
) -> Embedder:
    """`base` with its model run by `backend`; `base` itself, with a one-line warning, when
    the model can't be converted."""
    try:
        runner, facts = openvino_runner(
            base.name, base.model, base.precision, base.preprocessing, folder, calibration,
            float_model=float_model,
        )  # fmt: skip
    except Exception as e:  # any exporter failure: the job still runs, on PyTorch
        log.warning("%s: %s conversion failed (%s); using torch", base.name, backend, e)
        return replace(base, backend_facts={"fallback_from": backend, "reason": str(e)[:300]})
    log.info("%s on %s: %s", base.name, backend, facts)
    if facts.get("quantization") == "weights":
        runner = _compared_to_fp32(runner, base, facts)
    return replace(base, backend=backend, runner=runner, backend_facts=facts)


def _calibrated(base: Embedder, calibration: np.ndarray | None) -> tuple[np.ndarray | None, str]:
    """The calibration images (uint8 model inputs) for static int8, or None and why not."""
    if not cpu_has_int8():
        return None, "this CPU has no int8 dot products (VNNI, AMX): int8 weights only"
    if calibration is None:
        return None, "no images to calibrate on: int8 weights only"
    short = int8.shortfall(len(calibration))
    if short is not None:
        return None, short
    return calibration, ""


def _asked_int8(base: Embedder, folder: Path, calibration: np.ndarray | None) -> Embedder:
    """int8 as asked: static where it can be, else int8 weights, with the reason."""
    pixels, why = _calibrated(base, calibration)
    found = _converted(base, "openvino", folder, pixels)
    if found.runner is not None and why:
        found.backend_facts["int8_note"] = why
    return found


def _auto_int8(
    best: Embedder,
    base: Embedder,
    folder: Path,
    calibration: np.ndarray,
    images: Callable[[Embedder], int] | None,
) -> Embedder:
    """Static int8 in place of `best` (the float choice) when it keeps the answers and runs
    at least `int8.MIN_SPEEDUP` times as fast; `best` otherwise, with the reason in its facts
    (`int8`)."""
    pixels, why = _calibrated(base, calibration)
    if pixels is None:
        return _with_int8(best, {"used": False, "reason": why})
    float_name = best.runs_as
    key = backends.choice_key(base.name, f"int8 or {best.precision}", cpu_flags())
    recorded = backends.recorded_choices(folder).get(key)
    unpaid = _unpaid(recorded, best, base, folder, pixels, images)
    if unpaid is not None:
        return _with_int8(best, unpaid)
    candidate = _converted(
        replace(base, precision="int8"), "openvino", folder, pixels, _float_model(best, calibration)
    )
    if candidate.runner is None:
        return _with_int8(best, {"used": False, "reason": "int8 conversion failed"})
    guard = candidate.backend_facts["int8"]
    if not guard["kept"]:
        return _with_int8(best, {**guard, "used": False})
    # What making it took here, kept to weigh the next dataset's int8 against (`_unpaid`).
    making = None if candidate.backend_facts["from_cache"] else candidate.backend_facts["seconds"]
    if recorded is None or set(recorded["rates"]) != {"openvino int8", float_name}:
        rates = backends.measure_rates(
            {"openvino int8": candidate.forward, float_name: best.forward}, _probe(base)
        )
        backends.record_choice(folder, key, rates, making)
        recorded = {"rates": rates, "measured_now": True}
    elif making is not None:
        backends.record_choice(folder, key, recorded["rates"], making)
    slow = int8.too_slow(recorded["rates"], float_name)
    if slow is not None:
        return _with_int8(best, {**guard, "used": False, "reason": slow})
    facts = {**candidate.backend_facts, "int8": {**guard, "used": True}, "auto": recorded}
    return replace(candidate, backend_facts=facts)


def _unpaid(
    recorded: dict[str, Any] | None,
    best: Embedder,
    base: Embedder,
    folder: Path,
    pixels: np.ndarray,
    images: Callable[[Embedder], int] | None,
) -> dict[str, Any] | None:
    """Why static int8 is not made for this job: the time it would save on the job's images
    is less than the time making it takes. Weighed on this machine's record (int8's and the
    float choice's images/s, and the seconds making int8 took: a small dataset, or a CPU where
    int8 is barely faster: on the AMX Xeon dinov2-small int8 ran 91 images/s against bf16's
    86, and making it took 13.6 s); before anything is recorded, by what no CPU can beat
    (`_too_few`). None where it may pay, where a record lacks what it would take, or where
    this calibration set's int8 is already made."""
    size = base.preprocessing.input_hw
    if images is None or size is None:
        return None
    if backends.model_file(base.name, base.model, "int8", size, folder, pixels).exists():
        return None
    float_name = best.runs_as
    if recorded is None:
        return _too_few(images(base), len(pixels), float_name, best.precision)
    rates = recorded["rates"]
    if "making_s" not in recorded or set(rates) != {"openvino int8", float_name}:
        return None
    try:  # the record is a file a person may have edited: anything odd, and int8 is made
        making = float(recorded["making_s"])
        per_image = 1 / float(rates[float_name]) - 1 / float(rates["openvino int8"])
        slow = int8.too_slow(rates, float_name)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    count = images(base)
    saves = count * per_image
    if saves >= making and slow is None:
        return None
    if slow is not None:  # it would not be used once made
        reason = slow
    else:
        reason = (
            f"it would save {saves:.1f} s on {count:,} images ({rates['openvino int8']} against "
            f"{rates[float_name]} images/s) and making it took {making:.1f} s here"
        )
    return {
        "used": False,
        "reason": reason,
        "unpaid": True,
        "saves_s": round(saves, 2),
        "making_s": making,
    }


def _too_few(
    count: int, calibration: int, float_name: str, precision: str
) -> dict[str, Any] | None:
    """Before int8 was ever made here: making it runs the model in f32 twice over the
    calibration images (nncf's statistics, then its ranges, in batches of 8), at least as
    long as twice as many images take in the float choice. int8 runs at most `ceiling` times
    as fast as the float choice, by the operations a core does a cycle: AMX and VNNI twice as
    many in int8 as in bf16; VNNI four times as many as AVX-512 in fp32, AMX 32 times. So it
    saves at most (1 - 1/ceiling) of `count` images' time; where that is less, no CPU of the
    kind makes it pay. None otherwise."""
    amx = "amx_int8" in cpu_flags()
    ceiling = 2 if precision == "bf16" else (32 if amx else 4)
    if count * (1 - 1 / ceiling) >= 2 * calibration:
        return None
    return {
        "used": False,
        "reason": (
            f"it can't pay for itself on {count:,} images: making it runs the model twice over "
            f"{calibration} images in f32, and int8 runs at most {ceiling}x as fast as "
            f"{float_name}"
        ),
        "unpaid": True,
    }


def _float_model(best: Embedder, calibration: np.ndarray) -> FloatModel:
    """`best` (the float choice) as what static int8 is made from and measured against: its
    vectors of the calibration images (bf16 where it runs in bf16: measured on the AMX Xeon,
    64 images of dinov2-small, 1.2 s against 3.6 s in f32, cosine 0.99996 to f32's), and its
    conversion, read rather than made again (2.9 s)."""
    import torch

    def vectors() -> np.ndarray:
        return backends.in_batches(
            lambda pixels: best.forward(torch.from_numpy(pixels)).numpy(), calibration
        )

    file = best.backend_facts.get("file") if best.runner is not None else None
    return FloatModel(best.runs_as, vectors, Path(file) if file else None)


def _with_int8(chosen: Embedder, facts: dict[str, Any]) -> Embedder:
    log.info("%s: int8 not used (%s)", chosen.name, facts.get("reason"))
    return replace(chosen, backend_facts={**chosen.backend_facts, "int8": facts})


def _compared_to_fp32(runner: Runner, base: Embedder, facts: dict[str, Any]) -> Runner:
    """`runner`, whose first batch also runs through PyTorch fp32: the cosines of the int8
    vectors to those go to `facts["cosine_to_fp32"]` (min, mean, images), which the job
    reports."""
    import torch

    fp32 = base.model

    def run(pixels: np.ndarray) -> np.ndarray:
        vectors = runner(pixels)
        if "cosine_to_fp32" not in facts:
            with torch.inference_mode():
                normalized = base.preprocessing.normalize(torch.from_numpy(pixels))
                reference = fp32(normalized).float().numpy()
            cosines = (vectors * reference).sum(1) / (
                np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1) + 1e-12
            )
            facts["cosine_to_fp32"] = {
                "min": round(float(cosines.min()), 5),
                "mean": round(float(cosines.mean()), 5),
                "images": len(cosines),
            }
            log.info("%s int8: cosine to fp32 %s", base.name, facts["cosine_to_fp32"])
        return vectors

    return run
