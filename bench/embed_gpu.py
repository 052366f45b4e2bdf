"""Embedding speed on a GPU machine that has PyTorch but not Visor's other dependencies (no
DuckDB): the pipeline alone, against the model alone, per model, in interleaved rounds.

    python3 bench/embed_gpu.py                           # dinov2-small/base/large, fp16
    python3 bench/embed_gpu.py --images 4000 --batch-size 256 --rounds 2
    python3 bench/embed_gpu.py --models random:dinov2-base --processes 0,16   # threads vs processes

The same machine's CPU, on N of its cores, per inference backend (another CPU than the
development machines': one with bf16 instructions, say):

    python3 bench/embed_gpu.py --device cpu --cpus 2 --precision bf16 \
        --backends torch,openvino --models random:dinov2-small --batch-size 32 --images 256

On demo images (640x480 JPEG, written once): model-only is pre-decoded uint8 crops through
the model (normalisation included, copies to the GPU included); pipeline is `embed_images`
over the files (read, decode, resize, crop on worker threads, model), everything of `visor
embed` but committing the vectors to DuckDB. Random weights: speed does not depend on them.
Prints one JSON line per model: images/s, medians over the rounds, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
from functools import partial
from pathlib import Path
from typing import Any

# The embedding modules only: the package's __init__ would import the store and the server.
_SRC = Path(__file__).resolve().parent.parent / "src"
sys.modules.setdefault("visor", types.ModuleType("visor"))
sys.modules["visor"].__path__ = [str(_SRC / "visor")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from visor.embedding.cpu import cpu_flags  # noqa: E402
from visor.embedding.models import load_model  # noqa: E402
from visor.embedding.pipeline import ImageItem, embed_images  # noqa: E402


def write_images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    files = []
    for i in range(n):
        path = folder / f"{i:06d}.jpg"
        if not path.exists():
            small = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
            small.resize((640, 480), Image.Resampling.BICUBIC).save(path, quality=90)
        files.append(path)
    return files


DEVICE = "cuda"


COMPILED = Path(tempfile.gettempdir()) / "visor-gpu-compiled"


def device_name() -> str:
    if DEVICE.startswith("cuda"):
        return torch.cuda.get_device_name()
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return DEVICE
    model = next((line.split(":", 1)[1].strip() for line in info if "model name" in line), "")
    extras = sorted(cpu_flags() & {"avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni"})
    return f"{model} ({', '.join(extras) or 'no AVX-512'}), {torch.get_num_threads()} threads"


def load(name: str, precision: str, backend: str) -> Any:
    return load_model(name, DEVICE, precision, backend, cache_dir=COMPILED)


def model_only(
    name: str, precision: str, crops: np.ndarray, batch: int, backend: str = "torch"
) -> float:
    embedder = load(name, precision, backend)
    pixels = torch.from_numpy(crops)
    if DEVICE.startswith("cuda"):
        pixels = pixels.pin_memory()
    embedder.forward(pixels[:batch]).cpu()  # warm-up
    started = time.perf_counter()
    for start in range(0, len(pixels), batch):
        embedder.forward(pixels[start : start + batch]).cpu()
    return len(pixels) / (time.perf_counter() - started)


def pipeline(
    name: str,
    precision: str,
    files: list[Path],
    batch: int,
    workers: int,
    backend: str = "torch",
    processes: int = 0,
) -> float:
    embedder = load(name, precision, backend)
    items = [ImageItem(i, f.name, partial(f.read_bytes)) for i, f in enumerate(files)]
    started = time.perf_counter()
    batches = embed_images(embedder, items, batch_size=batch, workers=workers, processes=processes)
    done = sum(b.count for b in batches)
    assert done == len(files)
    return len(files) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default="random:dinov2-small,random:dinov2-base,random:dinov2-large"
    )
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (16; --cpus)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "visor-gpu")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu")
    parser.add_argument("--backends", default="torch", help="e.g. torch,openvino (CPU)")
    parser.add_argument("--cpus", type=int, default=None, help="run on the first N cores only")
    parser.add_argument(
        "--processes",
        default="0",
        help="decoding processes, one pipeline row each: 0 (threads), or e.g. 0,16",
    )
    args = parser.parse_args()
    counts = [int(p) for p in args.processes.split(",")]
    global DEVICE
    DEVICE = args.device
    if args.cpus:  # this process and its threads on N cores, as on an N-core machine
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cpus])
        torch.set_num_threads(args.cpus)
    workers = args.workers or args.cpus or 16
    started = time.perf_counter()
    files = write_images(args.data, args.images)
    print(f"{len(files)} images in {time.perf_counter() - started:.1f} s on "
          f"{device_name()}", file=sys.stderr, flush=True)  # fmt: skip
    for name in args.models.split(","):
        embedder = load_model(name, DEVICE, args.precision)
        crops = np.stack([embedder.preprocessing.prepare(f.read_bytes(), f.name) for f in files])
        backends = args.backends.split(",")
        runs = [f"pipeline_p{p}" if p else "pipeline" for p in counts]
        rates: dict[str, dict[str, list[float]]] = {b: {"model_only": [], **{r: [] for r in runs}}
                                                    for b in backends}  # fmt: skip
        warm = files[: args.batch_size * 2]
        for backend in backends:  # warm-up, conversion included
            pipeline(name, args.precision, warm, args.batch_size, workers, backend)
        for _ in range(args.rounds):
            for backend in backends:
                found = rates[backend]
                found["model_only"].append(
                    model_only(name, args.precision, crops, args.batch_size, backend)
                )
                for run, count in zip(runs, counts, strict=True):
                    found[run].append(pipeline(
                        name, args.precision, files, args.batch_size, workers, backend, count
                    ))  # fmt: skip
        for backend in backends:
            medians = {k: round(statistics.median(v), 1) for k, v in rates[backend].items()}
            print(json.dumps({"model": name, "precision": args.precision, "backend": backend,
                              "device": device_name(), "images": len(files),
                              "batch": args.batch_size, **medians,
                              **{f"ratio_{r}": round(medians[r] / medians["model_only"], 3)
                                 for r in runs}}),
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
