"""Image decoding: EXIF rotation and every pixel mode real datasets contain."""

import io

import numpy as np
import pytest
from PIL import Image

from mmbench.errors import DataError
from mmbench.images import load_image
from mmbench.types import ImageRef


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(ImageRef(data=buf.getvalue()))
    assert out.size == (20, 40)  # width and height swapped
    top = np.asarray(out)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the blue strip is now at the top


def test_grayscale_and_bilevel_become_rgb():
    gray = Image.fromarray(np.full((4, 4), 77, dtype=np.uint8))
    out = load_image(ImageRef(data=_png_bytes(gray)))
    assert out.mode == "RGB" and tuple(np.asarray(out)[0, 0]) == (77, 77, 77)
    bw = Image.new("1", (4, 4), 1)
    assert tuple(np.asarray(load_image(ImageRef(pil=bw)))[0, 0]) == (255, 255, 255)


def test_palette_with_transparency_composites_on_white():
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0] + [10, 200, 10] * 255)
    p.info["transparency"] = 0
    out = load_image(ImageRef(data=_png_bytes(p, transparency=0)))
    assert tuple(np.asarray(out)[0, 0]) == (255, 255, 255)  # transparent -> white, not black


def test_rgba_composites_on_white():
    rgba = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    rgba.putpixel((1, 1), (0, 0, 255, 255))
    arr = np.asarray(load_image(ImageRef(data=_png_bytes(rgba))))
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[1, 1]) == (0, 0, 255)


def test_sixteen_bit_is_scaled_not_clipped():
    arr16 = np.array([[0, 32768], [65535, 1000]], dtype=np.uint16)
    img = Image.fromarray(arr16)
    assert img.mode.startswith("I;16")
    out = np.asarray(load_image(ImageRef(data=_png_bytes(img))))
    assert out[0, 0, 0] == 0 and out[1, 0, 0] == 255 and 126 <= out[0, 1, 0] <= 129
    # PIL's own convert("RGB") clips this mid-grey to white; we must not
    assert out[0, 1, 0] != 255


def test_float_image_uses_its_range():
    img = Image.fromarray(np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32))
    assert img.mode == "F"
    out = np.asarray(load_image(ImageRef(pil=img)))
    assert out[0, 0, 0] == 0 and out[1, 0, 0] == 255


def test_bad_images_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"missing\.png.*field 'image'.*not found"):
        load_image(ImageRef(path=str(tmp_path / "missing.png")))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"junk\.png.*cannot decode"):
        load_image(ImageRef(path=str(junk)))
    truncated = _png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))[:60]
    with pytest.raises(DataError, match="cannot decode"):
        load_image(ImageRef(data=truncated))
