"""Thumbnails: at most `size` pixels on the longest side, JPEG, cached on disk."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from visor.embedding.crops import crop_region
from visor.errors import FormatError
from visor.media.images import decode


def make_thumbnail(data: bytes, name: str, size: int) -> bytes:
    """JPEG bytes of the image shrunk to fit `size` x `size` (never enlarged)."""
    img = decode(data, name, draft=(size, size))
    img.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85, optimize=False)
    return out.getvalue()


def make_crop(data: bytes, name: str, box: tuple[float, float, float, float], size: int) -> bytes:
    """JPEG bytes of a box's crop (as the object embedding cuts it: context margin, squared),
    shrunk to fit `size` x `size`. Raises FormatError when the box has no crop."""
    img = decode(data, name)
    region = crop_region(box, img.width, img.height)
    if isinstance(region, str):
        raise FormatError(f"{name}: {region}")
    crop = img.crop(region)
    crop.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=85, optimize=False)
    return out.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write a cache file so that readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
