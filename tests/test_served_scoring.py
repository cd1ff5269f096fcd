"""Scoring through a served model (openai-chat, score_protocol=vllm-prompt-logprobs) over real HTTP.

The test server (tests/openai_server.py) answers vLLM's ``prompt_logprobs`` extra from the same
tiny LLaVA the hf-vlm adapter loads, so a served likelihood must equal the in-process one on the
same rendered text: the served conversation ends ``ASSISTANT: <continuation>`` (the template's
assistant turn), which is hf-vlm's context ``... ASSISTANT:`` plus ``" " + continuation``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mmbench.errors import MMBenchError
from mmbench.models.openai_api import OpenAIChatModel, continuation_logprob
from mmbench.types import ImageRef, ScoreRequest
from tests.fixtures.tiny_models import make_llava
from tests.openai_server import OpenAIServer


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.RandomState(seed).rand(32, 32, 3) * 255).astype("uint8")).save(buf, format="PNG")
    return buf.getvalue()


def _requests(tag: str = "") -> list[ScoreRequest]:
    return [ScoreRequest(id=f"{tag}0", images=(ImageRef(data=_png(0)),), prompt="Describe the image.",
                         continuations=("a red circle", "two blue squares on grass")),
            ScoreRequest(id=f"{tag}1", images=(ImageRef(data=_png(1)),), prompt=None, continuations=("a cat",)),
            ScoreRequest(id=f"{tag}2", images=(ImageRef(data=_png(2)), ImageRef(data=_png(3))),
                         prompt="Which is red?", continuations=("the first one", "red"))]


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return make_llava(tmp_path_factory.mktemp("served") / "llava")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _adapter(server, **kw) -> OpenAIChatModel:
    options = {"base_url": server.url, "model": "tiny-llava", "backoff": 0.01, "max_retries": 1, "timeout": 10,
               "score_protocol": "vllm-prompt-logprobs"}
    return OpenAIChatModel(name="openai-chat", **{**options, **kw})


def test_served_likelihood_equals_the_in_process_hf_vlm_likelihood(llava):
    from mmbench.models.resolve import load_model

    direct = load_model(llava, adapter="hf-vlm", device="cpu", dtype="float32")
    with OpenAIServer(llava, served_model="tiny-llava") as server:
        model = _adapter(server, concurrency=4)
        assert "score" in model.capabilities and model.fingerprint()["score_protocol"] == "vllm-prompt-logprobs"
        served = model.score(_requests())
        body = server.stats.bodies[0]
        n_sent = server.stats.completions
    assert body["prompt_logprobs"] == 0 and body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False and body["messages"][-1] == {"role": "assistant",
                                                                               "content": "a red circle"}
    assert n_sent == 5  # one completion per continuation
    spaced = [ScoreRequest(id=r.id, images=r.images, prompt=r.prompt, continuations=tuple(" " + c for c in r.continuations))
              for r in _requests()]
    local = direct.score(spaced)
    for s, d in zip(served, local):
        assert s.ok, s.error
        assert [n for _, n in s.scores] == [n for _, n in d.scores]
        np.testing.assert_allclose([t for t, _ in s.scores], [t for t, _ in d.scores], rtol=0, atol=1e-5)


def test_the_span_covers_the_continuation_only():
    entry = lambda tok, lp: {"1": {"logprob": lp, "rank": 1, "decoded_token": tok}}
    lp = [None, entry("ASSISTANT", -1.0), entry(":", -2.0), entry(" ", -4.0), entry("Y", -0.5), entry("es", -0.25)]
    assert continuation_logprob(lp, "Yes") == (-0.75, 2)  # the template's space is context
    assert continuation_logprob(lp, " Yes") == (-0.75, 2)  # continuations are matched stripped
    merged = [None, entry("ASSISTANT", -1.0), entry(":", -2.0), entry(" Y", -0.5), entry("es", -0.25)]
    assert continuation_logprob(merged, "Yes") == (-0.75, 2)  # a token across the boundary is the continuation's
    with pytest.raises(MMBenchError, match="does not end with the continuation"):
        continuation_logprob(lp + [entry("</s>", -0.1)], "Yes")  # the template closed the turn


def test_an_endpoint_without_prompt_logprobs_is_one_capability_error(llava):
    with OpenAIServer(llava, served_model="tiny-llava", prompt_logprobs=False) as server:
        model = _adapter(server, concurrency=4)
        with pytest.raises(MMBenchError, match="did not return prompt logprobs") as first:
            model.score(_requests())
        assert server.stats.completions == 1  # the first request only: no storm of failures
        with pytest.raises(MMBenchError, match="did not return prompt logprobs"):
            model.score(_requests("again-"))
        assert server.stats.completions == 1  # known now: nothing more is sent
        assert "vLLM" in str(first.value)


def test_an_endpoint_refusing_the_parameters_is_a_capability_error_and_later_failures_are_per_sample(llava):
    with OpenAIServer(llava, served_model="tiny-llava") as server:
        server.add_fault(400)  # the first request: "unknown parameter" from a strict server
        with pytest.raises(MMBenchError, match="cannot score candidate texts by likelihood.*HTTP 400"):
            _adapter(server).score(_requests())
        server.reset()
        model = _adapter(server)
        assert all(o.ok for o in model.score(_requests()[:1]))  # checked: the endpoint scores
        server.add_fault(400, match="Which is red")
        outputs = model.score(_requests("later-"))
        assert [o.ok for o in outputs] == [True, True, False]
        assert "HTTP 400" in outputs[2].error


def test_without_score_protocol_scoring_is_refused_before_any_request(llava):
    with OpenAIServer(llava, served_model="tiny-llava") as server:
        model = _adapter(server, score_protocol=None)
        with pytest.raises(MMBenchError, match="cannot score candidate texts by likelihood"):
            model.check_serves(_requests())
        assert "score_protocol" not in model.fingerprint()
        assert server.stats.completions == 0
