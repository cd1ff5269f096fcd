"""hf-vqa serves the score capability for classifier heads (ViLT): log softmax of the answer's logit."""

from __future__ import annotations

import math

import pytest

from mmbench.models.hf_vqa import normalise_answer
from mmbench.types import GenerateRequest, GenerationSettings, ImageRef, ScoreRequest


@pytest.fixture(scope="module")
def vilt():
    from mmbench.models.resolve import load_model

    return load_model("easyvqa-vilt", device="cpu")


@pytest.fixture(scope="module")
def rows():
    from mmbench.tasks.datasets.easyvqa import caption_rows

    return caption_rows("test")[:6]


def test_scores_are_the_classifier_softmax_and_agree_with_its_answer(vilt, rows):
    import torch
    from PIL import Image

    labels = [vilt.model.config.id2label[i] for i in range(len(vilt.model.config.id2label))]
    question = "what color is the shape?"
    requests = [ScoreRequest(id=r["image_id"], images=(ImageRef(path=r["image"]),), prompt=question,
                             continuations=tuple(labels)) for r in rows]
    scores = vilt.score(requests)
    answers = vilt.generate([GenerateRequest(id=r["image_id"], images=(ImageRef(path=r["image"]),),
                                             question=question, generation=GenerationSettings())
                             for r in rows])
    for r, s, a in zip(rows, scores, answers):
        assert s.ok, s.error
        assert all(n == 1 for _, n in s.scores)
        assert sum(math.exp(t) for t, _ in s.scores) == pytest.approx(1.0, abs=1e-6)  # a distribution
        best = max(range(len(labels)), key=lambda i: s.scores[i][0])
        assert labels[best] == a.text == r["color"]  # the most probable candidate is the answer given
        image = Image.open(r["image"]).convert("RGB")
        with torch.inference_mode():
            logits = vilt.model(**vilt.processor(images=[image], text=[question], return_tensors="pt")).logits
        direct = torch.log_softmax(logits.float(), -1)[0]
        assert [t for t, _ in s.scores] == pytest.approx(direct.tolist(), abs=1e-5)


def test_candidates_are_normalised_and_unknown_ones_fail_alone(vilt, rows):
    image = (ImageRef(path=rows[0]["image"]),)
    q = "is there a triangle in the image?"
    out = vilt.score([ScoreRequest(id="a", images=image, prompt=q, continuations=("Yes", " yes.", "no")),
                      ScoreRequest(id="b", images=image, prompt=q, continuations=("yes", "maybe")),
                      ScoreRequest(id="c", images=image, prompt=None, continuations=("yes",))])
    assert out[0].ok and out[0].scores[0] == out[0].scores[1]
    assert out[0].scores[0][0] > out[0].scores[2][0]  # rows[0] is a red triangle
    assert not out[1].ok and "maybe" in out[1].error and "in its vocabulary" in out[1].error
    assert not out[2].ok and "needs a question" in out[2].error
    assert normalise_answer(" Yes. ") == "yes"
    assert "score" in vilt.capabilities


def test_vqascore_with_vilt_tells_the_right_caption_from_a_wrong_one(vilt, rows):
    from mmbench.metrics.vqascore import vqascore_metric

    images = [ImageRef(path=r["image"]) for r in rows]
    right = [r["references"][0] for r in rows]
    wrong = [f"a {'blue' if r['color'] != 'blue' else 'red'} {r['shape']}" for r in rows]
    kw = {"images": images, "load_scorer": lambda spec, device: vilt, "scorer": "easyvqa-vilt",
          "question": "does the image contain {}?"}
    good, bad = vqascore_metric(right, **kw), vqascore_metric(wrong, **kw)
    assert good.corpus["VQAScore"] > 0.9 and bad.corpus["VQAScore"] < 0.3
    assert good.backend["VQAScore"]["question_template"] == "does the image contain {}?"
