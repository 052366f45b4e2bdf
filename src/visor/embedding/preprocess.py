"""The model's own preprocessing (resize, centre crop, rescale, normalise), split in two:
`prepare` turns file bytes into a uint8 crop on a worker thread, and `normalize` turns a
batch of crops into model input on the model's device (4x less data to move than float32).

The geometry follows transformers' image processors exactly (shortest-edge resize with the
same rounding and PIL filter, then a centre crop), so vectors match the reference pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from visor.embedding.crops import CropRule, crop_region
from visor.errors import ModelUnavailable
from visor.media.images import decode

if TYPE_CHECKING:
    import torch

# JPEGs are decoded at a reduced scale only while they stay at least this many times larger
# than the resize target, so the DCT shortcut never replaces the resampling filter.
_DRAFT_MARGIN = 2

Box = tuple[float, float, float, float]  # x, y, width, height in pixels


@dataclass(frozen=True)
class Preprocessing:
    shortest_edge: int | None  # resize so the short side is this long, or
    resize_hw: tuple[int, int] | None  # resize to exactly (height, width)
    crop_hw: tuple[int, int] | None
    resample: Image.Resampling
    rescale: float | None
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Preprocessing:
        """From a `preprocessor_config.json` dict (the keys transformers' processors use)."""
        size = config.get("size") or {}
        if isinstance(size, int):
            size = {"shortest_edge": size}
        shortest = resize_hw = None
        if config.get("do_resize", True):
            if "shortest_edge" in size and "longest_edge" not in size:
                shortest = int(size["shortest_edge"])
            elif "height" in size and "width" in size:
                resize_hw = (int(size["height"]), int(size["width"]))
            else:
                raise ModelUnavailable(f"unsupported resize in the model's preprocessing: {size}")
        crop = config.get("crop_size") or {}
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        crop_hw = None
        if config.get("do_center_crop"):
            crop_hw = (int(crop["height"]), int(crop["width"]))
        if shortest is None and resize_hw is None and crop_hw is None:
            raise ModelUnavailable("the model's preprocessing gives no fixed input size")
        mean = config.get("image_mean")
        std = config.get("image_std")
        normalize = bool(config.get("do_normalize", True)) and mean is not None and std is not None
        return cls(
            shortest_edge=shortest,
            resize_hw=resize_hw,
            crop_hw=crop_hw,
            resample=Image.Resampling(int(config.get("resample", Image.Resampling.BICUBIC))),
            rescale=float(config.get("rescale_factor", 1 / 255))
            if config.get("do_rescale", True)
            else None,
            mean=tuple(float(v) for v in mean) if normalize else None,  # type: ignore[arg-type,union-attr]
            std=tuple(float(v) for v in std) if normalize else None,  # type: ignore[arg-type,union-attr]
        )

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """(height, width) of every model input, where it is fixed (a crop or an exact
        resize); None where it follows the image."""
        return self.crop_hw or self.resize_hw

    def resize_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) after resizing an image of `size` (width, height)."""
        if self.resize_hw is not None:
            return self.resize_hw[1], self.resize_hw[0]
        if self.shortest_edge is None:
            return size
        w, h = size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(self.shortest_edge * long / short)
        return (self.shortest_edge, new_long) if w <= h else (new_long, self.shortest_edge)

    def prepare(self, data: bytes, name: str) -> np.ndarray:
        """Decode, orient, resize and crop one image: uint8 array (height, width, 3).

        Raises FormatError naming `name` when the bytes are not a readable image.
        """
        return self.prepare_inspected(data, name, None)[0]

    def prepare_inspected(
        self, data: bytes, name: str, inspect: Callable[[Image.Image], Any] | None
    ) -> tuple[np.ndarray, Any]:
        """`prepare`, with `inspect`'s answer about the decoded image before it is resized
        (e.g. its quality, measured from the same decode); None without `inspect`."""
        target: tuple[int, int] | None = None

        def draft(full: tuple[int, int]) -> tuple[int, int]:
            nonlocal target
            target = self.resize_size(full)
            return target[0] * _DRAFT_MARGIN, target[1] * _DRAFT_MARGIN

        img = decode(data, name, draft=draft)
        seen = inspect(img) if inspect is not None else None
        if target is None:  # not a JPEG: decoded at full size
            target = self.resize_size(img.size)
        return self._fit(img, target), seen

    def prepare_regions(
        self, data: bytes, name: str, regions: Sequence[tuple[int, Box]], rule: CropRule
    ) -> list[tuple[int, np.ndarray | str]]:
        """One decode, many crops: for each (key, box (x, y, w, h)) the model input of the
        box's square crop (`crop_region`), or the reason the box has none. Raises FormatError
        naming `name` when the bytes are not a readable image."""
        img = decode(data, name)
        width, height = img.size
        out: list[tuple[int, np.ndarray | str]] = []
        for key, box in regions:
            region = crop_region(box, width, height, rule)
            if isinstance(region, str):
                out.append((key, f"{name}: {region}"))
                continue
            left, top, right, bottom = region
            size = self.resize_size((right - left, bottom - top))
            if left >= 0 and top >= 0 and right <= width and bottom <= height:
                # Cut and resized in one step: only the region's pixels are resampled.
                crop = img.resize(size, resample=self.resample, box=region)
            else:  # reaches past the image: padded with black, then resized
                crop = img.crop(region).resize(size, resample=self.resample)
            out.append((key, self._fit(crop, size)))
        return out

    def _fit(self, img: Image.Image, target: tuple[int, int]) -> np.ndarray:
        """Resized to `target` (width, height) and centre-cropped as the model expects."""
        if self.crop_hw is None:
            return np.asarray(img.resize(target, resample=self.resample), dtype=np.uint8)
        ch, cw = self.crop_hw
        tw, th = target
        # Same offsets as transformers' center_crop; out-of-image parts become zeros.
        top, left = (th - ch) // 2, (tw - cw) // 2
        if img.size != target and top >= 0 and left >= 0:
            # Only the pixels the crop keeps are resampled (the resize's own grid and filter,
            # a third less work at DINOv2's 256 → 224): the same pixels but for rounding.
            sx, sy = img.width / tw, img.height / th
            box = (left * sx, top * sy, (left + cw) * sx, (top + ch) * sy)
            return np.asarray(img.resize((cw, ch), resample=self.resample, box=box), np.uint8)
        if img.size != target:
            img = img.resize(target, resample=self.resample)
        return np.asarray(img.crop((left, top, left + cw, top + ch)), dtype=np.uint8)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (n, h, w, 3) → float32 (n, 3, h, w), rescaled and normalised."""
        import torch

        x = pixels.permute(0, 3, 1, 2).to(torch.float32)
        if self.rescale is not None:
            x = x * self.rescale
        if self.mean is not None and self.std is not None:
            mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x.contiguous()
