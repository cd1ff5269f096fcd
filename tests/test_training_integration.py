"""mmbench inside a training loop (#15 B.5): the Trainer callback on a tiny ViT+GPT-2 captioner
trained for a few steps, and the official metrics as offline ``evaluate`` modules."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from mmbench.integrations import evaluate_module_path
from mmbench.metrics.caption import score_captions
from mmbench.metrics.vqa import score_vqa
from tests.fixtures import tiny_models
from tests.helpers import make_caption_task, read_jsonl


@pytest.fixture(scope="module")
def modules_cache(tmp_path_factory):
    """evaluate copies a loaded script into its modules cache (a package it imports once per
    process, so one folder for the module): keep that in a tmp folder."""
    import evaluate.config

    root = tmp_path_factory.mktemp("evaluate")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate.config, "HF_MODULES_CACHE", root / "hf-modules")
        yield root / "evaluate-cache"


def test_vqa_accuracy_module_loads_offline_and_equals_score_vqa(modules_cache):
    import evaluate

    preds = ["yes", "2", "red", "Two"]
    refs = [["yes"] * 10, ["2", "two"] + ["3"] * 8, ["blue"] * 9 + ["red"], ["2"] * 5 + ["two"] * 5]
    module = evaluate.load(evaluate_module_path("vqa-accuracy"), cache_dir=str(modules_cache))
    assert module.compute(predictions=preds, references=refs) == dict(score_vqa(preds, refs).corpus)


def test_coco_caption_module_equals_score_captions(modules_cache):
    import evaluate

    preds = ["a red square", "a blue thing", "a green circle"]
    refs = [["a red square", "a red block"], ["a blue circle", "a round blue shape"], ["a green circle"]]
    module = evaluate.load(evaluate_module_path("coco-caption"), cache_dir=str(modules_cache))
    got = module.compute(predictions=preds, references=refs, meteor=False)
    assert got == dict(score_captions(preds, refs, meteor=False, spice=False).corpus)
    assert got["CIDEr-D"] > 0


def test_unknown_evaluate_module_names_the_known_ones():
    from mmbench.errors import MMBenchError

    with pytest.raises(MMBenchError, match="vqa-accuracy, coco-caption"):
        evaluate_module_path("bleurt")


class _Captions(torch.utils.data.Dataset):
    """The caption task's images and first captions as ViT+GPT-2 training examples."""

    def __init__(self, task_dir, image_processor, tokenizer):
        rows = read_jsonl(task_dir.parent / "data" / "test.jsonl")
        images = [Image.open(task_dir.parent / "data" / r["image"]).convert("RGB") for r in rows]
        self.pixels = image_processor(images=images, return_tensors="pt")["pixel_values"]
        ids = tokenizer([r["captions"][0] for r in rows], padding="max_length", max_length=8, truncation=True,
                        return_tensors="pt")
        self.labels = ids["input_ids"].masked_fill(ids["attention_mask"] == 0, -100)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"pixel_values": self.pixels[i], "labels": self.labels[i]}


def test_callback_logs_mmbench_metrics_and_keeps_a_run_folder_per_step(tmp_path):
    from transformers import (AutoImageProcessor, AutoTokenizer, Trainer, TrainingArguments,
                              VisionEncoderDecoderModel)

    from mmbench.integrations.trainer import MMBenchCallback
    from mmbench.results import RunResult

    ckpt = tiny_models.make_vit_gpt2_captioner(tmp_path / "ckpt")
    model = VisionEncoderDecoderModel.from_pretrained(ckpt, local_files_only=True)
    image_processor = AutoImageProcessor.from_pretrained(ckpt, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    task_dir = make_caption_task(tmp_path / "data", n=6)
    data = _Captions(task_dir, image_processor, tokenizer)
    args = TrainingArguments(output_dir=str(tmp_path / "train"), max_steps=4, eval_strategy="steps", eval_steps=2,
                             per_device_train_batch_size=3, per_device_eval_batch_size=6, learning_rate=5e-3,
                             logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                             dataloader_num_workers=0, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=data, eval_dataset=data)
    callback = MMBenchCallback(tasks=["tiny_caption"], limit=4, processor=(image_processor, tokenizer),
                               include=[str(task_dir)], meteor=False, batch_size=4).attach(trainer)
    trainer.train()

    logged = [e for e in trainer.state.log_history if "mmbench/tiny_caption/CIDEr-D" in e]
    assert [e["step"] for e in logged] == [2, 4]
    assert {"mmbench/tiny_caption/BLEU-4", "mmbench/tiny_caption/ROUGE-L"} <= set(logged[0])
    runs = {step: RunResult.load(tmp_path / "train" / "mmbench" / f"step-{step}") for step in (2, 4)}
    assert set(callback.runs) == {2, 4}
    for step, run in runs.items():
        task = run.tasks["tiny_caption"]
        assert task.n_samples == 4 and task.n_failed == 0
        assert logged[step // 2 - 1]["mmbench/tiny_caption/CIDEr-D"] == task.metrics["CIDEr-D"]
        assert (run.run_dir / task.predictions).is_file()
    # each step is its own model: its fingerprint is a hash of the weights it had then
    assert runs[2].model["fingerprint"]["hash"] != runs[4].model["fingerprint"]["hash"]
    assert runs[2].model["fingerprint"]["in_memory"] is True
    model.train()  # (the Trainer's own evaluation left it in eval mode)
    state = torch.random.get_rng_state()
    callback.evaluate(model, None, tmp_path / "again")
    assert model.training and torch.equal(torch.random.get_rng_state(), state)  # training left as it was


def test_in_memory_fingerprint_follows_the_weights(tmp_path):
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    from mmbench.models.hf_caption import HFCaptioner

    ckpt = tiny_models.make_vit_gpt2_captioner(tmp_path / "ckpt")
    model = VisionEncoderDecoderModel.from_pretrained(ckpt, local_files_only=True)
    pair = (AutoImageProcessor.from_pretrained(ckpt, local_files_only=True),
            AutoTokenizer.from_pretrained(ckpt, local_files_only=True))
    adapter = HFCaptioner.from_loaded(model, pair, name="run")
    before = adapter.fingerprint()["hash"]
    assert HFCaptioner.from_loaded(model, pair, name="other-name").fingerprint()["hash"] == before
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    adapter.refresh_fingerprint()
    assert adapter.fingerprint()["hash"] != before
    assert json.dumps(adapter.fingerprint())  # JSON-ready for results.json
