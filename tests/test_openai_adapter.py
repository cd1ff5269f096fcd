"""The openai-chat adapter over real HTTP on 127.0.0.1, against a server running a real tiny LLaVA.

The server (tests/openai_server.py) is written on transformers directly, so the
first test checks the whole path: data-URL images, the OpenAI content parts,
the chat template, greedy decoding - the answers must equal what the hf-vlm
adapter gets from the same checkpoint.
"""

from __future__ import annotations

import io
import json
import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import numpy as np
import pytest
from PIL import Image

from mmbench.errors import ModelLoadError
from mmbench.models.openai_api import OpenAIChatModel, backoff_delay, parse_retry_after, public_url
from mmbench.types import GenerateRequest, GenerationSettings, ImageRef
from tests.fixtures.tiny_models import make_llava
from tests.openai_server import OpenAIServer

SECRET = "sk-test-DO-NOT-LEAK-7f3a9c51"
GEN = GenerationSettings(max_new_tokens=6)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.RandomState(seed).rand(32, 32, 3) * 255).astype("uint8")).save(buf, format="PNG")
    return buf.getvalue()


def _requests(n: int, *, tag: str = "") -> list[GenerateRequest]:
    return [GenerateRequest(id=f"{tag}{i}", images=(ImageRef(data=_png(i)),), prompt=f"{tag}Describe image {i}.",
                            generation=GEN) for i in range(n)]


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return make_llava(tmp_path_factory.mktemp("openai") / "llava")


@pytest.fixture(scope="module")
def direct(llava):
    """The same checkpoint through the local hf-vlm adapter."""
    from mmbench.models.resolve import load_model

    return load_model(llava, adapter="hf-vlm", device="cpu", dtype="float32")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MMBENCH_API_BASE", raising=False)


@pytest.fixture
def server(llava):
    with OpenAIServer(llava, served_model="tiny-llava") as srv:
        yield srv


def _adapter(server, **kw) -> OpenAIChatModel:
    options = {"base_url": server.url, "model": "tiny-llava", "backoff": 0.01, "max_retries": 3, "timeout": 10}
    return OpenAIChatModel(name="openai-chat", **{**options, **kw})


def test_answers_equal_the_direct_greedy_output(server, direct):
    two_images = GenerateRequest(id="pair", images=(ImageRef(data=_png(7)), ImageRef(data=_png(8))),
                                 prompt="Compare the two images.", generation=GEN)
    requests = [*_requests(4), two_images]
    outputs = _adapter(server).generate(requests)
    expected = [direct.generate([r])[0] for r in requests]  # one at a time: no padding effects
    assert [o.id for o in outputs] == [r.id for r in requests]
    assert all(o.ok for o in outputs), outputs
    assert [o.text for o in outputs] == [e.text for e in expected]
    assert len({o.text for o in outputs}) > 1  # the answers depend on the input
    # requests are sent concurrently: find the first sample's body by its text, not by arrival order
    body = next(b for b in server.stats.bodies if b["messages"][0]["content"][-1].get("text") == "Describe image 0.")
    assert body["model"] == "tiny-llava" and body["temperature"] == 0 and body["n"] == 1
    assert body["max_tokens"] == GEN.max_new_tokens and body["seed"] == 0
    parts = body["messages"][0]["content"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert [p["type"] for p in parts] == ["image_url", "text"]


def test_429_is_retried_after_the_servers_retry_after(server):
    model = _adapter(server, backoff=30.0)  # without Retry-After: 0 this test would sleep for a minute
    reference = model.generate(_requests(1))[0]
    server.reset()
    server.add_fault(429, times=2, retry_after="0")
    t0 = time.perf_counter()
    out = model.generate(_requests(1))[0]
    assert time.perf_counter() - t0 < 10
    assert out.ok and out.text == reference.text
    assert server.stats.completions == 3


def test_503_and_timeouts_are_retried(server):
    model = _adapter(server, timeout=1.5, max_retries=4)
    reference = model.generate(_requests(1))[0]
    server.reset()
    server.add_fault(503, times=2)
    server.add_fault("hang", times=1, seconds=10)
    out = model.generate(_requests(1))[0]
    assert out.ok, out.error
    assert out.text == reference.text
    assert server.stats.completions == 4


def test_a_request_failing_after_all_retries_is_an_error_and_the_others_succeed(server):
    model = _adapter(server, max_retries=2)
    requests = [*_requests(2), *_requests(1, tag="BROKEN ")]
    references = model.generate(requests[:2])
    server.reset()
    server.add_fault(503, match="BROKEN", times=None)
    outputs = model.generate(requests)
    assert [o.text for o in outputs[:2]] == [r.text for r in references]
    bad = outputs[2]
    assert bad.text is None
    assert bad.error.startswith("HTTP 503 after 2 retries: ") and "injected HTTP 503" in bad.error
    assert server.stats.attempts_by_text["BROKEN Describe image 0."] == 3


@pytest.mark.parametrize(("fault", "message"), [
    (400, "HTTP 400: "),
    ("malformed", "not JSON"),
    ("no_content", "no choices[0].message.content"),
])
def test_client_errors_and_bad_responses_are_not_retried(server, fault, message):
    server.add_fault(fault, match="BAD", times=None)
    outputs = _adapter(server).generate([*_requests(1), *_requests(1, tag="BAD ")])
    assert outputs[0].ok
    assert outputs[1].text is None and message in outputs[1].error
    assert server.stats.attempts_by_text["BAD Describe image 0."] == 1


def test_the_api_key_is_sent_but_never_recorded(llava, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with OpenAIServer(llava, served_model="tiny-llava", api_key=SECRET) as server:
        server.add_fault("echo_auth", match="ECHO", times=None)
        server.add_fault(503, match="DOWN", times=None)
        model = _adapter(server, max_retries=1)
        outputs = model.generate([*_requests(1), *_requests(1, tag="ECHO "), *_requests(1, tag="DOWN ")])
        assert outputs[0].ok  # the server demands the key, so it was sent
        assert "Authorization: Bearer ***" in outputs[1].error
        assert outputs[2].error.startswith("HTTP 503 after 1 retries")
        recorded = json.dumps([model.fingerprint(), model.info(), [o.__dict__ for o in outputs],
                               {k: repr(v) for k, v in vars(model).items()}])
        assert SECRET not in recorded
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
        with pytest.raises(ModelLoadError, match="refused the API key") as info:
            _adapter(server)
        assert SECRET not in str(info.value)
        monkeypatch.setenv("MY_KEY", SECRET)  # api_key_env names another variable
        assert _adapter(server, api_key_env="MY_KEY").generate(_requests(1))[0].ok


def test_concurrency_is_bounded_and_order_kept(server):
    server.reset(delay=0.2)
    requests = _requests(9)
    outputs = _adapter(server, concurrency=3).generate(requests)
    assert [o.id for o in outputs] == [r.id for r in requests]
    assert all(o.ok for o in outputs)
    assert 2 <= server.stats.max_in_flight <= 3


def test_fingerprint_names_the_endpoint_and_served_weights(server, monkeypatch):
    monkeypatch.setenv("MMBENCH_API_BASE", server.url + "?api-version=2024-01-01")
    model = OpenAIChatModel(name="openai-chat")  # the only served model is picked from GET /models
    fp = model.fingerprint()
    assert fp["base_url"] == server.url and fp["served_model"] == "tiny-llava"
    assert fp["server_model"] == {"id": "tiny-llava", "root": "llava", "revision": server.revision,
                                  "owned_by": "mmbench-tests"}
    assert model.generate(_requests(1))[0].ok  # the query string still goes to the server
    other = _adapter(server, model="other")  # not listed: a gateway alias, say; the server decides
    assert other.fingerprint()["server_model"] is None
    assert other.generate(_requests(1))[0].error.startswith("HTTP 404: ")
    with pytest.raises(ModelLoadError, match="unknown option"):
        _adapter(server, concurrancy=4)


def test_unreachable_endpoint_fails_at_load():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        with pytest.raises(ModelLoadError, match="cannot reach http://127.0.0.1"):
            OpenAIChatModel(name="openai-chat", base_url=f"http://127.0.0.1:{port}/v1", timeout=2)
    with pytest.raises(ModelLoadError, match="needs an endpoint"):
        OpenAIChatModel(name="openai-chat")
    with pytest.raises(ModelLoadError, match="must not carry credentials") as info:
        OpenAIChatModel(name="openai-chat", base_url=f"http://user:{SECRET}@127.0.0.1:{port}/v1")
    assert SECRET not in str(info.value)


def test_evaluate_end_to_end(server, tmp_path, monkeypatch):
    """Through the runner, with the adapter under its catalog name."""
    from mmbench.runner import evaluate
    from tests.helpers import make_caption_task

    tasks = make_caption_task(tmp_path, prompt="Describe the image.", n=4)
    res = evaluate(model="openai-chat", tasks=["tiny_caption"], include=[str(tasks)], output=str(tmp_path / "run"),
                   meteor=False, batch_size=4, model_args={"base_url": server.url, "model": "tiny-llava"})
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0, task["failures"]
    assert res["model"]["fingerprint"]["served_model"] == "tiny-llava"
    assert server.stats.completions == 4


def test_retry_after_and_backoff():
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(None) is None and parse_retry_after("later") is None
    assert backoff_delay(0, base=1.0, cap=60.0, retry_after=120.0) == 60.0  # Retry-After is capped
    delays = [backoff_delay(a, base=1.0, cap=10.0) for a in range(6)]
    assert 0.5 <= delays[0] <= 1.0 and 2.0 <= delays[2] <= 4.0 and 5.0 <= delays[5] <= 10.0
    assert public_url("https://u:p@api.example.com:8443/v1/?key=x#f") == "https://api.example.com:8443/v1"
