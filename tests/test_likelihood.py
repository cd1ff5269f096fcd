"""ScoreRequest (the "score" capability): batch invariance per adapter family, equality with a
direct transformers computation, the cache form, and capability errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from mmbench.cache import decode_output, encode_output, request_hash
from mmbench.errors import MMBenchError
from mmbench.models.resolve import load_model
from mmbench.runner.batching import batching_key
from mmbench.runner.inference import SCORE_TOLERANCE, check_batch_invariance
from mmbench.types import GenerateRequest, ImageRef, ModelOutput, ScoreRequest
from tests.fixtures import tiny_models

#: the tolerance this file holds every family to (docs/likelihood.md)
BATCH_TOL = 1e-5
DIRECT_TOL = 1e-5

CONTINUATIONS = ("a red circle", "blue", "the quick brown fox jumps", "x")


def _images(n: int = 4) -> list[ImageRef]:
    return [ImageRef(pil=Image.fromarray((np.random.RandomState(i).rand(32, 32, 3) * 255).astype("uint8")))
            for i in range(n)]


def _requests(prompt: str | None = "what is it?") -> list[ScoreRequest]:
    images = _images()
    # rows of very different lengths in one batch: padding must not move any score
    return [ScoreRequest(f"r{i}", (images[i],), continuations=CONTINUATIONS[i:] + CONTINUATIONS[:i],
                         prompt=prompt if i % 2 else None) for i in range(4)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("likelihood")
    return {name: getattr(tiny_models, f"make_{name}")(root / name)
            for name in ("vit_gpt2_captioner", "blip_captioner", "git_captioner", "llava", "idefics3")}


@pytest.mark.parametrize("family", ["vit_gpt2_captioner", "blip_captioner", "git_captioner", "llava", "idefics3"])
def test_batch_of_4_equals_batch_of_1(checkpoints, family):
    model = load_model(checkpoints[family], device="cpu", dtype="float32")
    assert "score" in model.capabilities
    requests = _requests()
    batched = model.score(requests)
    single = [model.score([r])[0] for r in requests]
    for a, b, req in zip(batched, single, requests):
        assert a.ok and b.ok, (a.error, b.error)
        assert len(a.scores) == len(req.continuations)
        assert [n for _, n in a.scores] == [n for _, n in b.scores]
        for (x, n), (y, _) in zip(a.scores, b.scores):
            assert abs(x - y) <= BATCH_TOL, (family, x, y)
            assert x < 0 and n >= 1
    report = check_batch_invariance(model, requests, 4)
    assert report["mismatches"] == 0 and report["max_abs_score_diff"] <= BATCH_TOL
    assert report["score_tolerance"] == SCORE_TOLERANCE


def _direct(family: str, path: str, image: Image.Image, prompt: str | None, continuation: str) -> tuple[float, int]:
    """log p(continuation | image, prompt) computed with transformers alone: through the model's
    own loss where it has a plain one (ViT+GPT-2, GIT, LLaVA), else from its logits (BLIP's loss
    is label-smoothed)."""
    import transformers

    cls = getattr(transformers, tiny_models.LOADERS[family.replace("_captioner", "")])
    model = cls.from_pretrained(path, local_files_only=True).eval()
    with torch.no_grad():
        if family == "vit_gpt2_captioner":
            tok = transformers.AutoTokenizer.from_pretrained(path)
            pixels = transformers.AutoImageProcessor.from_pretrained(path)(images=[image], return_tensors="pt")
            labels = torch.tensor([tok(continuation, add_special_tokens=False)["input_ids"]])
            loss = model(pixel_values=pixels["pixel_values"], labels=labels).loss
            return -float(loss) * labels.shape[1], labels.shape[1]
        processor = transformers.AutoProcessor.from_pretrained(path)
        if family == "git_captioner":
            ids = [processor.tokenizer.cls_token_id] + processor.tokenizer(continuation, add_special_tokens=False)["input_ids"]
            pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
            ids_t = torch.tensor([ids])
            loss = model(input_ids=ids_t, pixel_values=pixels, labels=ids_t).loss
            return -float(loss) * (len(ids) - 1), len(ids) - 1
        if family == "blip_captioner":
            tok = processor.tokenizer
            ids = [model.config.text_config.bos_token_id] + tok(continuation, add_special_tokens=False)["input_ids"]
            pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
            logits = model(pixel_values=pixels, input_ids=torch.tensor([ids])).logits[0]
            logp = torch.log_softmax(logits.float(), -1)
            return float(sum(logp[t - 1, ids[t]] for t in range(1, len(ids)))), len(ids) - 1
        # a chat VLM: the user turn with the image, the continuation as the answer
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt or ""}]}]
        context = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        n_ctx = processor(text=[context], images=[image], return_tensors="pt")["input_ids"].shape[1]
        inputs = processor(text=[context + continuation], images=[image], return_tensors="pt")
        labels = inputs["input_ids"].clone()
        labels[:, :n_ctx] = -100
        n = int((labels != -100).sum())
        loss = model(**inputs, labels=labels).loss
        return -float(loss) * n, n


@pytest.mark.parametrize("family", ["vit_gpt2_captioner", "blip_captioner", "git_captioner", "llava"])
def test_equals_direct_transformers_computation(checkpoints, family):
    model = load_model(checkpoints[family], device="cpu", dtype="float32")
    image = _images(1)[0]
    prompt = "what is it?" if family == "llava" else None
    out = model.score([ScoreRequest("q", (image,), continuations=("a red circle", "blue"), prompt=prompt)])[0]
    for (total, n), cont in zip(out.scores, ("a red circle", "blue")):
        ref_total, ref_n = _direct(family, checkpoints[family], image.pil, prompt, cont)
        assert n == ref_n
        assert math.isclose(total, ref_total, abs_tol=DIRECT_TOL, rel_tol=1e-6), (family, total, ref_total)


def test_mixed_batch_generates_and_scores(checkpoints):
    model = load_model(checkpoints["vit_gpt2_captioner"], device="cpu", dtype="float32")
    image = _images(1)[0]
    gen, score = model.run(model.prepare([GenerateRequest("g", (image,)),
                                          ScoreRequest("s", (image,), continuations=("a", "b c"))]))
    assert gen.ok and isinstance(gen.text, str)
    assert score.ok and [n for _, n in score.scores] == [1, 2]
    alone = model.score([ScoreRequest("s", (image,), continuations=("a", "b c"))])[0]
    assert alone.scores == score.scores


def test_a_request_without_continuations_fails_alone(checkpoints):
    model = load_model(checkpoints["git_captioner"], device="cpu", dtype="float32")
    image = _images(1)[0]
    bad, good = model.score([ScoreRequest("bad", (image,), continuations=()),
                             ScoreRequest("good", (image,), continuations=("a",))])
    assert not bad.ok and "no continuation" in bad.error
    assert good.ok


def test_cache_form_round_trips_and_keys_on_continuations():
    req = ScoreRequest("q", (ImageRef(data=b"png"),), continuations=("a", "b"), prompt="p")
    out = ModelOutput("q", scores=((-1.2345678901234567, 3), (-0.1, 1)))
    assert decode_output(req, encode_output(out)) == out.scores
    other = ScoreRequest("q", (ImageRef(data=b"png"),), continuations=("a", "c"), prompt="p")
    assert request_hash(req) != request_hash(other)
    assert request_hash(req) != request_hash(GenerateRequest("q", (ImageRef(data=b"png"),), prompt="p"))
    assert batching_key(req)[0] == 2 > batching_key(GenerateRequest("g", ()))[0]


def test_models_without_the_capability_say_so(tmp_path):
    clip = load_model(tiny_models.make_clip(tmp_path / "clip"), device="cpu")
    with pytest.raises(MMBenchError, match="cannot score candidate texts by likelihood"):
        clip.check_serves([ScoreRequest("q", (), continuations=("a",))])
