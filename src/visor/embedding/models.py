"""Embedding models by name: a small registry, device choice, and a per-process model cache.

`load_model("dinov2-base")` gives an `Embedder`; the same name, device and precision give the
same `Embedder` for the life of the process, so weights are read once and shared by jobs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from visor.embedding import backends, choice, int8
from visor.embedding.backends import Runner, check_backend
from visor.embedding.cpu import cpu_has_bf16, cpu_has_int8
from visor.embedding.registry import (
    DINOV2_PREPROCESSING,
    JOINT_PREPROCESSING,
    REGISTRY,
    ModelSpec,
)
from visor.errors import InvalidInput, ModelUnavailable

if TYPE_CHECKING:
    import torch

    from visor.embedding.preprocess import Preprocessing
    from visor.embedding.towers import TextTower

log = logging.getLogger("visor.models")

DEFAULT_MODEL = "dinov2-base"
RANDOM_PREFIX = "random:"
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")  # int8: OpenVINO on a CPU only


def text_models() -> list[str]:
    """The named models with a text tower (the random-only ones as `random:` names)."""
    return [n if s.hub_id else RANDOM_PREFIX + n for n, s in REGISTRY.items() if s.has_text]


def describe_models() -> list[dict[str, Any]]:
    """The registry as plain rows (for `visor models` and the API)."""
    return [
        {"name": s.name, "dim": s.dim, "weights": s.hub_id or "random only", "text": s.has_text}
        for s in REGISTRY.values()
    ]


def check_model_name(name: str) -> str:
    """Validate a model argument without loading anything; returns it stripped."""
    name = name.strip()
    if not name:
        raise InvalidInput("model: give a model name, a hub id or a folder")
    if name.startswith(RANDOM_PREFIX):
        base = name[len(RANDOM_PREFIX) :]
        if base not in REGISTRY:
            known = ", ".join(RANDOM_PREFIX + n for n in REGISTRY)
            raise InvalidInput(f"model {name!r}: unknown architecture (known: {known})")
        return name
    if name in REGISTRY:
        if not REGISTRY[name].hub_id:
            raise InvalidInput(f"model {name!r} has no weights; use {RANDOM_PREFIX}{name}")
        return name
    if Path(name).expanduser().exists() or _looks_like_hub_id(name):
        return name
    known = ", ".join(n for n, s in REGISTRY.items() if s.hub_id)
    raise InvalidInput(
        f"model {name!r}: not a known model ({known}), an existing folder or a hub id "
        "like 'facebook/dinov2-base'"
    )


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts)


# -- devices ---------------------------------------------------------------------------------


def resolve_device(requested: str | None = None) -> str:
    """`cuda`, `mps` or `cpu`: the requested one if it is usable, else the best available."""
    import torch

    if requested and requested != "auto":
        kind = requested.split(":")[0]
        if kind == "cuda" and not torch.cuda.is_available():
            raise InvalidInput(f"device {requested!r}: CUDA is not available on this machine")
        if kind == "mps" and not torch.backends.mps.is_available():
            raise InvalidInput(f"device {requested!r}: MPS is not available on this machine")
        if kind not in ("cuda", "mps", "cpu"):
            raise InvalidInput(f"device {requested!r}: use auto, cuda, cuda:N, mps or cpu")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_precision(precision: str | None, device: str) -> str:
    """fp16 on CUDA and MPS; on CPU bf16 where the CPU has bf16 instructions (about 3x faster,
    vectors within cosine 0.9999 of fp32), else fp32 (bf16 is emulated and ~6x slower)."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise InvalidInput(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.startswith(("cuda", "mps")):
            return "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision == "fp16" and device == "cpu":
        raise InvalidInput("precision fp16 is for GPUs; on CPU use bf16 or fp32")
    if precision == "int8" and device != "cpu":
        raise InvalidInput(f"precision int8 runs on the CPU (OpenVINO), not on {device}")
    return precision


def random_weights_warning(model: str | None) -> str | None:
    """What to tell a user about a result computed from `model`'s vectors when its weights are
    random (`random:` models): it shows the pipeline, not their data. None otherwise."""
    if not model or not model.startswith(RANDOM_PREFIX):
        return None
    return (
        f"{model} has random weights: every image looks alike to it, so this result shows "
        "that the pipeline runs, not anything about your images. For real results embed "
        "with trained weights (visor embed NAME --model dinov2-base)."
    )


def with_weights_warning(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with a `warning` when its `model` has random weights."""
    warning = random_weights_warning(row.get("model"))
    return {**row, "warning": warning} if warning else row


# -- the loaded model ------------------------------------------------------------------------


@dataclass
class Embedder:
    """A model ready to embed: weights on `device`, and the preprocessing they expect.
    `model` is its image tower (pixels to vectors, `towers.py`); `text` its text tower, for
    CLIP and SigLIP."""

    name: str
    dim: int
    device: str
    precision: str
    model: torch.nn.Module
    preprocessing: Preprocessing
    backend: str = "torch"
    runner: Runner | None = None  # the converted model, for a backend other than torch
    backend_facts: dict[str, Any] = field(default_factory=dict)
    text: TextTower | None = None

    @property
    def runs_as(self) -> str:
        """The backend and precision, as auto's rates name them ("openvino bf16")."""
        return f"{self.backend} {self.precision}"

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The image vectors of a uint8 batch (n, h, w, 3) on any device; returns float32
        (n, dim) on the model's device."""
        import torch

        if self.runner is not None:  # normalised inside the compiled model
            return torch.from_numpy(self.runner(pixels.cpu().numpy()))
        x = self.preprocessing.normalize(pixels.to(self.device, non_blocking=True))
        if self.precision == "fp16":
            x = x.half()
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16):
                    return self.model(x).float()
            return self.model(x).float()

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32 vectors of `texts` in the images' space (CLIP and SigLIP)."""
        if self.text is None:
            raise InvalidInput(
                f"{self.name} embeds images only: words (text search, zero-shot tags, cluster "
                "names) need a model with a text tower "
                f"(embed with one: {', '.join(text_models())})"
            )
        return self.text.encode(texts)


# (name, device, precision, backend[, calibration digest]) → the model as loaded for them
_cache: dict[tuple[str, ...], Embedder] = {}
_cache_lock = threading.Lock()


def load_model(
    name: str = DEFAULT_MODEL,
    device: str | None = None,
    precision: str | None = None,
    backend: str | None = "torch",
    cache_dir: Path | None = None,
    calibration: Callable[[Preprocessing], np.ndarray] | None = None,
    images: Callable[[Embedder], int] | None = None,
) -> Embedder:
    """The shared `Embedder` for `name` on `device` (loaded on first use).

    `name` is a registry name (`dinov2-base`), `random:<name>` (same architecture, random
    weights, seeded so every process builds the same model), a local folder or a hub id.
    `backend` (`embedding/backends.py`): torch, openvino, or auto (None: the faster of the
    two, measured on first use); a converted model and auto's measurements are kept in
    `cache_dir` (default: the home folder's `compiled/`).

    int8 (`embedding/choice.py`): asked for, it is static int8 on a CPU with int8 dot
    products (calibrated on `calibration`'s images: given the model's preprocessing, it
    returns uint8 model inputs of the dataset's first images), else int8 weights; its
    closeness to fp32 is in `backend_facts`. With precision auto and a `calibration`, static
    int8 is considered on such a CPU and kept where it keeps the answers and runs faster;
    it is not made where this machine's record says it can't pay for itself on the job's
    `images` (how many it will embed) — that model is not shared, the next job weighs again.
    """
    name = check_model_name(name)
    device = resolve_device(device)
    asked = precision or "auto"
    precision = resolve_precision(precision, device)
    chosen = check_backend(backend, device, precision)
    consider_int8 = asked == "auto" and _int8_possible(device, chosen)
    calibrate = calibration is not None and (
        consider_int8 or (precision == "int8" and cpu_has_int8())
    )
    with _cache_lock:
        base = _cache.get((name, device, precision, "torch"))
        if base is None:
            base = _build(name, device, precision, _compiled_folder(cache_dir))
            _cache[(name, device, precision, "torch")] = base
        pixels = calibration(base.preprocessing) if calibrate and calibration else None
        key = (name, device, asked, chosen, int8.digest(pixels) if pixels is not None else "")
        found = _cache.get(key)
        if found is None:
            folder = _compiled_folder(cache_dir)
            found = choice.pick(
                base, chosen, folder, consider_int8=consider_int8, calibration=pixels,
                images=images,
            )  # fmt: skip
            if not found.backend_facts.get("int8", {}).get("unpaid"):
                _cache[key] = found
        return found


def _int8_possible(device: str, backend: str) -> bool:
    """Whether static int8 could run: OpenVINO allowed and installed with nncf, on a CPU with
    int8 dot products."""
    return (
        device == "cpu"
        and backend in ("auto", "openvino")
        and cpu_has_int8()
        and backends.installed("openvino")
        and backends.installed("nncf")
    )


def _text_backend() -> str:
    """The setting `VISOR_EMBED_BACKEND`: torch keeps the text tower on PyTorch too."""
    from visor.config import get_settings

    return get_settings().embed_backend


def _compiled_folder(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return cache_dir
    from visor.config import get_settings

    return get_settings().compiled_dir


def loaded_models() -> list[dict[str, str]]:
    """The models loaded in this process, each once (one may be kept under two keys: as
    asked and as loaded)."""
    rows = ((v.name, v.device, v.precision, v.backend) for v in _cache.values())
    keys = ("model", "device", "precision", "backend")
    return [dict(zip(keys, row, strict=True)) for row in dict.fromkeys(rows)]


def _build(name: str, device: str, precision: str, folder: Path) -> Embedder:
    """The model as loaded, on PyTorch; a text tower's OpenVINO conversion, made on its first
    text, is kept in `folder`."""
    import torch
    from transformers.utils import logging as hf_logging

    from visor.embedding import towers
    from visor.embedding.preprocess import Preprocessing

    hf_logging.disable_progress_bar()  # the job's own progress is what the user follows
    tokenize: towers.Tokenize | None = None
    if name.startswith(RANDOM_PREFIX):
        spec = REGISTRY[name[len(RANDOM_PREFIX) :]]
        model = _random_model(spec)
        processor_config = JOINT_PREPROCESSING.get(spec.family, DINOV2_PREPROCESSING)
        if spec.has_text:
            length = int(spec.config["text_config"]["max_position_embeddings"])
            tokenize = towers.ByteTokenizer(length, pad_to_length=spec.family == "siglip")
    else:
        source = REGISTRY[name].hub_id if name in REGISTRY else name
        model, processor_config = _pretrained(source, name)
        if cast(Any, model).config.model_type in towers.JOINT_TYPES:
            tokenize = _tokenizer(source, name, model)
    model.eval()
    whole = model  # CLIP/SigLIP: its text half runs from here (as the image half, in torch)
    model, dim = towers.image_tower(model)
    if precision == "fp16":
        model.half()
    model.to(device)
    text = None
    if tokenize is not None:
        compile_text = None
        if device == "cpu" and backends.installed("openvino") and _text_backend() != "torch":
            compile_text = backends.openvino_text(name, precision, folder)
        text = towers.TextTower(whole, tokenize, device, precision, compile_text)
    log.info("loaded %s (%d-d) on %s, %s", name, dim, device, precision)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    return Embedder(
        name=name,
        dim=dim,
        device=device,
        precision=precision,
        model=model,
        preprocessing=Preprocessing.from_config(processor_config),
        text=text,
    )


def _random_model(spec: ModelSpec) -> torch.nn.Module:
    import torch
    from transformers import AutoModel, CLIPConfig, Dinov2Config, SiglipConfig

    kind = {"dinov2": Dinov2Config, "clip": CLIPConfig, "siglip": SiglipConfig}[spec.family]
    config = kind(**spec.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model: torch.nn.Module = AutoModel.from_config(config, attn_implementation="sdpa")
    return model


def _pretrained(source: str, name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Weights and preprocessor config from a folder, the local cache, or (if reachable) the hub."""
    from transformers import AutoModel

    folder = Path(source).expanduser()
    if folder.exists():
        if not (folder / "config.json").is_file():
            raise ModelUnavailable(
                f"model folder {folder}: no config.json (expected a saved transformers model)"
            )
        try:
            model = AutoModel.from_pretrained(str(folder), attn_implementation="sdpa")
        except (OSError, ValueError) as e:
            raise ModelUnavailable(f"model folder {folder}: cannot load it ({e})") from None
        return model, _processor_config(str(folder), local_only=True)
    try:
        model = AutoModel.from_pretrained(source, attn_implementation="sdpa", local_files_only=True)
        return model, _processor_config(source, local_only=True)
    except OSError:
        pass  # not in the local cache
    hint = (
        f"put the weights in a folder (e.g. `huggingface-cli download {source} --local-dir "
        f"./{source.split('/')[-1]}` on a connected machine) and pass --model "
        f"/path/to/{source.split('/')[-1]}; or use --model random:{name} to try Visor "
        "without real weights"
    )
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise ModelUnavailable(
            f"model {name!r}: weights for {source} are not in the local Hugging Face cache "
            f"and huggingface.co cannot be reached; {hint}"
        )
    log.warning("downloading %s from huggingface.co", source)
    try:
        model = AutoModel.from_pretrained(source, attn_implementation="sdpa")
    except OSError as e:
        raise ModelUnavailable(f"model {name!r}: cannot download {source} ({e}); {hint}") from None
    return model, _processor_config(source, local_only=False)


def _tokenizer(source: str, name: str, model: torch.nn.Module) -> Any:
    """A CLIP/SigLIP model's own tokenizer, from its folder or the local cache."""
    from visor.embedding import towers

    local = Path(source).expanduser().exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        return towers.pretrained_tokenizer(source, model, local_only=local)
    except (OSError, ValueError, ImportError) as e:
        raise ModelUnavailable(
            f"model {name!r}: its tokenizer cannot be loaded from {source} ({e}); save the "
            "model with its tokenizer (tokenizer.json or vocab files) in the folder"
        ) from None


def _processor_config(source: str, *, local_only: bool) -> dict[str, Any]:
    """The model's `preprocessor_config.json`; DINOv2's when the model has none."""
    from transformers.utils import cached_file

    try:
        path = cached_file(
            source,
            "preprocessor_config.json",
            local_files_only=local_only,
            _raise_exceptions_for_missing_entries=False,
        )
    except OSError:
        path = None
    if path is None:
        log.warning("%s has no preprocessor_config.json; using DINOv2's preprocessing", source)
        return DINOV2_PREPROCESSING
    config: dict[str, Any] = json.loads(Path(path).read_text())
    return config


def _hub_reachable(timeout: float = 3.0) -> bool:
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # behind a proxy a direct probe says nothing; let the download try
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    try:
        with socket.create_connection((hostname, int(port or 443)), timeout=timeout):
            return True
    except OSError:
        return False
