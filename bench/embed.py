"""Embedding speed: the pipeline against the model alone, and against the simple way.

    .venv/bin/python bench/embed.py                                   # CPU, small and base
    .venv/bin/python bench/embed.py --models random:dinov2-base --device cuda \\
        --batch-size 256 --images 5000                                # a GPU machine

On the demo data at 640x480 JPEG (written once under --data), for each model, in one run:
  model-only   pre-decoded uint8 crops through the model (normalisation included), no I/O;
  end-to-end   `visor embed` on an ingested dataset: read files, decode, resize, crop on
               worker threads, model, vectors committed to DuckDB (model load excluded),
               image quality measured from the same decode (and once without: `quality_cost`
               is the share of the job's rate that measuring quality costs);
  simple       one Python thread: PIL decodes each full image, the Hugging Face image
               processor prepares it, batches of 32 in fp32 (torch keeps its own threads).
The three are measured in interleaved rounds (--rounds, default 3) and the medians reported,
so a noisy machine slows all alike. Prints images/s for each and the ratios end-to-end /
model-only and end-to-end / simple.
Random weights: speed does not depend on weight values.

    .venv/bin/python bench/embed.py --backends torch,openvino,openvino:int8 --no-simple

compares inference backends instead: per backend the time to load and convert the model
once, then model-only and end-to-end images/s in interleaved rounds, and the speed-up over
the first backend named. `openvino:int8` is the openvino backend at precision int8: static
int8 calibrated on the dataset's first images on a CPU with VNNI or AMX (its cosine to fp32
and top-10 neighbours kept on those images are printed), int8 weights elsewhere (their
cosine to fp32). Two candidates that are not Visor backends can be
measured beside them, model-only: `onnxruntime` (the model exported to ONNX, run by ONNX
Runtime's CPU provider; `.venv/bin/pip install onnxruntime onnx` first) and `torch-compile`
(torch.compile, inductor, on the CPU); their setup time is the export or the first compiled
call.

With --backends each row also gives the ceiling this CPU puts on the model: the model's
GFLOP per image (counted by torch's FlopCounterMode on the model itself), the best matrix
multiply rate measured in each round on the model's own layer shapes and precision, the
images/s that rate allows, and the share of it each backend reaches.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from visor.config import Settings
from visor.embedding import int8
from visor.embedding.cpu import cpu_has_bf16, cpu_has_int8
from visor.embedding.models import DINOV2_PREPROCESSING, load_model
from visor.synthetic import generate
from visor.workspace import Workspace


def model_only(
    name: str,
    device: str,
    precision: str | None,
    crops: np.ndarray,
    batch: int,
    backend: str = "torch",
) -> float:
    backend, precision = _spec(backend, precision)
    if backend in CANDIDATES:
        normalize = load_model(name, device, "fp32").preprocessing.normalize
        return _candidate_rate(CANDIDATES[backend](name, device), normalize, crops, batch)
    # int8 is calibrated on the first of the same crops, as the job calibrates on the
    # dataset's first images (static int8 on a CPU with VNNI or AMX, int8 weights elsewhere).
    first = crops[: int8.CALIBRATION_IMAGES]
    embedder = load_model(name, device, precision, backend, calibration=lambda _: first)
    pixels = torch.from_numpy(crops)
    if device.startswith("cuda"):
        pixels = pixels.pin_memory()
    embedder.forward(pixels[:batch]).cpu()  # warm-up
    started = time.perf_counter()
    for start in range(0, len(pixels), batch):
        embedder.forward(pixels[start : start + batch]).cpu()
    return len(pixels) / (time.perf_counter() - started)


def model_gflop(name: str, device: str) -> float:
    """GFLOP per image of the model at its input size (matrix multiplies and attention, as
    torch's flop counter counts them; element-wise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    embedder = load_model(name, device, "fp32")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        embedder.model(pixel_values=torch.zeros(1, 3, *_input_hw(embedder), device=device))
    return counter.get_total_flops() / 1e9


def _input_hw(embedder: Any) -> tuple[int, int]:
    return embedder.preprocessing.input_hw or (224, 224)


def matmul_rates(name: str, device: str, precision: str, batch: int) -> dict[str, float]:
    """The best matrix-multiply rate (GFLOP/s) of this machine on the model's own layer
    shapes (a batch's tokens x hidden x 4*hidden, both ways, and a square 4096 product), at
    `precision` (bf16 and fp16 as torch runs them here), with torch's threads."""
    embedder = load_model(name, device, "fp32")
    # the transformers model inside the image tower (CLS token, or CLIP's image features)
    config: Any = getattr(embedder.model, "inner", embedder.model).config
    config = getattr(config, "vision_config", config)
    height, width = _input_hw(embedder)
    patch, hidden = int(config.patch_size), int(config.hidden_size)
    tokens = batch * ((height // patch) * (width // patch) + 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    shapes = [(tokens, hidden, 4 * hidden), (tokens, 4 * hidden, hidden), (4096, 4096, 4096)]
    rates: dict[str, float] = {}
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device).to(dtype)
        b = torch.randn(k, n, device=device).to(dtype)
        a @ b  # warm-up
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            (a @ b).sum().item()
            best = min(best, time.perf_counter() - started)
        rates[f"{m}x{k}x{n}"] = round(2 * m * k * n / best / 1e9, 1)
    return rates


def _spec(backend: str, precision: str | None) -> tuple[str, str | None]:
    """`openvino:int8` → ("openvino", "int8"); a plain name keeps the run's precision."""
    name, _, asked = backend.partition(":")
    return name, asked or precision


def _cls(name: str, device: str) -> torch.nn.Module:
    """The fp32 model as a module from normalised pixels to CLS vectors."""
    from visor.embedding.backends import cls_module

    return cls_module(load_model(name, device, "fp32").model)


Forward = Callable[[np.ndarray], np.ndarray]  # normalised pixels -> CLS vectors
_candidates: dict[tuple[str, str], Forward] = {}


def _onnxruntime(name: str, device: str) -> Forward:
    """The model exported to ONNX once, run by ONNX Runtime (CPU provider, as many threads
    as torch). Not a Visor dependency: `.venv/bin/pip install onnxruntime onnx` first."""
    try:
        import onnx  # noqa: F401  (the exporter writes with it)
        import onnxruntime as ort
    except ImportError as e:
        message = f"{e.name} is not installed: .venv/bin/pip install onnxruntime onnx"
        raise SystemExit(message) from None

    if (name, "onnxruntime") not in _candidates:
        path = Path(tempfile.mkdtemp()) / "model.onnx"
        example = torch.zeros(2, 3, 224, 224)
        with torch.no_grad():
            torch.onnx.export(
                _cls(name, device), (example,), str(path), input_names=["pixels"],
                output_names=["cls"], dynamic_axes={"pixels": {0: "n"}}, dynamo=False,
            )  # fmt: skip
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        _candidates[(name, "onnxruntime")] = lambda x: session.run(None, {"pixels": x})[0]
    return _candidates[(name, "onnxruntime")]


def _torch_compile(name: str, device: str) -> Forward:
    """torch.compile (inductor) of the fp32 model; the first call compiles."""
    if (name, "torch-compile") not in _candidates:
        compiled = torch.compile(_cls(name, device))

        def run(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return compiled(torch.from_numpy(x)).numpy()

        run(np.zeros((2, 3, 224, 224), np.float32))
        _candidates[(name, "torch-compile")] = run
    return _candidates[(name, "torch-compile")]


CANDIDATES = {"onnxruntime": _onnxruntime, "torch-compile": _torch_compile}


def _candidate_rate(
    forward: Forward,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    crops: np.ndarray,
    batch: int,
) -> float:
    """Model-only images/s of a candidate: Visor's own normalisation, then `forward`."""

    def batch_of(start: int) -> np.ndarray:
        return normalize(torch.from_numpy(crops[start : start + batch])).numpy()

    forward(batch_of(0))
    started = time.perf_counter()
    for start in range(0, len(crops), batch):
        forward(batch_of(start))
    return len(crops) / (time.perf_counter() - started)


def end_to_end(
    ws: Workspace,
    name: str,
    device: str,
    precision: str | None,
    batch: int,
    workers: int | None,
    quality: bool = True,
    backend: str = "torch",
    processes: int = 0,
) -> dict[str, Any]:
    """One `visor embed --recompute` of the whole dataset: the job's result (images/s as the
    job measured it, the precision and backend it ran).
    `quality`: image quality measured from the same decode (the default), or not."""
    backend, precision = _spec(backend, precision)
    dataset = ws.dataset("bench")
    if quality:
        # Statistics are measured once per image: forgotten first, so that every round with
        # quality measures them, as a dataset's first job does.
        with ws.store.transaction() as cur:
            cur.execute("DELETE FROM image_quality WHERE dataset_id = ?", [dataset.id])
    job = dataset.embed(
        name,
        device=device,
        precision=precision,
        batch_size=batch,
        workers=workers,
        recompute=True,
        quality=quality,
        backend=backend,
        processes=processes,
        wait=True,
    )
    result = job["result"]
    assert result["backend"] == backend, result.get("backend_facts")
    assert result["failed_count"] == 0, result["failed"][:3]
    if quality:
        assert result["quality"]["measured_now"] == result["embedded"], result["quality"]
    return dict(result)


def simple(name: str, device: str, files: list[Path]) -> float:
    """The way most scripts do it."""
    from transformers import BitImageProcessorPil

    processor = BitImageProcessorPil(**DINOV2_PREPROCESSING)
    model = load_model(name, device, "fp32").model
    started = time.perf_counter()
    for start in range(0, len(files), 32):
        images = [Image.open(f).convert("RGB") for f in files[start : start + 32]]
        inputs = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        with torch.inference_mode():
            model(pixel_values=inputs).last_hidden_state[:, 0].cpu()
    return len(files) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--models", default="random:dinov2-small,random:dinov2-base")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default=None, help="auto|fp32|fp16|bf16")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats (medians)")
    parser.add_argument("--size", default="640x480", help="demo image size, e.g. 2048x1371")
    parser.add_argument("--no-simple", action="store_true", help="skip the simple-way baseline")
    parser.add_argument(
        "--backend",
        default="torch",
        help="the backend of the default measurement, e.g. openvino:int8 (the job's ratio to "
        "model-only with quality measured, for that backend)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="also measure the job decoding in this many worker processes (end_to_end_processes)",
    )
    parser.add_argument(
        "--backends", default=None, help="e.g. torch,openvino: compare inference backends instead"
    )
    parser.add_argument(
        "--fastdup-python",
        default=None,
        help="a Python with fastdup installed (its own venv: it pins NumPy 1.x): time it too",
    )
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "visor-bench-embed"
    )
    args = parser.parse_args()

    width, height = (int(v) for v in args.size.split("x"))
    data = args.data / f"{args.images}" if args.size == "640x480" else (
        args.data / f"{args.images}-{args.size}"
    )  # fmt: skip
    if not (data / ".complete").exists():
        print(f"writing {args.images} demo images ({args.size}) to {data}", file=sys.stderr)
        generate(data, args.images, size=(width, height), seed=3)
        (data / ".complete").touch()
    files = sorted(data.rglob("*.jpg"))
    device = load_model("random:dinov2-tiny", args.device).device
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, {len(files)} images, "
        f"batch {args.batch_size}; this CPU: int8 dot products {cpu_has_int8()}, "
        f"bf16 {cpu_has_bf16()}",
        file=sys.stderr,
    )

    with tempfile.TemporaryDirectory() as home, Workspace(Settings(home=Path(home))) as ws:
        ws.jobs.wait(ws.ingest(str(data), "bench")["id"])
        if args.fastdup_python:
            print(json.dumps(fastdup_rate(args.fastdup_python, data, len(files))))
        for name in args.models.split(","):
            if args.backends:
                print(json.dumps(measure_backends(ws, name, device, files, args, Path(home))))
            else:
                print(json.dumps(measure(ws, name, device, files, args)))


def measure(
    ws: Workspace, name: str, device: str, files: list[Path], args: argparse.Namespace
) -> dict[str, object]:
    """Rounds of (model-only, end-to-end, simple), interleaved so that a noisy machine slows
    all three alike; medians over the rounds."""
    embedder = load_model(name, device, "fp32")
    crops = np.stack([embedder.preprocessing.prepare(f.read_bytes(), f.name) for f in files])
    backend = args.backend
    rates: dict[str, list[float]] = {
        "model_only": [],
        "end_to_end": [],
        "end_to_end_no_quality": [],
        "simple": [],
    }
    precision = args.precision
    for _ in range(args.rounds):
        rates["model_only"].append(
            model_only(name, device, args.precision, crops, args.batch_size, backend)
        )
        result = end_to_end(
            ws, name, device, args.precision, args.batch_size, args.workers, backend=backend
        )
        rates["end_to_end"].append(float(result["images_per_s"]))
        precision = result["precision"]
        no_quality = end_to_end(
            ws, name, device, args.precision, args.batch_size, args.workers,
            quality=False, backend=backend,
        )  # fmt: skip
        rates["end_to_end_no_quality"].append(float(no_quality["images_per_s"]))
        if args.processes:
            in_processes = end_to_end(
                ws, name, device, args.precision, args.batch_size, args.workers,
                backend=backend, processes=args.processes,
            )  # fmt: skip
            rates.setdefault("end_to_end_processes", []).append(float(in_processes["images_per_s"]))
        if not args.no_simple:
            rates["simple"].append(simple(name, device, files))
    med = {k: float(np.median(v)) for k, v in rates.items() if v}
    row: dict[str, object] = {
        "model": name,
        "device": device,
        "backend": backend,
        "precision": precision,
        "batch_size": args.batch_size,
        "images": len(files),
        "rounds": args.rounds,
        **{f"{k}_images_per_s": round(v, 2) for k, v in med.items()},
        "ratio_end_to_end_to_model_only": round(med["end_to_end"] / med["model_only"], 3),
        # What measuring image quality in the same pass costs the embed job.
        "quality_cost": round(1 - med["end_to_end"] / med["end_to_end_no_quality"], 3),
    }
    if "simple" in med:
        row["speedup_over_simple"] = round(med["end_to_end"] / med["simple"], 2)
    return row


_FASTDUP = """
import sys, tempfile, time
import fastdup
started = time.perf_counter()
fastdup.create(input_dir=sys.argv[1], work_dir=tempfile.mkdtemp()).run(overwrite=True,
                                                                     verbose=False)
print(time.perf_counter() - started)
"""


def fastdup_rate(python: str, data: Path, images: int) -> dict[str, object]:
    """fastdup over the same folder (its own model, embedding, similarity, outliers and
    components), in its own Python; its whole run, start-up included."""
    import subprocess

    done = subprocess.run(
        [python, "-c", _FASTDUP, str(data)], capture_output=True, text=True, check=True
    )
    seconds = float(done.stdout.strip().splitlines()[-1])
    return {
        "fastdup_seconds": round(seconds, 2),
        "fastdup_images_per_s": round(images / seconds, 1),
    }


def measure_backends(
    ws: Workspace,
    name: str,
    device: str,
    files: list[Path],
    args: argparse.Namespace,
    home: Path,
) -> dict[str, object]:
    """Per backend: the time to convert the model (first use, empty cache), then rounds of
    (model-only, end-to-end without quality) over every backend, interleaved; medians, and
    each backend's speed-up over torch."""
    from visor.embedding import models

    backends = args.backends.split(",")
    setup: dict[str, float] = {}
    for backend in backends:
        models._cache.clear()
        started = time.perf_counter()
        kind, precision = _spec(backend, args.precision)
        if kind in CANDIDATES:
            CANDIDATES[kind](name, device)
        else:
            load_model(name, device, precision, kind, cache_dir=home / "compiled")
        setup[backend] = round(time.perf_counter() - started, 1)
    embedder = load_model(name, device, args.precision)
    crops = np.stack([embedder.preprocessing.prepare(f.read_bytes(), f.name) for f in files])
    rates: dict[str, list[float]] = {}
    facts: dict[str, object] = {}
    matmuls: list[dict[str, float]] = []  # the machine's matmul rates, measured every round
    for _ in range(args.rounds):
        matmuls.append(matmul_rates(name, device, str(embedder.precision), args.batch_size))
        for backend in backends:
            rates.setdefault(f"{backend}_model_only", []).append(
                model_only(name, device, args.precision, crops, args.batch_size, backend)
            )
            if _spec(backend, None)[0] in CANDIDATES:
                continue  # not a Visor backend: no job runs it
            result = end_to_end(
                ws, name, device, args.precision, args.batch_size, args.workers,
                quality=False, backend=backend,
            )  # fmt: skip
            rates.setdefault(f"{backend}_end_to_end", []).append(float(result["images_per_s"]))
            cosine = result.get("backend_facts", {}).get("cosine_to_fp32")
            if cosine:
                facts[f"{backend}_cosine_to_fp32"] = cosine
            guard = result.get("backend_facts", {}).get("int8")
            if guard:  # static int8: against fp32 on the calibration images
                facts[f"{backend}_static"] = guard
    med = {k: round(float(np.median(v)), 2) for k, v in rates.items()}
    row: dict[str, object] = {
        "model": name,
        "precision": embedder.precision,
        "images": len(files),
        "image_size": args.size,
        "batch_size": args.batch_size,
        "setup_s": setup,
        **{f"{k}_images_per_s": v for k, v in med.items()},
        **facts,
    }
    # The ceiling: what the best matrix-multiply rate of the rounds allows (a busy moment on
    # a shared machine only lowers a round's), and each backend's share of it.
    gflop = model_gflop(name, device)
    per_round = [max(rates.values()) for rates in matmuls]
    peak = max(per_round)
    ceiling = peak / gflop
    row.update(
        gflop_per_image=round(gflop, 2), matmul_gflops=matmuls[per_round.index(peak)],
        peak_gflops=peak, ceiling_images_per_s=round(ceiling, 2), peak_gflops_per_round=per_round,
    )  # fmt: skip
    for key, value in med.items():
        if key.endswith("_model_only"):
            row[f"{key}_share_of_ceiling"] = round(value / ceiling, 2)
    first = backends[0]
    for backend in backends[1:]:
        for part in ("model_only", "end_to_end"):
            if f"{backend}_{part}" in med:
                row[f"{backend}_speedup_{part}"] = round(
                    med[f"{backend}_{part}"] / med[f"{first}_{part}"], 2
                )
    return row


if __name__ == "__main__":
    main()
