"""Inference backends for the embed model on a CPU: PyTorch as loaded (`torch`), or the same
model converted once to OpenVINO (`openvino`), which runs a ViT on a CPU faster than PyTorch
eager (bench/embed.py --backends). The converted model is cached under the home folder, keyed
by everything that could make it stale (model, a fingerprint of its weights, input size,
precision, and the versions of OpenVINO, PyTorch and transformers): another key, another file;
a cached file that fails to load is rebuilt, never used.

A backend runs the model part only: preprocessing, the pipeline's threads and the job stay
the same. A model that fails to convert falls back to PyTorch with a one-line warning.
`auto` times both on a model's first use on a machine and keeps the faster (the choice is
kept beside the converted models); precision int8 is OpenVINO with int8 weights (nncf), and
with int8 activations too (static int8, calibrated on the dataset's images) on a CPU with
int8 dot products (`int8.py`).
ONNX Runtime and torch.compile were measured too (bench/embed.py) and not kept: ONNX Runtime
was slower than OpenVINO; torch.compile was as fast (within the rounds' noise) but compiles
again in every process (about 30 s), where OpenVINO reads its cached model in about 1 s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import numpy as np

from visor.embedding import int8
from visor.errors import InvalidInput

if TYPE_CHECKING:
    import torch

    from visor.embedding.preprocess import Preprocessing
    from visor.embedding.towers import TextRunner

log = logging.getLogger("visor.backends")

BACKENDS = ("auto", "torch", "openvino")
INSTALL_HINT = {"openvino": "pip install openvino", "nncf": "pip install nncf"}
CHOICES_FILE = "backend-choice.json"  # auto's measured rates, per model and machine

# uint8 model inputs (n, h, w, 3) -> CLS vectors (n, dim), normalised by the compiled model
Runner = Callable[[np.ndarray], np.ndarray]


def check_backend(name: str | None, device: str, precision: str | None = None) -> str:
    """The backend to use: `torch`, `openvino`, or `auto` where both could run (a CPU with
    OpenVINO installed): auto measures both on first use of a model on a machine and keeps
    the faster (`models.load_model`). Precision int8 runs on OpenVINO only. A named backend
    that is not installed is an error that says how to install it."""
    name = (name or "auto").lower()
    if name not in BACKENDS:
        raise InvalidInput(f"backend {name!r}: use one of {', '.join(BACKENDS)}")
    if precision == "int8":
        if name == "torch":
            raise InvalidInput("precision int8 runs on the openvino backend (or auto), not torch")
        for module in ("openvino", "nncf"):
            if not installed(module):
                raise InvalidInput(f"precision int8 needs {module}: {INSTALL_HINT[module]}")
        return "openvino"
    if name != "torch" and device != "cpu":
        if name == "auto":
            return "torch"
        raise InvalidInput(f"backend {name}: runs on the CPU (this job's device is {device})")
    if name == "auto":
        return "auto" if installed("openvino") else "torch"
    if not installed(name):
        raise InvalidInput(f"backend {name} is not installed: {INSTALL_HINT[name]}")
    return name


def installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# -- auto: the faster backend, measured once per model, precision and machine ---------------


def choice_key(name: str, precision: str, cpu_flags: frozenset[str]) -> str:
    """What a measured choice depends on: the model, precision, this CPU (its architecture
    and instruction sets, `cpu.cpu_flags`), the threads the model gets and the libraries'
    versions."""
    import platform

    import openvino
    import torch

    flags = hashlib.sha256(" ".join(sorted(cpu_flags)).encode()).hexdigest()[:8]
    return "|".join(
        (name, precision, f"{platform.machine()}-{flags}", f"threads={torch.get_num_threads()}",
         f"torch={torch.__version__}", f"openvino={openvino.__version__}")
    )  # fmt: skip


def recorded_choices(folder: Path) -> dict[str, dict[str, Any]]:
    """The measured choices kept in `folder` (key → {"rates": {backend: images/s}, ...})."""
    try:
        found = json.loads((folder / CHOICES_FILE).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: measured again
    return found if isinstance(found, dict) else {}


def record_choice(
    folder: Path, key: str, rates: dict[str, float], making_s: float | None = None
) -> None:
    """Keep `rates` under `key`, and, for static int8 against a float choice, the seconds that
    making int8 took on this machine (`making_s`, kept from an earlier record when None)."""
    folder.mkdir(parents=True, exist_ok=True)
    choices = recorded_choices(folder)
    made = making_s if making_s is not None else (choices.get(key) or {}).get("making_s")
    choices[key] = {"rates": rates, "chosen": chosen(rates), "measured": time.time()}
    if made is not None:
        choices[key]["making_s"] = made
    scratch = folder / f".{CHOICES_FILE}.{os.getpid()}"
    scratch.write_text(json.dumps(choices, indent=1))
    os.replace(scratch, folder / CHOICES_FILE)


def static_int8_models(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """(model, the guard's facts) of each static int8 model kept in `folder`."""
    found = []
    for notes_file in sorted(folder.glob("*.json")):
        try:
            notes = json.loads(notes_file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(notes, dict) and isinstance(notes.get("int8"), dict):
            found.append((str(notes.get("model")), int8.verdict(notes["int8"])))
    return found


def fastest(rates: dict[str, float]) -> str:
    return max(sorted(rates), key=lambda backend: rates[backend])


def chosen(rates: dict[str, float]) -> str:
    """What auto runs given its measured `rates`: the fastest, but static int8 only where
    `int8.too_slow` finds it fast enough against the float choice."""
    best = fastest(rates)
    floats = [name for name in rates if name != "openvino int8"]
    if best != "openvino int8" or len(floats) != 1:
        return best
    return floats[0] if int8.too_slow(rates, floats[0]) else best


def measure_rates(
    forwards: dict[str, Callable[[Any], Any]], pixels: Any, rounds: int = 4
) -> dict[str, float]:
    """Images/s of each of `forwards` on `pixels`: one warm-up call each, then `rounds` timed
    calls of each, taken in turn, and each one's fastest. Taken in turn, a slow spell of the
    machine (a neighbour on a shared CPU) falls on both; the fastest call is the one least
    disturbed, and nothing makes a call faster than the backend is."""
    for forward in forwards.values():
        forward(pixels)
    best = dict.fromkeys(forwards, 0.0)
    for _ in range(rounds):
        for name, forward in forwards.items():
            started = time.perf_counter()
            forward(pixels)
            rate = len(pixels) / max(time.perf_counter() - started, 1e-9)
            best[name] = max(best[name], rate)
    return {name: round(rate, 2) for name, rate in best.items()}


def openvino_runner(
    name: str,
    model: torch.nn.Module,
    precision: str,
    preprocessing: Preprocessing,
    cache_dir: Path,
    calibration: np.ndarray | None = None,
    *,
    float_model: FloatModel | None = None,
) -> tuple[Runner, dict[str, Any]]:
    """The model converted to OpenVINO and compiled for this CPU: (runner, facts about it:
    the cached file, whether it came from the cache, seconds to convert and compile).

    Precision int8 with `calibration` (uint8 model inputs of the dataset's images) is static
    int8 (`int8.py`), its agreement with a float run on those images measured when it is made
    and kept beside it (`facts["int8"]`): `float_model`'s (the float choice already made, its
    conversion read rather than made again), or OpenVINO f32's; without `calibration`, int8
    weights computed in f32."""
    import openvino as ov

    started = time.monotonic()
    static = precision == "int8" and calibration is not None
    input_hw = preprocessing.input_hw
    if input_hw is None:
        raise ValueError("the model's input size is not fixed")
    path = model_file(name, model, precision, input_hw, cache_dir, calibration)
    core = ov.Core()
    converted, notes = _read_cached(core, path)
    if converted is not None and static and "int8" not in notes:
        converted = None  # made before its agreement was kept: made again
    cached = converted is not None
    made = None  # the static model as compiled to measure it: the one the runner uses
    if converted is None:
        converted = _float_conversion(core, float_model) if static else None
        if converted is None:
            converted = _convert(ov, model, input_hw)
        notes = {"model": name}
        if static:
            assert calibration is not None
            if float_model is not None:
                against, reference = float_model.name, float_model.vectors()
            else:
                against, reference = (
                    "fp32",
                    in_batches(_compiled(core, converted, "fp32", preprocessing)[0], calibration),
                )
            converted = int8.quantize(converted, calibration, preprocessing.normalize)
            made = _compiled(core, converted, precision, preprocessing)
            notes["int8"] = {
                **int8.agreement(in_batches(made[0], calibration), reference),
                "against": against,
            }
        elif precision == "int8":
            converted = int8.weights_only(converted)
        _save(ov, converted, path, notes)
    run, compiled = made or _compiled(core, converted, precision, preprocessing)
    facts = {
        # what the CPU plugin runs in: bf16 asked for on a CPU without it runs in f32
        "inference_precision": _type_name(compiled.get_property("INFERENCE_PRECISION_HINT")),
        "file": str(path),
        "from_cache": cached,
        "seconds": round(time.monotonic() - started, 2),
        **({"quantization": "static" if static else "weights"} if precision == "int8" else {}),
        **({"int8": int8.verdict(notes["int8"])} if static else {}),
    }
    return run, facts


def model_file(
    name: str,
    model: torch.nn.Module,
    precision: str,
    input_hw: tuple[int, int],
    cache_dir: Path,
    calibration: np.ndarray | None = None,
) -> Path:
    """Where `openvino_runner` keeps the model's conversion for these settings (static int8:
    made from `calibration`, whose digest is part of the name)."""
    import openvino as ov

    extra: tuple[str, ...] = ()
    if precision == "int8" and calibration is not None:
        import nncf

        extra = ("static", int8.digest(calibration), nncf.__version__)
    return cache_dir / f"{_cache_key(name, model, precision, input_hw, ov.__version__, extra)}.xml"


@dataclass(frozen=True)
class FloatModel:
    """The float choice a static int8 model is made beside: what it is called ("openvino
    bf16"), its vectors of the calibration images, and its OpenVINO conversion when it has one
    (the same graph `_convert` would make: read in a fraction of the time)."""

    name: str
    vectors: Callable[[], np.ndarray]
    file: Path | None = None


def _float_conversion(core: Any, float_model: FloatModel | None) -> Any:
    """`float_model`'s saved conversion, or None (then converted again)."""
    if float_model is None or float_model.file is None:
        return None
    return _read_cached(core, float_model.file)[0]


def _read_cached(core: Any, path: Path) -> tuple[Any, dict[str, Any]]:
    """The model cached at `path` and the notes kept beside it; (None, {}) when there is
    none or it can't be read (it is then made again)."""
    if not (path.exists() and path.with_suffix(".bin").exists()):
        return None, {}
    try:
        # A file that isn't even XML is refused here: handed to OpenVINO, it would try
        # its other readers on it first, and they print parse errors of their own.
        ElementTree.parse(path)
        converted = core.read_model(str(path))
        notes = json.loads(path.with_suffix(".json").read_text())
    except Exception as e:  # a corrupt or partly written file: rebuilt
        log.warning("%s: cached OpenVINO model unreadable (%s); converting again", path, e)
        return None, {}
    return converted, notes if isinstance(notes, dict) else {}


def _compile(core: Any, converted: Any, precision: str, *, streams: bool = False) -> Any:
    """Compiled for this CPU: in bf16 where `precision` is bf16, else f32 (int8: the model's
    own int8 parts and f32 for the rest). `streams`: as many streams as OpenVINO's throughput
    hint picks for the threads (two on 2 cores, a thread each), for batches run in parts."""
    # As many threads as PyTorch uses: the LATENCY hint took one per physical core (one here
    # on 2 vCPUs: 8.0 images/s against 10.5 with both, dinov2-small fp32).
    import torch

    hint = "bf16" if precision == "bf16" else "f32"
    threads = torch.get_num_threads()
    config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads}
    if streams:
        compiled = core.compile_model(
            converted, "CPU", {**config, "PERFORMANCE_HINT": "THROUGHPUT"}
        )
        # Where the hint keeps fewer threads (it may count physical cores only), one stream
        # of them all, as before.
        if int(compiled.get_property("INFERENCE_NUM_THREADS")) >= threads:
            return compiled
    return core.compile_model(converted, "CPU", config)


def _with_normalization(converted: Any, preprocessing: Preprocessing) -> Any:
    """`converted` (input: normalised float32, (n, 3, h, w)) taking uint8 model inputs (n, h,
    w, 3) instead, their rescaling and normalisation done by the compiled model: on the
    model's own threads, and 5% more images/s than normalising in PyTorch first (dinov2-small
    int8, batch 32, AMX Xeon: 82 against 86.5; the same vectors: 0.0 apart on that batch)."""
    from openvino import Layout, Type
    from openvino.preprocess import PrePostProcessor

    steps = PrePostProcessor(converted.clone())  # the converted model is saved as it is
    steps.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC"))
    steps.input().model().set_layout(Layout("NCHW"))
    pre = steps.input().preprocess().convert_element_type(Type.f32)
    # (x * rescale - mean) / std, as (x - mean / rescale) / (std / rescale)
    unit = preprocessing.rescale or 1.0
    mean, std = preprocessing.mean, preprocessing.std
    if mean is not None and std is not None:
        pre.mean([m / unit for m in mean]).scale([s / unit for s in std])
    elif preprocessing.rescale is not None:
        pre.scale(1 / unit)
    return steps.build()


def _compiled(
    core: Any, converted: Any, precision: str, preprocessing: Preprocessing
) -> tuple[Runner, Any]:
    """A runner of batches of uint8 model inputs (`_with_normalization`): each batch cut into
    as many parts as the model has streams, run side by side. One stream of two threads meets
    at a barrier in every layer, so a decoding thread taking one core stalls both; a thread
    per stream only slows its own part. On 2 cores of the AMX Xeon: the model alone 1-5%
    faster (dinov2-small and -base, bf16, f32 and int8), the embed job with quality
    statistics 63.5-67.9 -> 68.7-68.8 images/s (int8)."""
    compiled = _compile(
        core, _with_normalization(converted, preprocessing), precision, streams=True
    )
    parts = max(int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")), 1)
    requests = [compiled.create_infer_request() for _ in range(parts)]
    lock = threading.Lock()  # a job and a query (similar to an image file) share the model

    def run(pixels: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        chunks = np.array_split(pixels, min(parts, len(pixels))) if len(pixels) else [pixels]
        with lock:
            for request, chunk in zip(requests, chunks, strict=False):
                request.start_async({0: chunk})
            out = []
            for request, _ in zip(requests, chunks, strict=False):
                request.wait()
                out.append(np.array(request.get_output_tensor(0).data, dtype=np.float32))
        return np.concatenate(out)

    return run, compiled


def openvino_text(
    name: str, precision: str, cache_dir: Path
) -> Callable[[torch.nn.Module, list[torch.Tensor]], TextRunner | None]:
    """What compiles a CLIP/SigLIP text tower to OpenVINO on its first text
    (`towers.TextTower.compile`): converted once with any batch and length, kept in
    `cache_dir` as the image towers are; None, with a one-line warning, when it fails."""

    def compile_tower(module: torch.nn.Module, example: list[torch.Tensor]) -> TextRunner | None:
        import openvino as ov

        try:
            key = _cache_key(name, module, precision, (0, 0), ov.__version__, ("text",))
            path = cache_dir / f"{key}.xml"
            core = ov.Core()
            converted, _ = _read_cached(core, path)
            if converted is None:
                converted = _convert_text(ov, module, example)
                _save(ov, converted, path, {"model": name, "tower": "text"})
            compiled = _compile(core, converted, precision)
            request, lock = compiled.create_infer_request(), threading.Lock()
        except Exception as e:  # any exporter failure: the texts still run, on PyTorch
            log.warning("%s: text tower conversion failed (%s); using torch", name, e)
            return None

        def run_text(tokens: list[np.ndarray]) -> np.ndarray:
            with lock:  # one request, the searches' threads in turn
                out = request.infer(dict(enumerate(tokens)))
                return np.asarray(out[compiled.output(0)], dtype=np.float32)

        return run_text

    return compile_tower


def _convert_text(ov: Any, module: torch.nn.Module, example: list[torch.Tensor]) -> Any:
    import torch

    with torch.inference_mode(False), torch.no_grad(), _quiet_libraries():
        return ov.convert_model(
            module,
            example_input=tuple(example),
            input=[ov.PartialShape([-1, -1])] * len(example),
        )


def in_batches(run: Runner, pixels: np.ndarray, size: int = 32) -> np.ndarray:
    """`run`'s rows for `pixels`, `size` images at a time."""
    return np.concatenate([run(pixels[i : i + size]) for i in range(0, len(pixels), size)])


def _type_name(element_type: Any) -> str:
    name = getattr(element_type, "get_type_name", None)
    return str(name()) if callable(name) else str(element_type)


def _convert(ov: Any, model: torch.nn.Module, input_hw: tuple[int, int]) -> Any:
    import torch

    height, width = input_hw
    example = torch.zeros(2, 3, height, width)
    with torch.inference_mode(False), torch.no_grad(), _quiet_libraries():
        return ov.convert_model(
            model,
            example_input=example,
            input=[ov.PartialShape([-1, 3, height, width])],
        )


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Tracing a model makes torch and transformers print warnings meant for their own
    developers (TracerWarning on shape checks, deprecated attributes, the loss type of a
    model that is never trained): none of them is something the user can act on."""
    transformers_log = logging.getLogger("transformers")
    level = transformers_log.level
    transformers_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        transformers_log.setLevel(level)


def _save(ov: Any, converted: Any, path: Path, notes: dict[str, Any]) -> None:
    """Written in a scratch folder and moved into place: a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".visor-ov-", dir=path.parent))
    try:
        ov.save_model(converted, str(scratch / path.name), compress_to_fp16=False)
        (scratch / path.with_suffix(".json").name).write_text(json.dumps(notes))
        for suffix in (".bin", ".json", ".xml"):  # the .xml last: it marks the set complete
            os.replace(scratch / path.with_suffix(suffix).name, path.with_suffix(suffix))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _cache_key(
    name: str,
    model: torch.nn.Module,
    precision: str,
    input_hw: tuple[int, int],
    ov: str,
    extra: tuple[str, ...] = (),
) -> str:
    import torch
    import transformers

    digest = hashlib.sha256()
    for part in (name, precision, input_hw, ov, torch.__version__, transformers.__version__):
        digest.update(repr(part).encode())
    for part in extra:  # static int8: its calibration set and nncf's version
        digest.update(part.encode())
    with torch.no_grad():  # a fingerprint of the weights: a few values of every tensor
        for tensor_name, tensor in model.state_dict().items():
            flat = tensor.detach().reshape(-1)
            digest.update(tensor_name.encode())
            digest.update(repr(tuple(flat.shape)).encode())
            digest.update(flat[:: max(1, len(flat) // 16)].float().cpu().numpy().tobytes())
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{slug}-{digest.hexdigest()[:16]}"
