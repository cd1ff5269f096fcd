"""Tiny checkpoints built from configs, evaluated through `--model <dir>` (and a LoRA adapter on top)."""

import json

import pytest

from mmbench.models.resolve import load_model
from mmbench.runner import evaluate
from tests.fixtures import tiny_models
from tests.helpers import make_caption_task, read_jsonl


@pytest.fixture(scope="module")
def vit_gpt2(tmp_path_factory):
    return tiny_models.make_vit_gpt2_captioner(tmp_path_factory.mktemp("vit_gpt2"))


def _run(tmp_path, model, **kw):
    tasks = make_caption_task(tmp_path, metric="coco-caption")
    return evaluate(model=model, tasks=["tiny_caption"], include=[str(tasks)], output=str(tmp_path / "run"),
                    meteor=False, **kw)


def test_local_checkpoint_dir_evaluates(tmp_path, vit_gpt2):
    res = _run(tmp_path, vit_gpt2, batch_size=4)
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0 and task["n_samples"] == 6
    assert set(task["metrics"]) >= {"BLEU-4", "ROUGE-L", "CIDEr-D"}
    assert "METEOR" in task["metrics_unavailable"]
    fp = res["model"]["fingerprint"]
    assert fp["adapter"] == "hf-captioner" and fp["class"] == "VisionEncoderDecoderModel"
    assert len(fp["weights_sha256"]) == 16 and fp["n_parameters"] > 0
    preds = read_jsonl(tmp_path / "run" / task["predictions"])
    assert all(isinstance(p["prediction"], str) for p in preds)


def test_lora_adapter_dir_evaluates_on_top_of_its_base(tmp_path, vit_gpt2):
    adapter = tiny_models.make_lora_adapter(vit_gpt2, tmp_path / "lora")
    assert json.loads((tmp_path / "lora" / "adapter_config.json").read_text())["base_model_name_or_path"] == vit_gpt2
    base = load_model(vit_gpt2)
    tuned = load_model(adapter)
    assert tuned.fingerprint_info["peft_adapter"]["weights_sha256"]
    assert tuned.fingerprint()["hash"] != base.fingerprint()["hash"]
    res = _run(tmp_path, adapter, batch_size=3)
    assert res["tasks"]["tiny_caption"]["n_failed"] == 0
    assert res["model"]["fingerprint"]["peft_adapter_path"] == adapter


def test_batch_size_does_not_change_captions(tmp_path, vit_gpt2):
    one = _run(tmp_path / "a", vit_gpt2, batch_size=1, cache=False)
    four = _run(tmp_path / "b", vit_gpt2, batch_size=4, cache=False)
    assert four["tasks"]["tiny_caption"]["n_computed"] == 6
    p1 = read_jsonl(tmp_path / "a" / "run" / "predictions" / "tiny_caption.jsonl")
    p4 = read_jsonl(tmp_path / "b" / "run" / "predictions" / "tiny_caption.jsonl")
    assert [p["prediction"] for p in p1] == [p["prediction"] for p in p4]
    assert one["tasks"]["tiny_caption"]["metrics"] == four["tasks"]["tiny_caption"]["metrics"]
    assert one["tasks"]["tiny_caption"]["fingerprint"]["hash"] == four["tasks"]["tiny_caption"]["fingerprint"]["hash"]


@pytest.mark.parametrize("builder", ["make_blip_captioner", "make_git_captioner"])
def test_other_captioner_families(tmp_path, builder):
    ckpt = getattr(tiny_models, builder)(tmp_path / "ckpt")
    res = _run(tmp_path, ckpt, batch_size=3, check_batch_invariance=True, cache=False)
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0, task["failures"]
    assert res["model"]["fingerprint"]["adapter"] == "hf-captioner"
    assert task["batch_invariance"]["mismatches"] == 0  # batch 1 vs batch 3 give the same captions


@pytest.mark.parametrize("builder", ["make_llava", "make_idefics3"])
def test_generative_vlms_caption_with_a_prompt(tmp_path, builder):
    ckpt = getattr(tiny_models, builder)(tmp_path / "ckpt")
    tasks = make_caption_task(tmp_path, metric="coco-caption", prompt="Describe the image.")
    res = evaluate(model=ckpt, tasks=["tiny_caption"], include=[str(tasks)], output=str(tmp_path / "run"),
                   meteor=False, batch_size=3)
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0, task["failures"]
    assert res["model"]["fingerprint"]["adapter"] == "hf-vlm"
    assert res["model"]["fingerprint"]["chat_template_sha256"]
    assert task["fingerprint"]["rendered_prompt_hash"]


def test_hub_id_loads_from_the_local_cache_offline(tmp_path, monkeypatch, vit_gpt2):
    """A hub id resolves through the HF cache layout (models--org--name/snapshots/<sha>) with HF_HUB_OFFLINE=1."""
    import shutil

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--tiny-org--tiny-captioner"
    shutil.copytree(vit_gpt2, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    model = load_model("tiny-org/tiny-captioner")
    fp = model.fingerprint()
    assert fp["hub_id"] == "tiny-org/tiny-captioner" and fp["revision"] == sha
