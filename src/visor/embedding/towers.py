"""What Visor runs of a model: its image tower, from normalised pixels (n, 3, h, w) to one
vector per image, and for CLIP and SigLIP its text tower, from text to a vector in the same
space (text → image search, zero-shot labels).

DINOv2 (and any other image encoder): the CLS token of the last hidden state. CLIP and
SigLIP: the model's own image and text embeddings (`get_image_features`,
`get_text_features`: CLIP's projections, SigLIP's pooled heads), so a text vector and an
image vector compare by cosine as the model was trained to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

JOINT_TYPES = ("clip", "siglip", "siglip2")  # model types with a text tower Visor runs


class ClsImage(torch.nn.Module):
    """An image encoder's CLS token (DINOv2, ViT)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.inner(pixel_values=pixel_values).last_hidden_state[:, 0]


class JointImage(torch.nn.Module):
    """A CLIP or SigLIP model's image embedding (the space its text embedding shares)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        found: Any = self.inner.get_image_features(pixel_values=pixel_values)  # type: ignore[operator]
        return found if isinstance(found, torch.Tensor) else found.pooler_output


def image_tower(model: torch.nn.Module) -> tuple[torch.nn.Module, int]:
    """`model` as a module from pixels to vectors, and their dimension."""
    config: Any = getattr(model, "config", None)
    kind = getattr(config, "model_type", "")
    if kind in JOINT_TYPES:
        dim = getattr(config, "projection_dim", None) or config.vision_config.hidden_size
        return JointImage(model).eval(), int(dim)
    return ClsImage(model).eval(), int(config.hidden_size)


Tokenize = Callable[[list[str]], dict[str, torch.Tensor]]


# Token arrays (input_ids, and attention_mask where the model takes one) → vectors.
TextRunner = Callable[[list[np.ndarray]], np.ndarray]


class TextFeatures(torch.nn.Module):
    """A CLIP or SigLIP model's text embedding as a module of the token arrays (what is
    converted to OpenVINO)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        given = {"input_ids": input_ids}
        if attention_mask is not None:
            given["attention_mask"] = attention_mask
        found: Any = self.inner.get_text_features(**given)  # type: ignore[operator]
        return found if isinstance(found, torch.Tensor) else found.pooler_output


@dataclass
class TextTower:
    """Text to vectors in the image tower's space (fp32, on the model's device).

    On a CPU, `compile` (when given) makes a faster runner on the first text: the tower
    converted to OpenVINO (a query's tokens are few, and PyTorch's per-layer overhead is most
    of its time: 41 ms against 11 ms for CLIP B/32's tower on 2 cores). None from it, or no
    `compile`: PyTorch."""

    model: torch.nn.Module  # the whole CLIP/SigLIP model: its text half is what runs
    tokenize: Tokenize
    device: str
    precision: str = "fp32"  # bf16: run under autocast, as the images are (CPUs with bf16)
    compile: Callable[[TextFeatures, list[torch.Tensor]], TextRunner | None] | None = None
    _runner: TextRunner | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32 vectors of `texts`, not normalised (search normalises)."""
        tokens = self.tokenize(texts)
        if self.compile is not None:
            with self._lock:  # compiled once, by the first text's thread
                if self.compile is not None:
                    self._runner = self.compile(TextFeatures(self.model), list(tokens.values()))
                    self.compile = None
        if self._runner is not None:
            return self._runner([t.numpy() for t in tokens.values()])
        batch = {k: v.to(self.device) for k, v in tokens.items()}
        with (
            torch.inference_mode(),
            torch.autocast(
                self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.precision == "bf16"
            ),
        ):
            found: Any = self.model.get_text_features(**batch)  # type: ignore[operator]
            vectors = found if isinstance(found, torch.Tensor) else found.pooler_output
        return vectors.float().cpu().numpy()

    def probabilities(self, images: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """(n images, m texts): how likely each text describes each image, as the model was
        trained to say it: CLIP a softmax over the texts of the scaled cosines, SigLIP each
        pair's own sigmoid (so an image may fit several texts, or none)."""
        model: Any = self.model
        config = model.config
        scale = float(model.logit_scale.detach().exp())
        a = images / np.maximum(np.linalg.norm(images, axis=1, keepdims=True), 1e-12)
        b = texts / np.maximum(np.linalg.norm(texts, axis=1, keepdims=True), 1e-12)
        logits = scale * (a.astype(np.float32) @ b.T.astype(np.float32))
        if config.model_type.startswith("siglip"):
            bias = float(model.logit_bias.detach())
            return 1 / (1 + np.exp(-(logits + bias)))
        logits -= logits.max(axis=1, keepdims=True)
        found = np.exp(logits)
        return found / found.sum(axis=1, keepdims=True)


class ByteTokenizer:
    """A tokenizer that needs no files, for `random:` CLIP/SigLIP models (whose weights mean
    nothing anyway): a start token, the text's UTF-8 bytes (lower-cased) and an end token,
    padded to `length` (SigLIP reads the last position, so it pads to the full length as it
    was trained). Token ids: bytes 0-255, then start, end and padding."""

    START, END, PAD = 256, 257, 258
    VOCABULARY = 259

    def __init__(self, length: int, pad_to_length: bool) -> None:
        self.length = length
        self.pad_to_length = pad_to_length

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        rows = [[self.START, *text.lower().encode()[: self.length - 2], self.END] for text in texts]
        width = self.length if self.pad_to_length else max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.PAD, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        if self.pad_to_length:  # SigLIP is run without an attention mask
            return {"input_ids": ids}
        return {"input_ids": ids, "attention_mask": mask}


def pretrained_tokenizer(source: str, model: torch.nn.Module, *, local_only: bool) -> Tokenize:
    """The model's own tokenizer (a folder, or the local Hugging Face cache), padded as the
    model expects (SigLIP: to its full length, no attention mask)."""
    from transformers import AutoTokenizer

    config: Any = model.config
    siglip = config.model_type.startswith("siglip")
    length = int(config.text_config.max_position_embeddings)
    tokenizer: Any = AutoTokenizer.from_pretrained(source, local_files_only=local_only)

    def tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
        found = tokenizer(
            texts,
            padding="max_length" if siglip else True,
            truncation=True,
            max_length=length,
            return_tensors="pt",
        )
        keys = ("input_ids",) if siglip else ("input_ids", "attention_mask")
        return {k: found[k] for k in keys}

    return tokenize
