"""The open-clip adapter, against a stand-in ``open_clip`` module.

The real package needs torchvision, which cannot be imported beside the CPU torch build
used here, so these tests install a small module with open_clip's documented API
(``create_model_and_transforms(name, pretrained=..., device=...) -> (model, train_tf,
eval_tf)``, ``get_tokenizer(name)``, ``model.encode_image`` / ``encode_text``) and check
mmbench's side: loading, batching, normalisation, fingerprint and the retrieval numbers.
"""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from mmbench.errors import ModelLoadError
from mmbench.runner import evaluate
from tests.test_retrieval_task import CAPTION_COUNTS, _brute_force_recall, _captions, _jpeg, _local_task

CONTEXT = 12


class _StandInCLIP(torch.nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.visual = torch.nn.Parameter(torch.randn(3 * 8 * 8, 16, generator=gen))
        self.tokens = torch.nn.Parameter(torch.randn(97, 16, generator=gen))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.flatten(1) @ self.visual

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens > 0).float().unsqueeze(-1)
        return (self.tokens[tokens] * mask).sum(1) / mask.sum(1).clamp(min=1)


def _preprocess(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB").resize((8, 8), Image.BICUBIC), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def _tokenize(texts: list[str]) -> torch.Tensor:
    out = torch.zeros(len(texts), CONTEXT, dtype=torch.long)  # fixed context length, zero padding
    for i, text in enumerate(texts):
        ids = [1 + ord(c) % 96 for c in text][:CONTEXT]
        out[i, :len(ids)] = torch.tensor(ids)
    return out


@pytest.fixture
def stand_in(monkeypatch):
    module = types.ModuleType("open_clip")
    module.__version__ = "stand-in"
    calls = []

    def create_model_and_transforms(name, pretrained=None, device="cpu"):
        calls.append((name, pretrained, device))
        if name != "StandIn-B":
            raise RuntimeError(f"Model config for {name} not found.")
        return _StandInCLIP(seed=len(str(pretrained))), None, _preprocess

    module.create_model_and_transforms = create_model_and_transforms
    module.get_tokenizer = lambda name: _tokenize
    monkeypatch.setitem(sys.modules, "open_clip", module)
    return calls


def test_open_clip_model_evaluates_retrieval(tmp_path, stand_in):
    task = _local_task(tmp_path, "wds_open_clip")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"pretend checkpoint")
    res = evaluate(model="StandIn-B", adapter="open-clip", tasks=[task], include=[str(tmp_path / f"{task}.yaml")],
                   model_args={"pretrained": str(weights)}, batch_size=4, output=str(tmp_path / "run"),
                   check_batch_invariance=True)
    assert stand_in == [("StandIn-B", str(weights), "cpu")]
    fp = res["model"]["fingerprint"]
    assert fp["adapter"] == "open-clip" and fp["open_clip_model"] == "StandIn-B" and fp["weights_sha256"]
    entry = res["tasks"][task]
    assert entry["n_failed"] == 0 and entry["batch_invariance"]["mismatches"] == 0
    # expected: embeddings straight from the stand-in model, ranked by brute force
    model = _StandInCLIP(seed=len(str(weights)))
    with torch.no_grad():
        img = model.encode_image(torch.stack([_preprocess(Image.open(io.BytesIO(_jpeg(i))))
                                              for i in range(len(CAPTION_COUNTS))])).numpy()
        texts = [c for i in range(len(CAPTION_COUNTS)) for c in _captions(i)]
        txt = model.encode_text(_tokenize(texts)).numpy()
    mapping = [i for i in range(len(CAPTION_COUNTS)) for _ in _captions(i)]
    for k in (1, 5):
        t2i, i2t = _brute_force_recall(img, txt, mapping, k)
        assert entry["metrics"][f"t2i_R@{k}"] == pytest.approx(t2i, abs=1e-12)
        assert entry["metrics"][f"i2t_R@{k}"] == pytest.approx(i2t, abs=1e-12)


def test_unknown_open_clip_model_is_a_load_error(stand_in):
    from mmbench.models.resolve import load_model

    with pytest.raises(ModelLoadError, match="open_clip cannot load 'NoSuchNet'"):
        load_model("NoSuchNet", adapter="open-clip")


def test_missing_open_clip_says_how_to_install(monkeypatch):
    from mmbench.models.resolve import load_model

    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip raises ImportError
    with pytest.raises(ModelLoadError, match="pip install open_clip_torch"):
        load_model("ViT-B-32", adapter="open-clip")
