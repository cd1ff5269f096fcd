"""Text-only causal LMs (hf-lm) and Socratic pipelines (describer -> reasoner), on tiny local models."""

import pytest
from PIL import Image

from mmbench.errors import ModelLoadError
from mmbench.models.resolve import check_model_args, load_model, resolve_model
from mmbench.runner import evaluate
from mmbench.types import GenerateRequest, ImageRef
from tests.fixtures import tiny_lms, tiny_models
from tests.helpers import make_caption_task, read_jsonl


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("lms")
    return {"gpt2": tiny_lms.make_gpt2_lm(root / "gpt2"), "llama": tiny_lms.make_llama_lm(root / "llama")}


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    return tiny_models.make_vit_gpt2_captioner(tmp_path_factory.mktemp("vit_gpt2"))


@pytest.mark.parametrize("kind, templated", [("gpt2", False), ("llama", True)])
def test_causal_lm_is_chosen_from_config_and_batches_like_one_by_one(lms, kind, templated):
    assert resolve_model(lms[kind]).adapter == "hf-lm"
    model = load_model(lms[kind])
    rendered = model.render_prompt("what color is it?")
    assert ("<|im_start|>user\nwhat color is it?" in rendered) is templated
    assert (rendered == "what color is it?") is not templated
    fp = model.fingerprint()
    assert fp["adapter"] == "hf-lm" and (fp["chat_template_sha256"] is not None) is templated
    requests = [GenerateRequest(f"q{i}", (), prompt=p) for i, p in
                enumerate(["a red circle", "is there a blue square on the table?", "hi"])]
    batched = model.generate(requests)
    single = [model.generate([r])[0] for r in requests]
    assert all(o.ok and isinstance(o.text, str) for o in batched)
    assert [o.text for o in batched] == [o.text for o in single]


def test_causal_lm_runs_a_task_on_the_text_alone(tmp_path, lms):
    tasks = make_caption_task(tmp_path, prompt="Describe the image.")
    res = evaluate(model=lms["gpt2"], tasks=["tiny_caption"], include=[str(tasks)], output=str(tmp_path / "run"),
                   meteor=False, batch_size=4)
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0 and res["model"]["fingerprint"]["adapter"] == "hf-lm"
    assert all("intermediate" not in p.get("meta", {}) for p in read_jsonl(tmp_path / "run" / task["predictions"]))


def _socratic(tmp_path, captioner, reasoner, out="run", **kw):
    tasks = make_caption_task(tmp_path, prompt="Describe the image.")
    return evaluate(model="tiny-pipeline", adapter="socratic", tasks=["tiny_caption"], include=[str(tasks)],
                    output=str(tmp_path / out), meteor=False, batch_size=4,
                    model_args={"describer": captioner, "reasoner": reasoner, **kw})


def test_socratic_pipeline_records_descriptions_and_both_models(tmp_path, captioner, lms):
    res = _socratic(tmp_path, captioner, lms["llama"])
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0 and task["n_computed"] == 6
    fp = res["model"]["fingerprint"]
    describer, reasoner = load_model(captioner), load_model(lms["llama"])
    assert fp["adapter"] == "socratic"
    assert fp["describer_hash"] == describer.fingerprint()["hash"] == fp["describer"]["hash"]
    assert fp["reasoner_hash"] == reasoner.fingerprint()["hash"]
    assert "{description}" in fp["template"] and fp["describe_prompt"]
    assert res["model"]["n_parameters"] == describer.n_parameters + reasoner.n_parameters
    preds = read_jsonl(tmp_path / "run" / task["predictions"])
    captions = {o.id: o.text for o in describer.generate(
        [GenerateRequest(p["id"], (ImageRef(path=str(tmp_path / "data" / f"{p['id']}.png")),),
                         prompt="Describe the image.") for p in preds])}
    assert {p["id"]: p["meta"]["intermediate"] for p in preds} == captions  # stage 1's own words

    # served from the cache: same answers, the descriptions are still written (recomputed by the describer)
    again = _socratic(tmp_path, captioner, lms["llama"], out="run2")
    assert again["tasks"]["tiny_caption"]["n_cached"] == 6 and again["model"]["fingerprint"]["hash"] == fp["hash"]
    preds2 = read_jsonl(tmp_path / "run2" / task["predictions"])
    assert [(p["prediction"], p["meta"]["intermediate"]) for p in preds2] == \
        [(p["prediction"], p["meta"]["intermediate"]) for p in preds]


def test_socratic_fingerprint_covers_the_template_and_each_model(tmp_path, captioner, lms):
    base = load_model("p", adapter="socratic", describer=captioner, reasoner=lms["gpt2"]).fingerprint()["hash"]
    other_template = load_model("p", adapter="socratic", describer=captioner, reasoner=lms["gpt2"],
                                template="{description}. {question}").fingerprint()["hash"]
    other_reasoner = load_model("p", adapter="socratic", describer=captioner,
                                reasoner=lms["llama"]).fingerprint()["hash"]
    renamed = load_model("q", adapter="socratic", describer=captioner, reasoner=lms["gpt2"]).fingerprint()["hash"]
    assert len({base, other_template, other_reasoner}) == 3 and renamed == base


def test_socratic_arguments_are_checked(captioner, lms):
    resolved = resolve_model("p", adapter="socratic")
    check_model_args(resolved, {"describer": "x", "reasoner": "y", "template": "{description}"})
    with pytest.raises(ModelLoadError, match="unknown --model-arg temperature"):
        check_model_args(resolved, {"describer": "x", "temperature": "1"})
    with pytest.raises(ModelLoadError, match="needs two models"):
        load_model("p", adapter="socratic", describer=captioner)
    with pytest.raises(ModelLoadError, match="template"):
        load_model("p", adapter="socratic", describer=captioner, reasoner=lms["gpt2"], template="{answer}")
    with pytest.raises(ModelLoadError, match="cannot generate"):
        load_model("p", adapter="socratic", describer="easyvqa-clip", reasoner=lms["gpt2"])


def test_socratic_batches_describe_each_image_once(captioner, lms):
    pipe = load_model("p", adapter="socratic", describer=captioner, reasoner=lms["gpt2"])
    seen = []
    generate = pipe.describer.generate
    pipe.describer.generate = lambda reqs: seen.append(len(reqs)) or generate(reqs)
    a, b = Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")
    requests = [GenerateRequest(f"q{i}", (ImageRef(pil=im),), prompt=f"question {i}?")
                for i, im in enumerate([a, b, a, a, b])]
    outs = pipe.generate(requests)
    assert all(o.ok for o in outs) and seen == [2]
    assert pipe.intermediate(requests)["q0"] == pipe.intermediate(requests)["q2"]
    assert pipe.generate(requests[:2]) and seen == [2]  # described before: no describer call


@pytest.mark.slow
def test_easyvqa_socratic_end_to_end(tmp_path):
    """The registered reference pipeline on a few samples of each easy-VQA task it is published on:
    every answer is the shipped reasoner's own answer to the prompt built from the captioner's
    description, and that description is the captioner's caption of the image."""
    from mmbench.catalog import build_task
    from mmbench.models.socratic import SocraticPipeline

    tasks = ["easyvqa_vqa", "easyvqa_mc", "easyvqa_pope"]
    res = evaluate(model="easyvqa-socratic", tasks=tasks, limit=12, batch_size=8, output=str(tmp_path / "run"),
                   cache=False)
    fp = res["model"]["fingerprint"]
    assert fp["adapter"] == "socratic" and fp["describer"]["name"] == "easyvqa-captioner"
    captioner, reasoner = load_model("easyvqa-captioner"), load_model(fp["reasoner"]["path"])
    assert reasoner.fingerprint()["hash"] == fp["reasoner_hash"]
    pipeline = SocraticPipeline.__new__(SocraticPipeline)
    pipeline.template = fp["template"]
    for name in tasks:
        entry = res["tasks"][name]
        assert entry["n_failed"] == 0, name
        task = build_task(name)
        samples = {s.id: s for s in task.load_samples(limit=12)}
        preds = list(read_jsonl(tmp_path / "run" / entry["predictions"]))
        requests = [task.build_request(samples[p["id"]], "easyvqa-socratic") for p in preds]
        captions = captioner.generate([GenerateRequest(r.id, r.images, prompt="Describe the image in a few words.")
                                       for r in requests])
        assert [p["meta"]["intermediate"] for p in preds] == [c.text for c in captions]
        answers = reasoner.generate([GenerateRequest(r.id, (), prompt=pipeline.reasoner_prompt(r, c.text),
                                                     generation=r.generation) for r, c in zip(requests, captions)])
        assert [p["raw_output"] for p in preds] == [a.text for a in answers], name
