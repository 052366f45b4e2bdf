"""Image quality: statistics of one image's pixels, and the issues they point to.

The statistics and the thresholds are cleanvision's (`ImagePropertyIssueManager` defaults),
so that the flags agree with it: dark (99th percentile of brightness < 0.32), light (5th
percentile > 0.95), blurry (edge strength and grey-level spread, score < 0.29), low
information (entropy < 3 bits), odd aspect ratio (short/long side < 0.35), odd size (the
square root of the area outside the dataset's quartiles by 3 interquartile ranges), grayscale.
Where Visor differs: an image is grayscale when its three channels are equal (cleanvision asks
only whether the file is stored as one channel, missing greyscale photos saved as RGB), and two
more: low contrast (the 1st to 99th percentile of brightness spans < 0.15) and tiny (a side
under 32 pixels). Blur is also what a person sees (`sharpness`): cleanvision measures edges on a
64-px copy, where a plainly blurred 2048-px photo still looks sharp.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageStat

from visor.media.images import pixels as pixels_of

ISSUES = (
    "dark",
    "light",
    "blurry",
    "low_information",
    "low_contrast",
    "grayscale",
    "odd_aspect_ratio",
    "odd_size",
    "tiny",
)
_BLUR_SIDE = 64  # cleanvision measures edges on a copy at most this large
SHARPNESS_SIDE = 256  # sharpness is measured with the short side at this size
# Below this, an image is blurry whatever its siblings: real photos measured 1.3 to 8.3 here, the
# same blurred by a Gaussian of radius 1% of their short side 0.016 at most (README).
SHARPNESS_MIN = 0.05
# Or far blurrier than the dataset's own: its log sharpness this many robust deviations below
# the median (datasets of at least SIBLINGS measured images).
SHARPNESS_MADS = 4.0
FAR_BELOW = float(np.log(8))
SIBLINGS = 8
TINY_SIDE = 32
LOW_CONTRAST_SPAN = 0.15


@dataclass(frozen=True)
class ImageStats:
    brightness: float  # of the mean colour, 0 to 1
    brightness_p1: float
    brightness_p5: float
    brightness_p99: float
    entropy: float  # bits, of the grey levels (of the three channels for colour images)
    blurriness: float  # standard deviation of the edge image (higher: sharper)
    # The Laplacian's variance over the grey levels' variance, at a fixed scale relative to
    # the image (short side SHARPNESS_SIDE): the share of detail, whatever the image's size
    # and contrast (higher: sharper). NaN where not measured (rows of an older Visor).
    sharpness: float
    gray_spread: float  # standard deviation of the grey-level histogram
    grayscale: bool
    width: int
    height: int

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def columns(cls, stats: Sequence[ImageStats]) -> dict[str, list[Any]]:
        """`stats` as a list per statistic (the store's columns)."""
        return {name: [getattr(s, name) for s in stats] for name in cls.names()}


# Perceived brightness: the weighted root mean square of the channels (weights of R, G, B).
_WEIGHTS = (0.241, 0.691, 0.068)
# Its terms per channel and level before the square root (w · v², rounded to float32 as
# NumPy's float32 arithmetic rounds them), for the kernel's sampled pixels.
WEIGHTED_SQUARES = np.stack(
    [np.arange(256, dtype=np.float32) ** 2 * np.float32(w) for w in _WEIGHTS]
)


def _brightness(r: np.ndarray | float, g: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    wr, wg, wb = _WEIGHTS
    return np.sqrt(wr * (r * r) + wg * (g * g) + wb * (b * b)) / 255


def image_stats(image: Image.Image) -> ImageStats:
    """The statistics of an RGB image (as `media.images.decode` gives it)."""
    from visor.quality import kernels  # numba: imported by the jobs that measure only

    pixels = pixels_of(image)
    # The brightness percentiles from every other row and column above 512x512 (the tails of a
    # brightness histogram don't depend on single pixels).
    step = 2 if pixels.shape[0] * pixels.shape[1] > 1 << 18 else 1
    # One pass: the histograms (entropy, mean colour), the grey copy (both edge measures),
    # whether the channels are equal, and the sampled pixels' brightness.
    counts, grey_levels, gray, squares, sampled = kernels.scan(pixels, step, WEIGHTED_SQUARES)
    mean = (counts * np.arange(256)).sum(axis=1) / counts.sum(axis=1)
    if gray:  # as PIL's grey copy measures them: one channel's levels
        ends = np.cumsum(sampled)
        p1, p5, p99 = _percentiles(
            len(squares), lambda ks: np.searchsorted(ends, ks, side="right") / 255.0
        )
        entropy = _entropy(counts[0])
    else:  # the order statistics of the squares are those of the brightness: both monotone
        p1, p5, p99 = _percentiles(
            len(squares),
            lambda ks: np.sqrt(kernels.order_statistics(squares, ks)) / np.float32(255),
        )
        entropy = _entropy(counts)
    gray_image = Image.fromarray(grey_levels, "L")
    # The 64-px copy is reduced from the grey copy rather than from the colour image (the
    # same pixels but for rounding, a third of the resampling).
    ratio = max(image.width, image.height) / _BLUR_SIDE
    small_gray = (
        gray_image.resize(
            (max(int(image.width // ratio), 1), max(int(image.height // ratio), 1)),
            reducing_gap=3.0,  # whole-factor reduction first: as fair, a fraction of the time
        )
        if ratio > 1
        else gray_image
    )
    edges = small_gray.filter(ImageFilter.FIND_EDGES)
    return ImageStats(
        brightness=float(_brightness(*mean)),
        brightness_p1=p1,
        brightness_p5=p5,
        brightness_p99=p99,
        entropy=float(entropy),
        blurriness=float(np.sqrt(ImageStat.Stat(edges).var[0])),
        sharpness=_sharpness(gray_image),
        gray_spread=float(np.std(small_gray.histogram())),
        grayscale=gray,
        width=image.width,
        height=image.height,
    )


def _entropy(counts: np.ndarray) -> float:
    """Bits per value of a histogram, as PIL's `Image.entropy` computes it (all bands' bins
    together)."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _percentiles(
    count: int, order: Callable[[np.ndarray], np.ndarray], qs: tuple[float, ...] = (1, 5, 99)
) -> list[float]:
    """`np.percentile`'s linear interpolation of `count` values, from `order(ranks)`: their
    `ranks`-th smallest (from 0, ascending), the few needed found without a sort."""
    last = count - 1
    spots = [q / 100 * last for q in qs]
    ranks = sorted({k for at in spots for k in (int(at), min(int(at) + 1, last))})
    chosen = dict(zip(ranks, order(np.array(ranks, np.int64)).tolist(), strict=True))
    out = []
    for at in spots:
        a, b = chosen[int(at)], chosen[min(int(at) + 1, last)]
        out.append(a + (b - a) * (at - int(at)))
    return out


def sharpness(image: Image.Image) -> float:
    """The share of fine detail in an image, measured as a person sees it whatever its size:
    on a copy whose short side is `SHARPNESS_SIDE` (or the image, when smaller), the variance
    of its Laplacian over the variance of its grey levels. A flat image: 0."""
    return _sharpness(image.convert("L"))


def _sharpness(gray: Image.Image) -> float:
    from visor.quality import kernels

    short = min(gray.size)
    if short > SHARPNESS_SIDE:
        ratio = SHARPNESS_SIDE / short
        size = (max(round(gray.width * ratio), 1), max(round(gray.height * ratio), 1))
        gray = gray.resize(size, Image.Resampling.BOX)
    if min(gray.size) < 3:
        return 0.0
    return float(kernels.laplacian_ratio(pixels_of(gray)))


def _blurry(stats: dict[str, np.ndarray]) -> np.ndarray:
    """cleanvision's rule (edge strength and grey-level spread on a 64-px copy), or a sharpness
    a person sees as blurred: below `SHARPNESS_MIN`, or far below the dataset's own."""
    blur = 1 - np.exp(-stats["blurriness"] * 0.01)
    spread = 1 - np.exp(-stats["gray_spread"] * 0.01)
    spread = np.where(spread <= 0.18, 0.0, spread)
    theirs = np.minimum(blur + spread, 1) < 0.29
    sharp = stats.get("sharpness")
    if sharp is None:
        return theirs
    sharp = np.asarray(sharp, np.float64)
    measured = np.isfinite(sharp)
    big = np.minimum(stats["width"], stats["height"]) >= TINY_SIDE
    low = measured & big & (sharp < SHARPNESS_MIN)
    if (measured & big).sum() >= SIBLINGS:
        logs = np.log(np.maximum(sharp[measured & big], 1e-9))
        median = np.median(logs)
        mad = 1.4826 * np.median(np.abs(logs - median))
        with np.errstate(invalid="ignore", divide="ignore"):
            # At least FAR_BELOW times less sharp than the median, whatever the spread.
            far = np.log(np.maximum(sharp, 1e-9)) < median - max(SHARPNESS_MADS * mad, FAR_BELOW)
        low |= measured & big & far
    return theirs | low


def issues(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A boolean array per issue, from columns of `ImageStats` over a whole dataset (odd size
    compares each image with the others)."""
    width = stats["width"].astype(np.float64)
    height = stats["height"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.minimum(width / height, height / width)
    return {
        "dark": stats["brightness_p99"] < 0.32,
        "light": (1 - stats["brightness_p5"]) < 0.05,
        "blurry": _blurry(stats),
        "low_information": np.minimum(0.1 * stats["entropy"], 1) < 0.3,
        "low_contrast": (stats["brightness_p99"] - stats["brightness_p1"]) < LOW_CONTRAST_SPAN,
        "grayscale": stats["grayscale"].astype(bool),
        "odd_aspect_ratio": aspect < 0.35,
        "odd_size": _odd_size(np.sqrt(width) * np.sqrt(height)),
        "tiny": np.minimum(width, height) < TINY_SIDE,
    }


def _odd_size(size: np.ndarray) -> np.ndarray:
    if not len(size):
        return np.zeros(0, bool)
    q1, q3 = np.percentile(size, [25, 75])
    low, high = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
    middle, gap = (low + high) / 2, high - low
    if gap > 0:
        score, threshold = 1 - np.clip(np.abs(size - middle) / gap, 0, 1), 0.5
    else:
        score, threshold = 1 - np.clip(np.abs(size - middle) / middle, 0, 1), 1.0
    return score < threshold


__all__ = ["ISSUES", "ImageStats", "image_stats", "issues"]
