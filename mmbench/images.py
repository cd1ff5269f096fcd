"""Decode images into 8-bit RGB PIL images, correctly.

Handles what real datasets contain: EXIF orientation (phone photos), grayscale
("L", "1"), palette ("P", with or without transparency), RGBA/LA (composited on
white, not a black background), CMYK, and 16/32-bit integer or float images
("I;16", "I", "F"), which PIL's ``convert("RGB")`` would clip to white.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmbench.errors import DataError
from mmbench.types import ImageRef


def to_rgb(img: Image.Image) -> Image.Image:
    """Return an 8-bit RGB copy of ``img`` with EXIF rotation applied."""
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 65535.0
        else:  # 32-bit int or float: scale by the observed range of the image
            lo, hi = float(np.min(arr)), float(np.max(arr))
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(ref: ImageRef) -> Image.Image:
    """Decode ``ref`` to RGB.  Raises :class:`DataError` naming the file on failure."""
    try:
        if ref.pil is not None:
            img = ref.pil
        elif ref.data is not None:
            img = Image.open(io.BytesIO(ref.data))
        elif ref.path is not None:
            img = Image.open(ref.path)
        else:
            raise DataError("image reference has no path, bytes or image", field="image")
        img.load()
        return to_rgb(img)
    except FileNotFoundError:
        raise DataError("image file not found", source=ref.describe(), field="image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot decode image ({exc.__class__.__name__}: {exc})",
                        source=ref.describe(), field="image") from None
