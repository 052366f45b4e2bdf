"""Where an object's crop is cut from its image: the box with a context margin, squared, at
least a minimum size, kept inside the image where it fits. Boxes that can't give a crop
(zero-size, sub-pixel, outside the image) get a reason instead.

Geometry only: no pixels, no store."""

from __future__ import annotations

import math
from dataclasses import dataclass

MARGIN = 0.1  # context around the box, as a share of its longer side, on every side
MIN_SIZE = 32  # px: smaller crops take more context rather than being blown up from a few pixels
MIN_BOX = 1.0  # px: boxes narrower or lower than this are sub-pixel


@dataclass(frozen=True)
class CropRule:
    margin: float = MARGIN
    min_size: int = MIN_SIZE


def box_problem(x: float, y: float, w: float, h: float) -> str | None:
    """Why a box can't be embedded whatever its image, or None."""
    values = (x, y, w, h)
    if not all(math.isfinite(v) for v in values):
        return "box has a missing or infinite coordinate"
    if w <= 0 or h <= 0:
        return f"zero-size box ({w:g} x {h:g} px)"
    if w < MIN_BOX or h < MIN_BOX:
        return f"sub-pixel box ({w:g} x {h:g} px)"
    return None


def crop_region(
    box: tuple[float, float, float, float], width: int, height: int, rule: CropRule = CropRule()
) -> tuple[int, int, int, int] | str:
    """(left, top, right, bottom) in pixels of the square crop for `box` (x, y, w, h) in an
    image of `width` x `height`, or the reason it has none. The square is shifted to lie inside
    the image when the image is large enough; otherwise it reaches past the edges (the crop
    is padded there)."""
    x, y, w, h = box
    problem = box_problem(x, y, w, h)
    if problem:
        return problem
    left, top = max(x, 0.0), max(y, 0.0)
    right, bottom = min(x + w, float(width)), min(y + h, float(height))
    if right - left <= 0 or bottom - top <= 0:
        return f"box outside the image ({x:g}, {y:g}, {w:g} x {h:g} in {width} x {height})"
    # The visible part of the box decides the crop: a box mostly off the image is cut to it.
    cx, cy = (left + right) / 2, (top + bottom) / 2
    side = max(right - left, bottom - top) * (1 + 2 * rule.margin)
    side = max(side, float(rule.min_size))
    size = max(1, round(side))
    left, top = _start(cx, size, width), _start(cy, size, height)
    return left, top, left + size, top + size


def _start(centre: float, size: int, extent: int) -> int:
    """First pixel of a span of `size` around `centre`, moved inside [0, extent) if it fits,
    else centred on the image (reaching past both edges)."""
    if size >= extent:
        return (extent - size) // 2
    start = round(centre - size / 2)
    return min(max(start, 0), extent - size)
