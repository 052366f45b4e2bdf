"""The models Visor knows by name: where each one's weights live, its architecture (for the
`random:` variants tests and trials use), its family and its preprocessing. Imported without
torch (names are checked before anything loads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# DINOv2's own preprocessor_config.json (the same for every size).
DINOV2_PREPROCESSING: dict[str, Any] = {
    "do_resize": True,
    "size": {"shortest_edge": 256},
    "resample": 3,
    "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
}


# CLIP's (openai/clip-vit-*): shortest edge 224, centre crop, CLIP's mean and std; SigLIP's
# (google/siglip-*): 224 x 224, no crop, mean and std 0.5.
JOINT_PREPROCESSING: dict[str, dict[str, Any]] = {
    "clip": {
        **DINOV2_PREPROCESSING,
        "size": {"shortest_edge": 224},
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    },
    "siglip": {
        **{k: v for k, v in DINOV2_PREPROCESSING.items() if "crop" not in k},
        "size": {"height": 224, "width": 224},
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    },
}

# The random CLIP/SigLIP variants' text tower reads a byte tokenizer's ids (towers.py): 259
# tokens, the end token 257, 32 positions (SigLIP pads to them all).
_BYTE_TEXT = {
    "vocab_size": 259,
    "bos_token_id": 256,
    "eos_token_id": 257,
    "pad_token_id": 258,
    "max_position_embeddings": 32,
}


@dataclass(frozen=True)
class ModelSpec:
    """A named model: where its weights live, the architecture they fit, and its family
    (dinov2: images only; clip and siglip: a text tower too)."""

    name: str
    hub_id: str
    dim: int
    config: dict[str, Any] = field(default_factory=dict)  # the family's config fields
    family: str = "dinov2"

    @property
    def has_text(self) -> bool:
        return self.family in ("clip", "siglip")


def _tower(width: int, layers: int, heads: int) -> dict[str, Any]:
    return {
        "hidden_size": width,
        "intermediate_size": width * 4,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
    }


def _joint(vision: dict[str, Any], text: dict[str, Any], patch: int, dim: int) -> dict[str, Any]:
    return {
        "text_config": {**text, **_BYTE_TEXT},
        "vision_config": {**vision, "image_size": 224, "patch_size": patch},
        "projection_dim": dim,
    }


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "dinov2-small",
            "facebook/dinov2-small",
            384,
            {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6},
        ),
        ModelSpec(
            "dinov2-base",
            "facebook/dinov2-base",
            768,
            {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
        ),
        ModelSpec(
            "dinov2-large",
            "facebook/dinov2-large",
            1024,
            {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
        ),
        ModelSpec(
            "dinov2-giant",
            "facebook/dinov2-giant",
            1536,
            {
                "hidden_size": 1536,
                "num_hidden_layers": 40,
                "num_attention_heads": 24,
                "mlp_ratio": 4,
                "use_swiglu_ffn": True,
            },
        ),
        ModelSpec(
            "clip-vit-b-32",
            "openai/clip-vit-base-patch32",
            512,
            _joint(_tower(768, 12, 12), _tower(512, 12, 8), 32, 512),
            "clip",
        ),
        ModelSpec(
            "clip-vit-b-16",
            "openai/clip-vit-base-patch16",
            512,
            _joint(_tower(768, 12, 12), _tower(512, 12, 8), 16, 512),
            "clip",
        ),
        ModelSpec(
            "siglip-base-patch16-224",
            "google/siglip-base-patch16-224",
            768,
            _joint(_tower(768, 12, 12), _tower(768, 12, 12), 16, 768),
            "siglip",
        ),
        # Not real checkpoints: two-layer models for tests and quick trials (random only).
        ModelSpec("clip-tiny", "", 64, _joint(_tower(64, 2, 2), _tower(64, 2, 2), 32, 64), "clip"),
        ModelSpec(
            "siglip-tiny", "", 64, _joint(_tower(64, 2, 2), _tower(64, 2, 2), 32, 64), "siglip"
        ),
        ModelSpec(
            "dinov2-tiny",
            "",
            64,
            {
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 128,
            },
        ),
    )
}
