"""The image statistics' loops over pixels, compiled (numba): one pass over an image where
Pillow and NumPy made one per statistic, none holding the GIL, so that the embed job's decoding
threads measure side by side. Each gives what the Pillow and NumPy expressions it replaced gave
(`tests/test_quality.py` holds them to it): the same integer histograms and grey levels, the
same float32 brightness and the same order statistics of it.

Compiled on first use and cached beside this file (numba's `cache=True`): a second or two, once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_BIN_SHIFT = 16  # a float32's sign, exponent and top 7 mantissa bits: its bin


@njit(cache=True, nogil=True)
def scan(
    pixels: np.ndarray, step: int, weighted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray, np.ndarray]:
    """One pass over (h, w, 3) uint8 RGB pixels. Gives the histogram of each channel (as
    Pillow's `histogram()`), the grey copy (Pillow's `convert("L")`: ITU-R 601-2 in 16-bit fixed
    point, rounded), whether every pixel's channels are equal, and for every `step`-th row and
    column: the brightness before its square root (float32, `weighted` the three channels'
    terms, summed R + G, then + B) and a histogram of the red channel (a grey image's levels)."""
    h, w = pixels.shape[0], pixels.shape[1]
    counts = np.zeros((3, 256), np.int64)
    gray = np.empty((h, w), np.uint8)
    squares = np.empty(((h + step - 1) // step) * ((w + step - 1) // step), np.float32)
    sampled = np.zeros(256, np.int64)
    differ, n = 0, 0
    for y in range(h):
        for x in range(w):
            r, g, b = pixels[y, x, 0], pixels[y, x, 1], pixels[y, x, 2]
            counts[0, r] += 1
            counts[1, g] += 1
            counts[2, b] += 1
            level = np.uint32(r) * 19595 + np.uint32(g) * 38470 + np.uint32(b) * 7471 + 0x8000
            gray[y, x] = level >> 16
            differ |= (r ^ g) | (g ^ b)
        if y % step == 0:  # the row is in the cache: its sampled pixels now
            for x in range(0, w, step):
                r, g, b = pixels[y, x, 0], pixels[y, x, 1], pixels[y, x, 2]
                squares[n] = (weighted[0, r] + weighted[1, g]) + weighted[2, b]
                sampled[r] += 1
                n += 1
    return counts, gray, differ == 0, squares, sampled


@njit(cache=True, nogil=True)
def order_statistics(values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The `ranks`-th smallest (from 0; ascending ranks) of non-negative float32 `values`, as
    a full sort would find them. A non-negative float's bits order as it does, so each value's
    top bits are its bin, and only the few values of the bins holding a rank are sorted."""
    bits = values.view(np.uint32)
    counts = np.zeros(1 << (32 - _BIN_SHIFT - 1), np.int64)
    for i in range(len(bits)):
        counts[bits[i] >> _BIN_SHIFT] += 1
    bins, starts = np.empty(len(ranks), np.int64), np.empty(len(ranks), np.int64)
    wanted = np.zeros(len(counts), np.bool_)
    below, b = 0, 0
    for j in range(len(ranks)):
        while below + counts[b] <= ranks[j]:
            below += counts[b]
            b += 1
        bins[j], starts[j], wanted[b] = b, below, True
    held = 0
    for b in range(bins[-1] + 1):
        held += counts[b] if wanted[b] else 0
    chosen = np.empty(held, np.float32)
    n = 0
    for i in range(len(bits)):
        if wanted[bits[i] >> _BIN_SHIFT]:
            chosen[n] = values[i]
            n += 1
    chosen.sort()  # bin by bin, as the bits order them
    found = np.empty(len(ranks), np.float32)
    offset, j = 0, 0
    for b in range(bins[-1] + 1):
        while j < len(ranks) and bins[j] == b:
            found[j] = chosen[offset + ranks[j] - starts[j]]
            j += 1
        offset += counts[b] if wanted[b] else 0
    return found


@njit(cache=True, nogil=True)
def laplacian_ratio(gray: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of (h, w) uint8 grey levels (h and w at
    least 3) over the variance of the levels themselves; 0 for a flat image. The sums are
    integers, exact whatever the image's size."""
    h, w = gray.shape
    total = squares = 0
    for y in range(h):
        for x in range(w):
            v = int(gray[y, x])
            total += v
            squares += v * v
    lap_total = lap_squares = 0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            v = 4 * int(gray[y, x]) - int(gray[y - 1, x]) - int(gray[y + 1, x])
            v -= int(gray[y, x - 1]) + int(gray[y, x + 1])
            lap_total += v
            lap_squares += v * v
    n, m = h * w, (h - 2) * (w - 2)
    spread = squares / n - (total / n) ** 2
    detail = lap_squares / m - (lap_total / m) ** 2
    return detail / spread if spread > 1e-6 else 0.0
