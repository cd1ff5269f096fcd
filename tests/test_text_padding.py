"""Dual encoders pad texts to the longest in the batch, not to the full context (77 tokens
for CLIP), and this leaves every text embedding equal to the full-context one within
float32 rounding: CLIP's causal text tower reads the end-of-text position, which never
attends to the padding after it.

The hf-embed tests run anywhere; the open-clip ones where open_clip is installed
(docs/retrieval.md), imported as the adapter imports it (over
:mod:`mmbench.models.torchvision_shim` where torchvision does not import), and are skipped
elsewhere.  They also pass with real torchvision, in the peer venv of
``benchmarks/install_peers.sh``::

    /work/venvs/clip-benchmark/bin/python -m pytest -q tests/test_text_padding.py
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.fixtures.tiny_models import make_clip

CAPTIONS = ["a dog", "two men riding horses along a sandy beach at sunset while a crowd watches",
            "A red triangle.", "", "a " * 90,  # empty, and longer than the context (truncated to 77)
            "the small bird on the left branch of the old tree", "x"]

#: a small open_clip CLIP (ViT-B-32's text tower shape, fewer layers and width) with random weights
TINY = {"embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 3}}


def test_hf_clip_pads_to_the_longest_text_and_keeps_embeddings(tmp_path):
    from mmbench.models.resolve import load_model

    adapter = load_model(make_clip(tmp_path / "clip"))
    assert adapter.fingerprint_info["text_padding"] == "longest"
    texts = ["a dog", "two men riding horses along a sandy beach", "x", "the small bird on the branch"]
    full = adapter.tokenizer(texts, padding="max_length", truncation=True, max_length=adapter.max_text_tokens,
                             return_tensors="pt")
    with torch.inference_mode():
        want = adapter._encode_texts({"input_ids": full["input_ids"], "attention_mask": full["attention_mask"]})
        for batch in (texts, texts[:2], [texts[2]]):
            inputs = adapter._text_inputs(batch)
            assert inputs["input_ids"].shape[1] < adapter.max_text_tokens  # padded to the batch's longest only
            got = adapter._encode_texts(inputs)
            assert torch.allclose(got, want[[texts.index(t) for t in batch]], atol=1e-5, rtol=1e-5)


@pytest.fixture
def open_clip():
    from mmbench.models.torchvision_shim import import_open_clip

    try:
        return import_open_clip()[0]  # over the PIL-only torchvision stand-in where torchvision does not import
    except ImportError as exc:
        pytest.skip(f"open_clip is not installed: {exc}")


@pytest.fixture
def tiny(tmp_path, open_clip):
    (tmp_path / "TinyPadTest.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(tmp_path / "TinyPadTest.json")
    torch.manual_seed(0)
    model = open_clip.create_model("TinyPadTest")
    weights = tmp_path / "tiny.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return str(weights)


def _full_context(open_clip, model, texts):
    """open_clip's own path: the tokenizer's 77 tokens, ``encode_text`` as shipped."""
    with torch.inference_mode():
        return model.encode_text(open_clip.get_tokenizer("TinyPadTest")(texts)).float()


@pytest.mark.parametrize("pool", ["argmax", "eos"])
def test_open_clip_pads_to_the_longest_text_and_keeps_embeddings(open_clip, tiny, pool):
    from mmbench.models.open_clip_adapter import OpenCLIPModel

    adapter = OpenCLIPModel("TinyPadTest", pretrained=tiny, device="cpu", dtype="float32")
    if pool == "eos":  # the other end-of-text pooling open_clip has (SigLIP-style towers set it)
        adapter.model.text_pool_type, adapter.model.text_eos_id = "eos", 49407
    assert adapter.trims_text and adapter.info()["text_padding"] == "longest"
    expected = _full_context(open_clip, adapter.model, CAPTIONS)
    for batch in (CAPTIONS, CAPTIONS[:4], [CAPTIONS[0]], [CAPTIONS[-1], CAPTIONS[2]]):
        tokens = adapter._text_inputs(batch)
        longest = max(min(len(open_clip.get_tokenizer("TinyPadTest").encode(t)) + 2, 77) for t in batch)
        assert tokens.shape[1] == longest  # cut to the longest text (start + words + end token)
        with torch.inference_mode():
            got = adapter._encode_texts(tokens).float()
        want = expected[[CAPTIONS.index(t) for t in batch]]
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()


def test_other_open_clip_text_towers_keep_the_full_context(open_clip, tiny):
    from mmbench.models.open_clip_adapter import OpenCLIPModel

    adapter = OpenCLIPModel("TinyPadTest", pretrained=tiny, device="cpu", dtype="float32")
    adapter.model.text_pool_type = "last"  # reads the last position: padding reaches it
    from mmbench.models.open_clip_adapter import _trims_text

    assert not _trims_text(open_clip, adapter.model)


def test_open_clip_skips_random_init_and_loads_every_weight(open_clip, tiny, tmp_path):
    """Building the model before its checkpoint loads skips torch.nn.init (it is overwritten
    anyway); every weight is the checkpoint's, the init functions are restored after, and a
    checkpoint that lacks a weight is refused (open_clip loads strictly), so no uninitialised
    value can survive."""
    from safetensors.torch import load_file, save_file

    from mmbench.errors import ModelLoadError
    from mmbench.models.open_clip_adapter import OpenCLIPModel

    normal = torch.nn.init.normal_
    adapter = OpenCLIPModel("TinyPadTest", pretrained=tiny, device="cpu", dtype="float32")
    assert torch.nn.init.normal_ is normal
    saved = load_file(tiny)
    got = adapter.model.state_dict()
    assert set(saved) <= set(got) and all(torch.equal(got[k], saved[k]) for k in saved)
    missing = dict(saved)
    missing.pop("text_projection")
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(ModelLoadError, match="text_projection"):
        OpenCLIPModel("TinyPadTest", pretrained=str(tmp_path / "missing.safetensors"), device="cpu")
    assert torch.nn.init.normal_ is normal
