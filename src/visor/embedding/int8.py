"""Static int8 on CPUs with int8 dot products (AVX512-VNNI, AVX-VNNI, AMX): weights and
activations in int8, the activations' ranges calibrated on the dataset's own images, and a
guard that says whether the quantized model keeps the answers.

Calibration: the first `CALIBRATION_IMAGES` images of the dataset (by sample id) as the job
decodes them, so the same dataset gives the same set, and the quantized model cached under
the home folder is found again (the set's digest is part of its key). Fewer than
`MIN_CALIBRATION` readable images (a tiny dataset): no static int8, said in one line.

The guard compares the int8 vectors of the calibration images with the same model's float
vectors (the float choice's: fp32, or bf16 on a CPU that runs it, `choice._float_model`):
the cosine of every image's pair ≥ `MIN_COSINE`, and each image's 10 nearest neighbours
among the calibration images the same in ≥ `MIN_NEIGHBOURS` of the places (the neighbours
a user would see, whatever their order among themselves: two near-equal neighbours swap
places under any change of arithmetic, fp32 on another CPU included).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# uint8 model inputs (n, h, w, 3) -> what the converted model takes
Normalize = Callable[["torch.Tensor"], "torch.Tensor"]

CALIBRATION_IMAGES = 64  # nncf took 27.6 s on 128, 17.2 s on 64 (2 cores); the guard passes alike
MIN_CALIBRATION = 32
MIN_COSINE = 0.995
MIN_NEIGHBOURS = 0.95
# auto uses int8 only where it runs this many times as fast as the float choice: its vectors
# are a little off the float ones, and a tie is no reason to take them (the AMX Xeon measured
# int8 93.9 against bf16 93.8 images/s, dinov2-small; rates move by ~5% between runs there).
MIN_SPEEDUP = 1.1
NEIGHBOURS = 10
_BATCH = 8


def digest(pixels: np.ndarray) -> str:
    """What identifies a calibration set: its model inputs, byte for byte."""
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:16]


def shortfall(count: int) -> str | None:
    """Why `count` calibration images are too few for static int8, or None."""
    if count >= MIN_CALIBRATION:
        return None
    return (
        f"static int8 needs {MIN_CALIBRATION} readable images to calibrate on; "
        f"this dataset has {count}"
    )


def quantize(converted: Any, pixels: np.ndarray, normalize: Normalize) -> Any:
    """`converted` (an OpenVINO model) with int8 weights and activations, the activations'
    ranges taken from `pixels` (uint8 model inputs, (n, h, w, 3), as `normalize` makes them
    the model's input); transformer rules (SmoothQuant on the matmuls, softmax and layer
    norms kept in float)."""
    import nncf
    import torch

    pixels = normalize(torch.from_numpy(pixels)).numpy()

    nncf.set_log_level(logging.ERROR)
    # In batches: nncf runs the model in f32 over them twice (SmoothQuant's statistics, then
    # the ranges'); a batch of 8 rather than one image at a time took 9.3-9.8 s against
    # 10.4-10.6 (dinov2-small, 64 images, AMX Xeon) with the same guard (cosine min 0.99942
    # against 0.99935, neighbours kept 99.5% either way).
    batches = [pixels[i : i + _BATCH] for i in range(0, len(pixels), _BATCH)]
    with contextlib.redirect_stdout(io.StringIO()):  # its progress bar: the job has its own
        return nncf.quantize(
            converted,
            nncf.Dataset(batches),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(batches),  # nncf counts the items it is given
        )


def weights_only(converted: Any) -> Any:
    """Weights stored as int8 (per output channel), computed in f32: int8 on a CPU without
    int8 dot products, where static int8 (activations too) was slower than f32 (8.1 against
    10.5 images/s, dinov2-small, AVX2 only), or without images to calibrate on."""
    import nncf

    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):  # its progress bar: the job has its own
        return nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_ASYM)


def too_slow(rates: dict[str, Any], float_name: str) -> str | None:
    """Why int8 at `rates["openvino int8"]` images/s is not worth using in place of the
    float choice at `rates[float_name]`, or None. Raises on rates that aren't numbers."""
    fast, base = float(rates["openvino int8"]), float(rates[float_name])
    if fast <= base:
        return f"no faster than {float_name}"
    if fast < MIN_SPEEDUP * base:
        return (
            f"only {fast / base:.2f}x as fast as {float_name} ({fast:g} against {base:g} "
            f"images/s; int8 is used from {MIN_SPEEDUP:g}x)"
        )
    return None


def agreement(vectors: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How close int8 `vectors` are to the float `reference` (one row per calibration image):
    {images, cosine_min, cosine_median, neighbours (the share kept), k}."""
    a = _unit(vectors)
    b = _unit(reference)
    cosines = (a * b).sum(1)
    k = min(NEIGHBOURS, len(a) - 1)
    return {
        "images": len(a),
        "cosine_min": round(float(cosines.min()), 5),
        "cosine_median": round(float(np.median(cosines)), 5),
        "neighbours": round(neighbour_share(a, b, k), 4),
        "k": k,
    }


def verdict(facts: dict[str, Any]) -> dict[str, Any]:
    """`facts` (`agreement`'s) with the guard's answer: `kept`, and the `reason` when not."""
    reasons = []
    if facts["cosine_min"] < MIN_COSINE:
        against = facts.get("against", "fp32")
        reasons.append(f"cosine to {against} {facts['cosine_min']} < {MIN_COSINE} on some image")
    if facts["neighbours"] < MIN_NEIGHBOURS:
        reasons.append(
            f"top-{facts['k']} neighbours kept {facts['neighbours']:.1%} < {MIN_NEIGHBOURS:.0%}"
        )
    return {**facts, "kept": not reasons, "reason": "; ".join(reasons) or None}


def neighbour_share(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Of each row's `k` nearest other rows by cosine in `b`, the share that are among its
    `k` nearest in `a` too (unit rows)."""
    if k < 1:
        return 1.0
    near_a = _nearest(a, k)
    near_b = _nearest(b, k)
    kept = sum(len(set(x) & set(y)) for x, y in zip(near_a.tolist(), near_b.tolist(), strict=True))
    return kept / near_b.size


def _nearest(unit: np.ndarray, k: int) -> np.ndarray:
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)
