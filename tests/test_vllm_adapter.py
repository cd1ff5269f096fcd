"""The vllm adapter without vLLM: prompts equal hf-vlm's, the runner hands it whole shards, the
fingerprint, cache and resume, score requests and the missing-extra error, all with a fake engine
standing in for ``vllm.LLM``.  The same adapter against a real vLLM: tests/test_vllm_real.py."""

import shutil
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mmbench.errors import ModelLoadError
from mmbench.models.resolve import load_model
from mmbench.models.vllm_adapter import VLLMVisionLanguageModel
from mmbench.runner import evaluate
from mmbench.types import GenerateRequest, GenerationSettings, ImageRef, ScoreRequest
from tests.fixtures import tiny_models, tiny_vlms
from tests.helpers import make_caption_task, read_jsonl


class FakeEngine:
    """``vllm.LLM.generate``'s contract: one output per prompt, in order.  The answer names the
    prompt's length and image count, so a wrong prompt or a lost image shows in the predictions."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[list[dict]] = []
        self.params: list[list[dict]] = []
        self.stop_after = stop_after
        self.tokenizer = None  # the checkpoint's, set by fake_adapter

    def generate(self, prompts, params, use_tqdm=True):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt  # the process is killed mid-run
        self.calls.append(list(prompts))
        self.params.append(list(params))
        outs = []
        for prompt, p in zip(prompts, params):
            n_img = len(prompt.get("multi_modal_data", {}).get("image", []))
            text = f" len{len(prompt['prompt'])} img{n_img} "
            logprobs = None
            if p.get("prompt_logprobs") == 0:  # each character of the prompt one "token" of log-prob -0.5
                logprobs = [None] + [{"7": SimpleNamespace(logprob=-0.5, decoded_token=ch)}
                                     for ch in prompt["prompt"][1:]]
            ids = self.tokenizer.encode(text, add_special_tokens=False)  # the adapter decodes token ids itself
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(text=text, token_ids=ids)], prompt_logprobs=logprobs))
        return outs


def fake_adapter(path, engine=None, **kwargs) -> VLLMVisionLanguageModel:
    kwargs.setdefault("vllm_version", "0.0-fake")
    model = VLLMVisionLanguageModel.from_engine(engine or FakeEngine(), path=str(path), **kwargs)
    model.sampling_params = lambda **kw: kw  # no vLLM here: the settings themselves reach the fake engine
    model.engine.tokenizer = model.tokenizer
    return model


def _img(value: int) -> ImageRef:
    return ImageRef(pil=Image.fromarray(np.full((32, 32, 3), value, dtype="uint8")))


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return tiny_models.make_llava(tmp_path_factory.mktemp("vllm") / "llava")


class _Recorder:
    """Stands in for an HF processor: records the texts it is called with, delegates everything."""

    def __init__(self, processor):
        self.__dict__["inner"], self.__dict__["texts"] = processor, []

    def __call__(self, *args, text=None, **kwargs):
        self.texts.extend(text)
        return self.inner(*args, text=text, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("builder", [tiny_models.make_llava, tiny_models.make_idefics3, tiny_vlms.make_llava_next,
                                     tiny_vlms.make_paligemma], ids=lambda b: b.__name__)
def test_prompts_equal_what_hf_vlm_sends_its_processor(tmp_path, builder):
    ckpt = builder(tmp_path / "ckpt")
    requests = [GenerateRequest("one", (_img(10),), prompt="What colour is the shape?",
                                generation=GenerationSettings(max_new_tokens=3)),
                GenerateRequest("two", (_img(10), _img(200)), prompt="Which is darker?",
                                generation=GenerationSettings(max_new_tokens=3)),
                GenerateRequest("none", (_img(50),), prompt=None, generation=GenerationSettings(max_new_tokens=3))]
    if builder is tiny_vlms.make_paligemma:
        requests = requests[:1] + requests[2:]  # one image per prompt (its processor's rule)
    hf = load_model(ckpt, device="cpu")
    hf.processor = _Recorder(hf.processor)
    for req in requests:  # one at a time: the texts the processor got, in request order
        assert hf.generate([req])[0].ok
    engine = FakeEngine()
    outs = fake_adapter(ckpt, engine).generate(requests)
    assert all(o.ok for o in outs), [o.error for o in outs]
    sent = [p["prompt"] for p in engine.calls[0]]
    assert sent == [hf.render_prompt(r.prompt, len(r.images)) for r in requests]
    assert set(sent) <= set(hf.processor.texts)  # what hf-vlm's generation gave its processor
    assert [len(p["multi_modal_data"]["image"]) for p in engine.calls[0]] == [len(r.images) for r in requests]


def test_missing_vllm_is_one_line_naming_the_extra(monkeypatch, llava):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(ModelLoadError) as err:
        load_model(llava, adapter="vllm")
    assert "pip install 'mmbench[vllm]'" in str(err.value) and "\n" not in str(err.value)


def fake_vllm_module(monkeypatch, device_type: str = "cpu") -> list[dict]:
    """A stand-in ``vllm`` package (``LLM``, ``SamplingParams``, ``platforms``); returns the
    keyword arguments each ``LLM`` was built with."""
    built: list[dict] = []

    class LLM(FakeEngine):
        def __init__(self, **kwargs):
            super().__init__()
            built.append(kwargs)

    module = types.ModuleType("vllm")
    module.__version__, module.LLM, module.SamplingParams = "9.9-fake", LLM, lambda **kw: kw
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = SimpleNamespace(device_type=device_type)
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    return built


def test_load_model_builds_the_engine_with_mmbench_settings(monkeypatch, llava):
    built = fake_vllm_module(monkeypatch)
    model = load_model(llava, adapter="vllm", engine_args={"max_model_len": 128})
    assert built == [{"model": llava, "tokenizer": llava, "dtype": "float32", "seed": 0, "trust_remote_code": False,
                      "max_model_len": 128}]
    fp = model.fingerprint()
    assert fp["vllm_version"] == "9.9-fake" and model.device == "cpu" and fp["engine_args"] == {"max_model_len": 128}
    model.engine.tokenizer = model.tokenizer
    out = model.generate([GenerateRequest("a", (_img(5),), prompt="Hi?", generation=GenerationSettings(4))])[0]
    assert out.ok and out.text.startswith("len") and model.engine.params[0][0]["max_tokens"] == 4
    with pytest.raises(ModelLoadError, match="this vLLM build runs on cpu"):
        load_model(llava, adapter="vllm", device="cuda")


def test_torchrun_is_refused_before_vllm_loads(monkeypatch, llava):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ModelLoadError, match="not under torchrun"):
        load_model(llava, adapter="vllm")


def test_the_runner_hands_it_whole_shards_and_caches_and_resumes(tmp_path, llava):
    tasks = make_caption_task(tmp_path, prompt="Describe the image.", n=6)
    run = dict(tasks=["tiny_caption"], include=[str(tasks)], meteor=False, batch_size=2)
    engine = FakeEngine()
    res = evaluate(loaded_model=fake_adapter(llava, engine), output=str(tmp_path / "a"), **run)
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0 and task["n_computed"] == 6
    assert [len(c) for c in engine.calls] == [6]  # one engine call for the shard; --batch-size 2 not used
    assert all(p == {"max_tokens": 6, "n": 1, "detokenize": False, "temperature": 0.0}
               for p in engine.params[0])
    preds = read_jsonl(tmp_path / "a" / task["predictions"])
    assert {p["prediction"] for p in preds} == {engine_text.strip() for engine_text in
                                                [f" len{len(engine.calls[0][0]['prompt'])} img1 "]}
    # a second run is served from the cache: the engine is not called
    again = FakeEngine()
    res2 = evaluate(loaded_model=fake_adapter(llava, again), output=str(tmp_path / "b"), **run)
    assert again.calls == [] and res2["tasks"]["tiny_caption"]["n_cached"] == 6

    # max_batch=N: N at a time, each cached when done; a run killed after the first keeps it
    killed = FakeEngine(stop_after=1)
    run_new = dict(run, cache_dir=str(tmp_path / "cache2"))
    with pytest.raises(KeyboardInterrupt):
        evaluate(loaded_model=fake_adapter(llava, killed, max_batch=4), output=str(tmp_path / "c"), **run_new)
    assert [len(c) for c in killed.calls] == [4]
    resumed = FakeEngine()
    res3 = evaluate(loaded_model=fake_adapter(llava, resumed, max_batch=4), output=str(tmp_path / "d"), **run_new)
    assert [len(c) for c in resumed.calls] == [2] and res3["tasks"]["tiny_caption"]["n_cached"] == 4


def test_fingerprint_covers_weights_engine_version_dtype_and_decoding(tmp_path, llava):
    fp = fake_adapter(llava).fingerprint()
    assert fp["adapter"] == "vllm" and fp["model_type"] == "llava" and fp["dtype"] == "float32"
    assert fp["vllm_version"] == "0.0-fake" and fp["decoding"] and fp["chat_template_sha256"]
    assert len(fp["weights_sha256"]) == 16 and fp["engine_args"] == {}
    moved = shutil.copytree(llava, tmp_path / "elsewhere")
    assert fake_adapter(moved).fingerprint()["hash"] == fp["hash"]  # where the folder is does not count
    different = {
        "version": fake_adapter(llava, vllm_version="0.0-other"),
        "dtype": fake_adapter(llava, dtype="bfloat16"),
        "engine_args": fake_adapter(llava, engine_args={"max_model_len": 512}),
        "seed": fake_adapter(llava, seed=1),
    }
    for what, model in different.items():
        assert model.fingerprint()["hash"] != fp["hash"], what
    memory_only = fake_adapter(llava, engine_args={"gpu_memory_utilization": 0.5})
    assert memory_only.fingerprint()["hash"] == fp["hash"]
    (moved / "model.safetensors").write_bytes((moved / "model.safetensors").read_bytes()[:-1] + b"\0")
    assert fake_adapter(moved).fingerprint()["hash"] != fp["hash"]  # the weights' content counts


def test_beam_search_fails_its_own_request_only(llava):
    engine = FakeEngine()
    reqs = [GenerateRequest("beam", (_img(1),), prompt="x", generation=GenerationSettings(num_beams=3)),
            GenerateRequest("greedy", (_img(1),), prompt="x")]
    beam, greedy = fake_adapter(llava, engine).generate(reqs)
    assert not beam.ok and "beam search" in beam.error and greedy.ok
    assert len(engine.calls) == 1 and len(engine.calls[0]) == 1


def test_a_prompt_the_engine_refuses_fails_alone(llava):
    """vLLM raises for a whole generate() call when one prompt is bad (longer than max_model_len): the
    batch is retried one request at a time and only that request fails."""
    class Picky(FakeEngine):
        def generate(self, prompts, params, use_tqdm=True):
            if any("TOO LONG" in p["prompt"] for p in prompts):
                self.calls.append(list(prompts))
                raise ValueError("The decoder prompt (length 9999) is longer than the maximum model length")
            return super().generate(prompts, params, use_tqdm)

    engine = Picky()
    reqs = [GenerateRequest(i, (_img(1),), prompt=p) for i, p in (("ok1", "x"), ("bad", "TOO LONG"), ("ok2", "y"))]
    ok1, bad, ok2 = fake_adapter(llava, engine).generate(reqs)
    assert ok1.ok and ok2.ok and not bad.ok and "maximum model length" in bad.error
    assert [len(c) for c in engine.calls] == [3, 1, 1, 1]  # the batch, then one by one


def test_sampled_requests_get_a_seed_from_their_id(llava):
    model = fake_adapter(llava)
    sample = GenerationSettings(do_sample=True, temperature=0.7)
    a, b = (model.sampling_settings(GenerateRequest(i, (), prompt="x", generation=sample)) for i in ("a", "b"))
    assert a["temperature"] == 0.7 and a["seed"] != b["seed"]
    assert a == model.sampling_settings(GenerateRequest("a", (), prompt="y", generation=sample))


def test_score_requests_sum_the_continuations_prompt_logprobs(llava):
    engine = FakeEngine()
    model = fake_adapter(llava, engine)
    req = ScoreRequest("s", (_img(3),), continuations=(" red", " blue circle"), prompt="Colour?")
    out = model.score([req])[0]
    assert out.ok, out.error
    # the fake's tokens are characters at -0.5 each: the continuation's stripped text, character by character
    assert out.scores == ((-1.5, 3), (-5.5, 11))
    context = model.render_prompt("Colour?", 1)
    assert [p["prompt"] for p in engine.calls[0]] == [context + " red", context + " blue circle"]
    assert all(p["prompt_logprobs"] == 0 and p["max_tokens"] == 1 for p in engine.params[0])


def test_validate_renders_the_vllm_prompt_without_vllm(monkeypatch, llava):
    from mmbench.models.resolve import prompt_renderer, resolve_model

    monkeypatch.setitem(sys.modules, "vllm", None)
    render = prompt_renderer(resolve_model(llava, adapter="vllm"))
    assert render("Hi?", 1) == load_model(llava, device="cpu").render_prompt("Hi?", 1)
