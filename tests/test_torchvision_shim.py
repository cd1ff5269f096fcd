"""open_clip's evaluation transforms over mmbench's PIL-only torchvision stand-in give the same
tensors as over the real torchvision (recorded by ``tests/data/torchvision_shim/make_reference.py``
with torchvision 0.28.0, the same Pillow and numpy), and the stand-in never leaks out of the import."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mmbench.models import torchvision_shim

REF = Path(__file__).parent / "data" / "torchvision_shim"


def _make_reference():
    sys.path.insert(0, str(REF))
    try:
        import make_reference
    finally:
        sys.path.remove(str(REF))
    return make_reference


def test_stand_in_transforms_equal_torchvision_tensors():
    import PIL

    ref = np.load(REF / "reference.npz")
    meta = json.loads(str(ref["meta"]))
    if meta["PIL"] != PIL.__version__:
        pytest.skip(f"reference recorded with Pillow {meta['PIL']}, this is {PIL.__version__}")
    mk = _make_reference()
    try:
        open_clip, _ = torchvision_shim.import_open_clip()
    except ImportError:
        pytest.skip("open_clip is not installed")
    for c, case in enumerate(mk.CASES):
        tf = mk.transform(open_clip, case)
        for i, image in enumerate(mk.inputs()):
            got = tf(image).numpy()
            want = ref[f"case{c}_image{i}"]
            assert got.shape == want.shape and got.dtype == want.dtype, (case, i)
            assert np.array_equal(got, want), (case, i, float(np.abs(got - want).max()))


def test_stand_in_functions_follow_torchvision_rules():
    from PIL import Image

    img = Image.new("RGB", (70, 50), (10, 20, 30))
    assert torchvision_shim.resize(img, 24).size == (33, 24)  # shortest edge; long side int(24 * 70 / 50)
    assert torchvision_shim.resize(img, [50]) is img  # already that size: returned as is
    assert torchvision_shim.center_crop(img, 60).size == (60, 60)  # padded (height), then cropped
    tensor = torchvision_shim.to_tensor(img)
    assert tensor.shape == (3, 50, 70) and float(tensor[2, 0, 0]) == pytest.approx(30 / 255)
    with pytest.raises(TypeError, match="PIL images only"):
        torchvision_shim.resize(tensor, 24)
    with pytest.raises(NotImplementedError, match="training augmentation"):
        torchvision_shim.RandomResizedCrop(24)(img)


def test_stand_in_is_gone_after_the_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "open_clip", raising=False)
    for name in [m for m in sys.modules if m.startswith("open_clip.")]:
        monkeypatch.delitem(sys.modules, name)
    try:
        open_clip, why = torchvision_shim.import_open_clip()
    except ImportError:
        pytest.skip("open_clip is not installed")
    if why is None:
        pytest.skip("torchvision imports here: the stand-in is not used")
    assert "torchvision" in why
    assert not [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]
    assert open_clip.transform.F.__name__ == "torchvision.transforms.functional"  # what open_clip holds
