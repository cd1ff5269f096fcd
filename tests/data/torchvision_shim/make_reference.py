"""Reference outputs of open_clip's evaluation transforms under the REAL torchvision.

``tests/test_torchvision_shim.py`` builds the same transforms with open_clip imported over
mmbench's PIL-only stand-in (:mod:`mmbench.models.torchvision_shim`) and requires equal tensors.
Run where torchvision imports, with the same Pillow and numpy as the main environment
(recorded in the output), e.g. the peer venv of ``benchmarks/install_peers.sh``::

    /work/venvs/clip-benchmark/bin/python tests/data/torchvision_shim/make_reference.py

Writes ``reference.npz`` (the inputs are regenerated from a seed, so only outputs are stored).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: (height, width) of the inputs: wider, taller, square, odd sizes, smaller than the output, extreme ratios
SIZES = [(50, 70), (70, 50), (32, 32), (31, 33), (100, 17), (17, 100), (12, 20), (64, 64)]
#: open_clip.image_transform arguments: (image_size, resize_mode, interpolation, fill_color)
CASES = [(24, "shortest", "bicubic", 0), ((24, 32), "shortest", "bicubic", 0), (24, "longest", "bicubic", 0),
         ((20, 28), "longest", "bilinear", 255), (24, "squash", "bilinear", 0), (32, "shortest", "bilinear", 0)]


def inputs():
    """Deterministic test images: RGB noise with a gradient, plus one grayscale and one RGBA."""
    from PIL import Image

    rng = np.random.RandomState(0)
    images = []
    for i, (h, w) in enumerate(SIZES):
        arr = (rng.rand(h, w, 3) * 200 + np.linspace(0, 55, w)[None, :, None]).astype(np.uint8)
        image = Image.fromarray(arr)
        images.append(image.convert("L") if i == 3 else image.convert("RGBA") if i == 5 else image)
    return images


def transform(open_clip, case):
    size, mode, interpolation, fill = case
    return open_clip.image_transform(size, is_train=False, resize_mode=mode, interpolation=interpolation,
                                     fill_color=fill)


def main() -> int:
    import PIL
    import open_clip
    import torch
    import torchvision

    out = {}
    for c, case in enumerate(CASES):
        tf = transform(open_clip, case)
        for i, image in enumerate(inputs()):
            out[f"case{c}_image{i}"] = tf(image).numpy()
    meta = {"torchvision": torchvision.__version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "PIL": PIL.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    np.savez_compressed(HERE / "reference.npz", meta=np.array(json.dumps(meta)), **out)
    print(json.dumps(meta), len(out), "tensors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
