"""Image files: header probes for ingestion, and safe, orientation-correct decoding."""

from __future__ import annotations

import io
import mimetypes
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from visor.errors import FormatError

# A 100-megapixel photo is legitimate; beyond this a file is more likely hostile than useful.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False
_JPEG_END = b"\xff\xd9"
_TAIL = 4096


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    format: str


def probe(f: IO[bytes], name: str, size: int) -> ImageInfo:
    """Width, height and format from the header, and a cheap check that a JPEG is complete.

    Raises FormatError naming `name` for empty, unreadable or truncated files.
    """
    if size == 0:
        raise FormatError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f)
            width, height = img.size
            fmt = img.format or "?"
            orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "TIFF", "WEBP") else 1
    except UnidentifiedImageError:
        raise FormatError(f"{name}: not an image (unrecognised file contents)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FormatError(f"{name}: image is too large (over {MAX_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise FormatError(f"{name}: unreadable image header ({e})") from None
    if fmt == "JPEG" and size > _TAIL:
        f.seek(size - _TAIL)
        if _JPEG_END not in f.read(_TAIL):
            raise FormatError(f"{name}: truncated JPEG (no end-of-image marker)")
    elif fmt == "JPEG":
        f.seek(0)
        if _JPEG_END not in f.read():
            raise FormatError(f"{name}: truncated JPEG (no end-of-image marker)")
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: the displayed size is swapped
        width, height = height, width
    return ImageInfo(width, height, fmt)


def header_size(f: IO[bytes], size: int) -> tuple[int, int] | None:
    """(width, height) as stored, from a PNG's or a complete JPEG's header, reading a few
    bytes (no decoder); None means "probe it properly" (another format, or something odd,
    which `probe` then names). EXIF orientation is not applied."""
    if size < 24:
        return None
    head = f.read(24)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if not head.startswith(b"\xff\xd8\xff"):
        return None
    f.seek(max(size - _TAIL, 0))
    if _JPEG_END not in f.read(_TAIL):
        return None
    return _jpeg_frame_size(f)


# Start-of-frame markers: baseline, progressive, lossless... (not DHT C4, JPG C8, DAC CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_frame_size(f: IO[bytes]) -> tuple[int, int] | None:
    """Walk the JPEG's segments (skipping each by its length) to the frame header."""
    f.seek(2)
    for _ in range(256):
        segment = f.read(4)
        if len(segment) < 4 or segment[0] != 0xFF:
            return None
        marker, length = segment[1], int.from_bytes(segment[2:4], "big")
        if marker in _SOF:
            frame = f.read(5)  # precision, height, width
            if len(frame) < 5:
                return None
            return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
        if length < 2:
            return None
        f.seek(length - 2, io.SEEK_CUR)
    return None


DraftSize = tuple[int, int] | Callable[[tuple[int, int]], tuple[int, int]]


def decode(data: bytes, name: str, *, draft: DraftSize | None = None) -> Image.Image:
    """An RGB image with its EXIF orientation applied.

    `draft` lets JPEG decode at a reduced scale no smaller than that size (much faster when the
    image will be shrunk anyway); it may be a function of the full (displayed) size.
    Odd modes (CMYK, 16-bit, palette, alpha) are converted.
    """
    if not data:
        raise FormatError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            orientation = img.getexif().get(0x0112, 1)
            if draft is not None and img.format == "JPEG":
                if callable(draft):
                    w, h = img.size
                    draft = draft((h, w) if orientation in (5, 6, 7, 8) else (w, h))
                img.draft("RGB", _draft_size(draft, orientation))
            img.load()
    except UnidentifiedImageError:
        raise FormatError(f"{name}: not an image (unrecognised file contents)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FormatError(f"{name}: image is too large (over {MAX_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as e:
        reason = "truncated image" if "truncated" in str(e) else f"cannot decode ({e})"
        raise FormatError(f"{name}: {reason}") from None
    if orientation not in (1, None):  # exif_transpose copies the image even when upright
        img = ImageOps.exif_transpose(img) or img
    return to_rgb(img)


# What every browser's <img> shows as it is; anything else (TIFF, ...) is sent as PNG.
BROWSER_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})


def for_browser(data: bytes, name: str) -> tuple[bytes, str]:
    """The image's bytes and media type as a browser can show them: the file itself when its
    type is one browsers decode, else its pixels as PNG (EXIF orientation applied, as a
    browser applies it to the files it decodes itself)."""
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type in BROWSER_TYPES:
        return data, media_type
    img = decode(data, name)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue(), "image/png"


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB from any PIL mode; transparent pixels are composed over white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping.
        import numpy as np

        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) or 1.0
        return Image.fromarray((arr * (255.0 / top)).astype("uint8"), "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")


def pixels(image: Image.Image) -> np.ndarray:
    """A read-only array of an RGB or L image's pixels, (height, width, 3) or (height, width),
    lent by Pillow without a copy (its Arrow export) where the image's rows lie in one block
    of memory. `np.asarray` copies them twice holding the GIL: 0.3-0.7 ms of a 640x480 image,
    the one step of an image's statistics that two decoding threads could not share. Copied
    as `np.asarray` does elsewhere (another mode, an image over one block, an older Pillow)."""
    if image.mode in ("RGB", "L"):
        import pyarrow as pa

        try:
            lent = pa.array(image)
        except (ValueError, TypeError, pa.ArrowException):
            return np.asarray(image)
        values = np.frombuffer(lent.buffers()[-1], np.uint8)
        if image.mode == "L":
            return values[: image.width * image.height].reshape(image.height, image.width)
        # RGB is kept as four bytes a pixel, the fourth unused
        block = values[: image.width * image.height * 4]
        return block.reshape(image.height, image.width, 4)[..., :3]
    return np.asarray(image)


def _draft_size(target: tuple[int, int], orientation: int) -> tuple[int, int]:
    # The draft target is in stored (unrotated) pixels.
    if orientation in (5, 6, 7, 8):
        return (target[1], target[0])
    return target
