"""Import ``open_clip`` where torchvision cannot be imported: a narrow, PIL-only stand-in.

Why this exists: ``open_clip`` imports torchvision at import time (``open_clip/transform.py``:
``torchvision.transforms.functional`` and nine transform classes; ``open_clip/utils.py``:
``torchvision.ops.misc.FrozenBatchNorm2d``), but its *evaluation* transform only resizes, centre-crops
(or pads), converts to a tensor and normalises a PIL image.  Where torchvision does not import (a
CPU torch build without a matching torchvision wheel: the PyPI wheels fail with ``operator
torchvision::nms does not exist``), :func:`import_open_clip` puts this module's stand-ins in
``sys.modules`` *only while* ``open_clip`` is imported, then removes them, so nothing else in the
process sees a ``torchvision``.  Where torchvision imports, it is used and this module does nothing.

The stand-ins follow torchvision 0.28's PIL code path line for line (``transforms/functional.py``
``resize`` / ``_compute_resized_output_size`` / ``center_crop`` / ``to_tensor`` / ``normalize`` and
``_functional_pil.py`` ``resize`` / ``crop`` / ``pad`` / ``_parse_fill``): the same output sizes, the
same ``PIL.Image.resize`` / ``crop`` / ``ImageOps.expand`` calls, the same tensor arithmetic, so
the pixels are identical (``benchmarks/torchvision_shim_parity.py`` compares them with real
torchvision on many sizes and modes).  Tensors are refused (mmbench passes PIL images); the training
augmentations (``RandomResizedCrop``, ``ColorJitter``, ``Grayscale``) and ``FrozenBatchNorm2d``
can be constructed (open_clip builds a training transform next to the evaluation one) but raise if
used.  Hand-written because no maintained package provides torchvision's transforms without
torchvision.
"""

from __future__ import annotations

import numbers
import sys
import types
from enum import Enum
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

_SHIMMED = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.ops",
            "torchvision.ops.misc")


class InterpolationMode(Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


#: torchvision's ``pil_modes_mapping``
_PIL_MODES = {InterpolationMode.NEAREST: 0, InterpolationMode.BILINEAR: 2, InterpolationMode.BICUBIC: 3,
              InterpolationMode.NEAREST_EXACT: 0, InterpolationMode.BOX: 4, InterpolationMode.HAMMING: 5,
              InterpolationMode.LANCZOS: 1}


def _pil(img: Any, what: str) -> Image.Image:
    if not isinstance(img, Image.Image):
        raise TypeError(f"mmbench's torchvision stand-in ({what}) takes PIL images only, got {type(img).__name__}")
    return img


def get_dimensions(img: Any) -> list[int]:
    width, height = _pil(img, "get_dimensions").size
    return [len(img.getbands()), height, width]


def _resized_size(height: int, width: int, size: list[int]) -> list[int]:
    if len(size) == 2:
        return [size[0], size[1]]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size[0], int(size[0] * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return [new_h, new_w]


def resize(img: Any, size: Any, interpolation: Any = InterpolationMode.BILINEAR, max_size: Any = None,
           antialias: Any = True) -> Image.Image:
    """torchvision ``F.resize`` on a PIL image (always antialiased, as PIL is)."""
    if max_size is not None:
        raise NotImplementedError("mmbench's torchvision stand-in: resize(max_size=...) is not provided")
    if isinstance(interpolation, int):
        interpolation = {v: k for k, v in reversed(list(_PIL_MODES.items()))}[interpolation]
    _, height, width = get_dimensions(img)
    size = [size] if isinstance(size, int) else list(size)
    if len(size) not in (1, 2):
        raise ValueError(f"Size must be an int or a 1 or 2 element tuple/list, not a {len(size)} element tuple/list")
    out = _resized_size(height, width, size)
    if [height, width] == out:
        return img
    return img.resize(tuple(out[::-1]), _PIL_MODES[interpolation])


def crop(img: Any, top: int, left: int, height: int, width: int) -> Image.Image:
    return _pil(img, "crop").crop((left, top, left + width, top + height))


def pad(img: Any, padding: Any, fill: Any = 0, padding_mode: str = "constant") -> Image.Image:
    """torchvision ``F.pad`` on a PIL image, constant mode (what open_clip's ``CenterCropOrPad`` uses)."""
    _pil(img, "pad")
    if padding_mode != "constant" or img.mode in ("P", "F"):
        raise NotImplementedError(f"mmbench's torchvision stand-in pads only in constant mode, not {padding_mode!r} "
                                  f"on a {img.mode!r} image")
    padding = tuple(padding) if isinstance(padding, (list, tuple)) else padding
    if isinstance(padding, tuple) and len(padding) == 1:
        padding = padding[0]
    channels = len(img.getbands())
    fill = 0 if fill is None else fill
    if isinstance(fill, (int, float)) and channels > 1:
        fill = (fill,) * channels
    if isinstance(fill, (list, tuple)):
        fill = tuple(int(x) for x in (fill * channels if len(fill) == 1 else fill))
    else:
        fill = int(fill)
    return ImageOps.expand(img, border=padding, fill=fill)


def center_crop(img: Any, output_size: Any) -> Image.Image:
    if isinstance(output_size, numbers.Number):
        output_size = (int(output_size), int(output_size))
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 1:
        output_size = (output_size[0], output_size[0])
    _, image_height, image_width = get_dimensions(img)
    crop_height, crop_width = output_size
    if crop_width > image_width or crop_height > image_height:
        img = pad(img, [(crop_width - image_width) // 2 if crop_width > image_width else 0,
                        (crop_height - image_height) // 2 if crop_height > image_height else 0,
                        (crop_width - image_width + 1) // 2 if crop_width > image_width else 0,
                        (crop_height - image_height + 1) // 2 if crop_height > image_height else 0], fill=0)
        _, image_height, image_width = get_dimensions(img)
        if crop_width == image_width and crop_height == image_height:
            return img
    return crop(img, int(round((image_height - crop_height) / 2.0)), int(round((image_width - crop_width) / 2.0)),
                crop_height, crop_width)


def to_tensor(pic: Any) -> torch.Tensor:
    _pil(pic, "to_tensor")
    nptype = {"I": np.int32, "I;16" if sys.byteorder == "little" else "I;16B": np.int16, "F": np.float32}
    img = torch.from_numpy(np.array(pic, nptype.get(pic.mode, np.uint8), copy=True))
    if pic.mode == "1":
        img = 255 * img
    img = img.view(pic.size[1], pic.size[0], len(pic.getbands())).permute((2, 0, 1)).contiguous()
    if isinstance(img, torch.ByteTensor):
        return img.to(dtype=torch.get_default_dtype()).div(255)
    return img


def normalize(tensor: torch.Tensor, mean: Any, std: Any, inplace: bool = False) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.ndim < 3:
        raise TypeError("normalize takes a float tensor image (..., C, H, W)")
    if not inplace:
        tensor = tensor.clone()
    mean = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device)
    std = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device)
    if (std == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by zero.")
    mean = mean.view(-1, 1, 1) if mean.ndim == 1 else mean
    std = std.view(-1, 1, 1) if std.ndim == 1 else std
    return tensor.sub_(mean).div_(std)


class Compose:
    def __init__(self, transforms: list[Any]):
        self.transforms = transforms

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img


class Resize(torch.nn.Module):
    def __init__(self, size: Any, interpolation: Any = InterpolationMode.BILINEAR, max_size: Any = None,
                 antialias: Any = True):
        super().__init__()
        self.size, self.interpolation, self.max_size, self.antialias = size, interpolation, max_size, antialias

    def forward(self, img: Any) -> Any:
        return resize(img, self.size, self.interpolation, self.max_size, self.antialias)


class CenterCrop(torch.nn.Module):
    def __init__(self, size: Any):
        super().__init__()
        if isinstance(size, numbers.Number):
            size = (int(size), int(size))
        elif isinstance(size, (tuple, list)) and len(size) == 1:
            size = (size[0], size[0])
        if len(size) != 2:
            raise ValueError("Please provide only two dimensions (h, w) for size.")
        self.size = size

    def forward(self, img: Any) -> Any:
        return center_crop(img, self.size)


class ToTensor:
    def __call__(self, pic: Any) -> torch.Tensor:
        return to_tensor(pic)


class Normalize(torch.nn.Module):
    def __init__(self, mean: Any, std: Any, inplace: bool = False):
        super().__init__()
        self.mean, self.std, self.inplace = mean, std, inplace

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return normalize(tensor, self.mean, self.std, self.inplace)


class _TrainingOnly:
    """Constructible (open_clip builds its training transform beside the evaluation one), never usable."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} (a training augmentation) is not provided by mmbench's "
                                  "torchvision stand-in; install a torchvision that matches your torch to train")


class RandomResizedCrop(_TrainingOnly):
    pass


class ColorJitter(_TrainingOnly):
    pass


class Grayscale(_TrainingOnly):
    pass


class FrozenBatchNorm2d(_TrainingOnly):
    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError("FrozenBatchNorm2d (open_clip's lock-image training option) is not provided by "
                                  "mmbench's torchvision stand-in")


def _modules() -> dict[str, types.ModuleType]:
    functional = types.ModuleType("torchvision.transforms.functional")
    for fn in (get_dimensions, resize, crop, pad, center_crop, to_tensor, normalize):
        setattr(functional, fn.__name__, fn)
    functional.InterpolationMode = InterpolationMode
    transforms = types.ModuleType("torchvision.transforms")
    for cls in (InterpolationMode, Compose, Resize, CenterCrop, ToTensor, Normalize, RandomResizedCrop, ColorJitter,
                Grayscale):
        setattr(transforms, cls.__name__, cls)
    transforms.functional = functional
    misc = types.ModuleType("torchvision.ops.misc")
    misc.FrozenBatchNorm2d = FrozenBatchNorm2d
    ops = types.ModuleType("torchvision.ops")
    ops.misc = misc
    root = types.ModuleType("torchvision")
    root.__version__ = "mmbench-stand-in"
    root.transforms, root.ops = transforms, ops
    mods = {"torchvision": root, "torchvision.transforms": transforms, "torchvision.transforms.functional": functional,
            "torchvision.ops": ops, "torchvision.ops.misc": misc}
    for mod in mods.values():
        mod.__mmbench_stand_in__ = True
    return mods


def torchvision_error() -> str | None:
    """Why ``import torchvision`` fails here (one line), or None when it imports."""
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # ImportError, or RuntimeError from a wheel built for another torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]  # what a failed import left half-initialised
        return f"{type(exc).__name__}: {exc}"
    return None


def import_open_clip() -> tuple[types.ModuleType, str | None]:
    """``(open_clip, why)``: ``why`` is None when open_clip imported with the real torchvision, else the
    reason torchvision did not import (open_clip was then imported over this module's stand-ins).
    Raises ImportError when open_clip itself is missing."""
    if "open_clip" in sys.modules:  # imported already (or blocked: None makes the import raise ImportError)
        import open_clip
        return open_clip, getattr(open_clip, "__mmbench_torchvision_stand_in__", None)
    why = torchvision_error()
    if why is None:
        import open_clip
        return open_clip, None
    # open_clip imports transformers, whose import probes torchvision with importlib.util.find_spec:
    # import it first so it sees the real state, not the stand-in
    import transformers  # noqa: F401

    saved = {name: sys.modules.get(name) for name in _SHIMMED}
    sys.modules.update(_modules())
    try:
        import open_clip
    except BaseException:
        for name in [m for m in sys.modules if m == "open_clip" or m.startswith("open_clip.")]:
            del sys.modules[name]  # no half-imported open_clip holding the stand-in
        raise
    finally:
        for name, mod in saved.items():  # nothing outside open_clip sees the stand-in
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
    open_clip.__mmbench_torchvision_stand_in__ = why
    return open_clip, why
