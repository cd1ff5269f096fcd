"""The in-place growing key/value cache (:mod:`mmbench.models.kv_cache`) gives what
transformers' own ``DynamicLayer`` (``torch.cat`` at every step) gives: the same tensors after
every update, and the same greedy generations on every tiny VLM family, shared prefix or not."""

from __future__ import annotations

import pytest
import torch
from transformers.cache_utils import (
    DynamicCache,
    DynamicLayer,
    DynamicSlidingWindowLayer,
)

from mmbench.models import hf_vlm, kv_cache
from tests.test_prefix_reuse import BUILDERS, _images, _questions, checkpoints  # noqa: F401 - fixture


def _kv(b: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, n, 4, generator=g), torch.randn(b, 2, n, 3, generator=g)


def test_room_layer_equals_dynamic_layer_step_by_step():
    ref, room = DynamicLayer(), kv_cache.room_layer_class()(room=3)
    steps = [5, 1, 1, 1, 1, 2, 1]  # 5 prompt positions, then past the room of 3: a new buffer
    for i, n in enumerate(steps):
        k, v = _kv(2, n, i)
        rk, rv = ref.update(k, v)
        ok, ov = room.update(k, v)
        assert torch.equal(rk, ok) and torch.equal(rv, ov) and room.get_seq_length() == ref.get_seq_length()
    assert room._kbuf.shape[-2] >= sum(steps)
    ref.batch_select_indices(torch.tensor([1, 1, 0]))  # a reorder replaces keys: the layer starts over from them
    room.batch_select_indices(torch.tensor([1, 1, 0]))
    k, v = _kv(3, 1, 99)
    rk, rv = ref.update(k, v)
    ok, ov = room.update(k, v)
    assert torch.equal(rk, ok) and torch.equal(rv, ov)


def test_make_room_keeps_contents_and_other_layer_kinds():
    cache = DynamicCache()
    cache.layers = [DynamicLayer(), DynamicSlidingWindowLayer(sliding_window=4), DynamicLayer()]
    for i, layer in enumerate(cache.layers[:2]):
        layer.update(*_kv(1, 3, i))
    before = cache.layers[0].keys.clone()
    kv_cache.make_room(cache, 5)
    room_cls = kv_cache.room_layer_class()
    assert type(cache.layers[0]) is room_cls and type(cache.layers[2]) is room_cls
    assert type(cache.layers[1]) is DynamicSlidingWindowLayer
    assert torch.equal(cache.layers[0].keys, before) and cache.layers[0]._kbuf.shape[-2] == 8
    assert not cache.layers[2].is_initialized  # an empty layer gets its buffer on its first update


@pytest.mark.parametrize("family", sorted(set(BUILDERS) & (hf_vlm.PREFIX_REUSE | set(hf_vlm.NO_PREFIX_REUSE))))
@pytest.mark.parametrize("reuse", [True, False])
def test_generations_equal_transformers_own_cache(checkpoints, family, reuse, monkeypatch):  # noqa: F811
    from mmbench.models.resolve import load_model

    model = load_model(checkpoints(family), device="cpu", dtype="float32", prefix_reuse=reuse)
    requests = _questions(_images(2))
    room_cls, calls = kv_cache.room_layer_class(), []
    real_update = room_cls.update
    monkeypatch.setattr(room_cls, "update", lambda self, *a, **k: calls.append(1) or real_update(self, *a, **k))
    grown = model.generate(requests)
    monkeypatch.setattr(room_cls, "update", real_update)
    uses_room = bool(calls)
    monkeypatch.setattr(kv_cache, "growing_cache", lambda model, room: None)
    monkeypatch.setattr(kv_cache, "make_room", lambda cache, room: cache)
    plain = model.generate(requests)
    assert all(o.ok for o in grown + plain), [o.error for o in grown + plain]
    assert [o.text for o in grown] == [o.text for o in plain]
    # the growing cache is used wherever the model's cache is a plain DynamicCache of its config
    assert uses_room or family in NO_ROOM, f"{family}: the growing cache was not used"


#: the tiny Gemma 3 has two layers, both sliding-window (Gemma 3 puts 5 sliding layers before each
#: full one), and sliding layers keep transformers' own cache
NO_ROOM = {"gemma3"}


def test_make_room_with_rows_equals_batch_select_then_room():
    """A shared prefix's cache is copied to each of its rows straight into the new buffers."""
    def filled() -> DynamicCache:
        cache = DynamicCache()
        cache.layers = [DynamicLayer(), DynamicSlidingWindowLayer(sliding_window=8)]
        for i, layer in enumerate(cache.layers):
            layer.update(*_kv(2, 3, i))
        return cache

    rows = [1, 0, 1, 1]
    expected = filled()
    expected.batch_select_indices(torch.tensor(rows))
    got = kv_cache.make_room(filled(), 4, rows=rows)
    assert type(got.layers[0]) is kv_cache.room_layer_class() and got.layers[0]._kbuf.shape[:1] == (4,)
    for a, b in zip(expected.layers, got.layers):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
    step = _kv(4, 1, 7)
    for a, b in zip(expected.layers, got.layers):
        ka, va = a.update(*step)
        kb, vb = b.update(*step)
        assert torch.equal(ka, kb) and torch.equal(va, vb)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_text_lm_generations_equal_transformers_own_cache(tmp_path, kind, monkeypatch):
    """The Socratic pipelines' language model (hf-lm) decodes with the growing cache too."""
    from mmbench.models.resolve import load_model
    from mmbench.types import GenerateRequest, GenerationSettings
    from tests.fixtures import tiny_lms

    path = {"gpt2": tiny_lms.make_gpt2_lm, "llama": tiny_lms.make_llama_lm}[kind](tmp_path / kind)
    model = load_model(path, device="cpu", dtype="float32")
    requests = [GenerateRequest(f"q{i}", (), prompt=p, generation=GenerationSettings(max_new_tokens=6))
                for i, p in enumerate(["a red square", "what colour is the circle in the picture?", "yes"])]
    room_cls, calls = kv_cache.room_layer_class(), []
    real_update = room_cls.update
    monkeypatch.setattr(room_cls, "update", lambda self, *a, **k: calls.append(1) or real_update(self, *a, **k))
    grown = model.generate(requests)
    monkeypatch.setattr(room_cls, "update", real_update)
    monkeypatch.setattr(kv_cache, "growing_cache", lambda model, room: None)
    plain = model.generate(requests)
    assert calls and all(o.ok for o in grown + plain)
    assert [o.text for o in grown] == [o.text for o in plain]


@pytest.mark.slow
def test_a_compiled_model_keeps_transformers_cache(checkpoints, monkeypatch):  # noqa: F811
    """``--compile``: inductor cannot trace views of the preallocated buffers, so a compiled model
    decodes with transformers' own cache (the shared-prefix batch and a batch of one both run)."""
    from mmbench.models.resolve import load_model

    model = load_model(checkpoints("llava"), device="cpu", dtype="float32", compile=True)
    room_cls, calls = kv_cache.room_layer_class(), []
    real_update = room_cls.update
    monkeypatch.setattr(room_cls, "update", lambda self, *a, **k: calls.append(1) or real_update(self, *a, **k))
    requests = _questions(_images(2))
    outputs = model.generate(requests) + model.generate(requests[:1])
    assert all(o.ok for o in outputs), [o.error for o in outputs if not o.ok][:1]
    assert not calls and model.compiled
