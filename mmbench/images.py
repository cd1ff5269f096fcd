"""Decode images into 8-bit RGB PIL images, correctly.

Handles what real datasets contain: EXIF orientation (phone photos), grayscale
("L", "1"), palette ("P", with or without transparency), RGBA/LA (composited on
white, not a black background), CMYK, and 16/32-bit integer or float images
("I;16", "I", "F"), which PIL's ``convert("RGB")`` would clip to white.

And what hostile or broken files contain: only regular files are read (a FIFO or a device
given as an image path would block or never end), and decoding memory is bounded by a
pixel limit checked from the header before any pixel is decoded (decompression bombs: a
194 KB PNG can declare 13,000 x 13,000 pixels).  See :func:`image_limits`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import threading
from typing import Iterator

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
        # in place: one float64 copy of the image, not four (a 64 MP image is 512 MB of it)
        arr = np.array(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr /= 65535.0
        else:  # 32-bit int or float: scale by the observed range of the image
            lo, hi = float(np.min(arr)), float(np.max(arr))
            if hi > lo:
                arr -= lo
                arr /= hi - lo
            else:
                arr[...] = 0.0
        arr *= 255.0
        np.rint(arr, out=arr)
        np.clip(arr, 0, 255, out=arr)
        gray = arr.astype(np.uint8)
        del arr
        return Image.fromarray(gray).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


# ------------------------------------------------------------------ pixel limit

#: Default for the largest image decoded, in pixels (64 MP, e.g. 8000 x 8000).  The largest
#: images in the benchmarks we know are HR-Bench 8K (7680 x 4320 = 33 MP) and tall
#: infographics (InfographicVQA, ~1000 x 10000 = 10-20 MP); document scans are ~8 MP and COCO
#: is 0.3 MP, so this refuses nothing real and leaves 2x headroom.  Memory (process peak,
#: measured): a 64 MP image decodes in 0.5 GB as RGB, 0.9 GB as 16-bit grey and 1.25 GB as
#: RGBA (composited on white), against 1.0 GB for a 20 KB 1-bit 169 MP PNG and 3.9 GB for an
#: RGBA one.  It stays below PIL's own warning threshold (``PIL.Image.MAX_IMAGE_PIXELS``,
#: 89 MP), which this module never changes.
DEFAULT_MAX_PIXELS = 64_000_000

_limit_lock = threading.Lock()
_max_pixels = DEFAULT_MAX_PIXELS


def max_image_pixels() -> int:
    """The pixel limit :func:`load_image` applies when not given one (see :func:`image_limits`)."""
    with _limit_lock:
        return _max_pixels


@contextlib.contextmanager
def image_limits(max_pixels: int | None = None) -> Iterator[int]:
    """Within the block, :func:`load_image` refuses (or, for JPEG, reduces) images with more
    than ``max_pixels`` pixels; ``None`` means :data:`DEFAULT_MAX_PIXELS`.  Yields the limit.

    The setting is process-wide, not a context variable, on purpose: images are decoded in
    the runner's prefetch thread (a ``ThreadPoolExecutor``), which a context variable set in
    the main thread would not reach.  The previous value is restored on exit, so blocks nest;
    blocks overlapping in time from several threads are last-writer-wins.

    A limit above PIL's own hard cap (``2 * PIL.Image.MAX_IMAGE_PIXELS``, 179 MP by default)
    has no effect above that cap: PIL refuses those images at open, and :func:`load_image`
    reports that as a :class:`DataError` naming the cap.  A program that needs larger images
    raises ``PIL.Image.MAX_IMAGE_PIXELS`` itself.

    >>> with image_limits(100_000_000):
    ...     img = load_image(ref)   # also in threads started inside or before the block
    """
    global _max_pixels
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else _check_limit(max_pixels)
    with _limit_lock:
        previous, _max_pixels = _max_pixels, limit
    try:
        yield limit
    finally:
        with _limit_lock:
            _max_pixels = previous


def _check_limit(max_pixels: object) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    return max_pixels


def _fit(img: Image.Image, limit: int, source: str) -> None:
    """Make ``img`` (opened, not yet decoded) at most ``limit`` pixels, or raise ``DataError``.

    Formats that can decode at a reduced scale (JPEG: 1/2, 1/4, 1/8 via ``draft``) are
    reduced by the smallest factor that fits; anything else over the limit is refused
    before decoding.  An image that is already decoded cannot be reduced and is refused.
    """
    w, h = img.size
    if w * h <= limit:
        return
    for s in (2, 4, 8):
        if -(-w // s) * -(-h // s) <= limit:
            # draft picks the largest power-of-two scale with a result at least this size: s
            img.draft(img.mode, (max(1, w // s), max(1, h // s)))
            break
    if img.size[0] * img.size[1] > limit:
        raise DataError(f"image is {w}x{h} ({w * h:,} pixels), over the {limit:,}-pixel limit "
                        "(--max-image-pixels); not decoded", source=source, field="image")


# ------------------------------------------------------------------ decoding

def _open_regular(path: str) -> io.BufferedReader:
    """Open ``path`` for reading if it is a regular file (or a link to one).

    O_NONBLOCK keeps ``open`` itself from blocking on a FIFO with no writer; the type is
    checked on the open descriptor (no race with a swapped path).  Regular files ignore it.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "a special file")
            raise DataError(f"not a regular file ({kind})", source=path, field="image")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load_image(ref: ImageRef, max_pixels: int | None = None) -> Image.Image:
    """Decode ``ref`` to 8-bit RGB.  Raises :class:`DataError` naming the file on failure.

    ``max_pixels`` (default: the current :func:`image_limits` setting, 64 MP) bounds the
    decoded size: it is checked from the header, before decoding; a larger JPEG is decoded at
    1/2, 1/4 or 1/8 scale to fit, any other larger image is refused.  A path must name a
    regular file (not a FIFO, device or directory).
    """
    limit = max_image_pixels() if max_pixels is None else _check_limit(max_pixels)
    fh = None
    try:
        if ref.pil is not None:
            img = ref.pil
        elif ref.data is not None:
            img = Image.open(io.BytesIO(ref.data))
        elif ref.path is not None:
            fh = _open_regular(ref.path)
            img = Image.open(fh)
        else:
            raise DataError("image reference has no path, bytes or image", field="image")
        _fit(img, limit, ref.describe())
        img.load()
        return to_rgb(img)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("image file not found", source=ref.describe(), field="image") from None
    except UnidentifiedImageError:
        raise DataError("cannot decode image (UnidentifiedImageError: not a known image format)",
                        source=ref.describe(), field="image") from None
    except Image.DecompressionBombError as exc:  # over PIL's own cap, which Image.open enforces
        raise DataError(f"image refused by PIL's decompression-bomb check ({exc})",
                        source=ref.describe(), field="image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode image ({exc.__class__.__name__}: {exc})",
                        source=ref.describe(), field="image") from None
    finally:
        if fh is not None:
            fh.close()


def image_content_key(images: list[Image.Image] | tuple[Image.Image, ...]) -> str:
    """A key equal for decoded images that are equal (pixels, size and mode, in order), so
    the models compute what requests about one image share once: BLAKE2b over the raw
    pixel bytes (about 0.1 ms for a 224 x 224 image)."""
    digest = hashlib.blake2b(digest_size=16)
    for img in images:
        digest.update(f"{img.mode}|{img.size}|".encode())
        digest.update(img.tobytes())
    return digest.hexdigest()
