"""The tiny checkpoints in `tests.fixtures.tiny_models` build fast, stay small and load offline.

Each checkpoint is reloaded the way an mmbench adapter loads a real one
(`AutoProcessor` + an `AutoModel...` class, `local_files_only=True`) and run on a
batch of two different 64x64 RGB images. (conftest.py sets HF_HUB_OFFLINE=1.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from transformers import (
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForVisualQuestionAnswering,
    AutoProcessor,
    AutoTokenizer,
)

if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip("the tiny fixtures use the transformers 5 tokenizer API", allow_module_level=True)

from tests.fixtures import tiny_models  # noqa: E402
from tests.fixtures.tiny_models import LOADERS  # noqa: E402  (builder name -> transformers model class)

VQA_ANSWERS = ["yes", "no", "red", "blue", "two"]

BUILDERS = {
    "vit_gpt2": tiny_models.make_vit_gpt2_captioner,
    "blip": tiny_models.make_blip_captioner,
    "git": tiny_models.make_git_captioner,
    "blip_vqa": tiny_models.make_blip_vqa,
    "vilt_vqa": lambda path: tiny_models.make_vilt_vqa(path, VQA_ANSWERS),
    "llava": tiny_models.make_llava,
    "idefics3": tiny_models.make_idefics3,
    "clip": tiny_models.make_clip,
    "siglip": tiny_models.make_siglip,
}

AUTO_MODEL = {
    "vit_gpt2": AutoModelForImageTextToText,
    "blip": AutoModelForImageTextToText,
    "git": AutoModelForImageTextToText,
    "blip_vqa": AutoModelForVisualQuestionAnswering,
    "vilt_vqa": AutoModelForVisualQuestionAnswering,
    "llava": AutoModelForImageTextToText,
    "idefics3": AutoModelForImageTextToText,
    "clip": AutoModel,
    "siglip": AutoModel,
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny")
    return {name: build(root / name) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
        for seed in (0, 1)
    ]


def load(checkpoints, name):
    path = checkpoints[name]
    model = AUTO_MODEL[name].from_pretrained(path, local_files_only=True).eval()
    assert type(model).__name__ == LOADERS[name]
    assert type(model) is getattr(transformers, LOADERS[name])
    return model, AutoProcessor.from_pretrained(path, local_files_only=True)


def test_loaders_cover_every_builder():
    assert set(LOADERS) == set(BUILDERS) == set(AUTO_MODEL)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_build_is_fast_small_and_deterministic(tmp_path, name):
    start = time.perf_counter()
    first = BUILDERS[name](tmp_path / "a")
    elapsed = time.perf_counter() - start
    second = BUILDERS[name](tmp_path / "b")
    assert first == str(tmp_path / "a")
    files = sorted(p.name for p in Path(first).iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(files)
    size = sum(p.stat().st_size for p in Path(first).iterdir())
    assert size < 5_000_000
    assert elapsed < 5  # typically 0.02-0.1 s; generous for loaded CI machines
    for file in files:
        assert (Path(first) / file).read_bytes() == (Path(second) / file).read_bytes(), file


def test_build_leaves_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_models.make_clip(tmp_path / "clip")
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- captioners


def _generate(model, inputs):
    with torch.no_grad():
        return model.generate(**inputs, max_new_tokens=5, do_sample=False)


def test_vit_gpt2_captions_a_batch(checkpoints, images):
    model, processor = load(checkpoints, "vit_gpt2")
    # Like nlpconnect/vit-gpt2-image-captioning there is no processor class:
    # AutoProcessor falls back to the tokenizer; the image processor loads on its own.
    assert isinstance(processor, transformers.GPT2Tokenizer)
    image_processor = AutoImageProcessor.from_pretrained(checkpoints["vit_gpt2"], local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["vit_gpt2"], local_files_only=True)
    pixel_values = image_processor(images, return_tensors="pt").pixel_values
    assert pixel_values.shape == (2, 3, tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE)
    out = _generate(model, {"pixel_values": pixel_values})
    assert out.shape[0] == 2 and 2 <= out.shape[1] <= 6  # decoder start token + up to 5 new tokens
    assert (out[:, 0] == model.config.decoder_start_token_id).all()
    assert len(tokenizer.batch_decode(out, skip_special_tokens=True)) == 2
    assert not torch.equal(out[0], out[1])  # random weights, but the caption depends on the image
    for i in range(2):
        single = _generate(model, {"pixel_values": pixel_values[i : i + 1]})
        assert torch.equal(single[0], out[i][: single.shape[1]])


@pytest.mark.parametrize("name", ["blip", "git"])
def test_captioner_generates_for_a_batch(checkpoints, images, name):
    model, processor = load(checkpoints, name)
    inputs = processor(images=images, return_tensors="pt")
    assert inputs["pixel_values"].shape == (2, 3, tiny_models.IMAGE_SIZE, tiny_models.IMAGE_SIZE)
    out = _generate(model, {"pixel_values": inputs["pixel_values"]})
    assert out.shape[0] == 2 and 2 <= out.shape[1] <= 6  # BOS + up to 5 new tokens
    bos = model.config.text_config.bos_token_id if name == "blip" else model.config.bos_token_id
    assert (out[:, 0] == bos).all()
    assert len(processor.batch_decode(out, skip_special_tokens=True)) == 2
    for i in range(2):
        single = _generate(model, {"pixel_values": inputs["pixel_values"][i : i + 1]})
        assert torch.equal(single[0], out[i][: single.shape[1]])


def test_blip_captioner_continues_a_text_prompt(checkpoints, images):
    model, processor = load(checkpoints, "blip")
    inputs = processor(images=images, text=["a photo of", "a photo of"], return_tensors="pt")
    assert "token_type_ids" not in inputs
    out = _generate(model, inputs)
    # [DEC] a photo of + up to 5 new tokens (BLIP drops the trailing [SEP] of the prompt)
    prompt_len = inputs["input_ids"].shape[1] - 1
    assert out.shape[0] == 2 and prompt_len < out.shape[1] <= prompt_len + 5
    assert torch.equal(out[:, 1:prompt_len], inputs["input_ids"][:, 1:prompt_len])


@pytest.mark.xfail(
    reason="BlipForConditionalGeneration.generate overwrites column 0 with [DEC] and drops the last column: "
    "with right padding the shorter prompt keeps [SEP]/[PAD] before the new tokens, with left padding it "
    "becomes [DEC] [PAD]... [CLS] prompt. Batch BLIP prompts only when they tokenize to the same length.",
    strict=False,
)
def test_blip_captioner_padded_prompts_match_single(checkpoints, images):
    model, processor = load(checkpoints, "blip")
    processor.tokenizer.padding_side = "left"
    prompts = ["a photo of", "a picture of a red cat on the table"]
    out = _generate(model, processor(images=images, text=prompts, padding=True, return_tensors="pt"))
    for i in range(2):
        one = _generate(model, processor(images=[images[i]], text=[prompts[i]], return_tensors="pt"))
        new = one[0, one.shape[1] - 5 :]
        assert torch.equal(new, out[i, out.shape[1] - len(new) :])


# --------------------------------------------------------------------------- VQA


def test_blip_vqa_generates_answers(checkpoints, images):
    model, processor = load(checkpoints, "blip_vqa")
    questions = ["what color is the cat?", "is there a dog in the image?"]
    inputs = processor(images=images, text=questions, padding=True, return_tensors="pt")
    out = _generate(model, inputs)
    assert out.shape[0] == 2 and 2 <= out.shape[1] <= 6
    assert len(processor.batch_decode(out, skip_special_tokens=True)) == 2


def test_blip_vqa_batch_matches_single_for_equal_length_questions(checkpoints, images):
    model, processor = load(checkpoints, "blip_vqa")
    questions = ["what color is the cat?", "what color is the dog?"]  # same length: no padding
    batch = processor(images=images, text=questions, padding=True, return_tensors="pt")
    assert batch["attention_mask"].all()
    out = _generate(model, batch)
    for i in range(2):
        one = _generate(model, processor(images=[images[i]], text=[questions[i]], return_tensors="pt"))
        assert torch.equal(one[0], out[i][: one.shape[1]])


@pytest.mark.xfail(
    reason="BlipForQuestionAnswering.generate builds the decoder's cross-attention mask as all ones "
    "(question_attention_mask = torch.ones(...)), so padded question tokens change the answer of the "
    "shorter question in a batch, whichever the padding side. Batch BLIP VQA by question length.",
    strict=False,
)
def test_blip_vqa_padded_batch_matches_single(checkpoints, images):
    model, processor = load(checkpoints, "blip_vqa")
    questions = ["what color is the cat?", "is there a dog in the image on the table near the road?"]
    out = _generate(model, processor(images=images, text=questions, padding=True, return_tensors="pt"))
    for i in range(2):
        one = _generate(model, processor(images=[images[i]], text=[questions[i]], return_tensors="pt"))
        assert torch.equal(one[0], out[i][: one.shape[1]])


def test_vilt_vqa_scores_the_given_answers(checkpoints, images):
    model, processor = load(checkpoints, "vilt_vqa")
    assert [model.config.id2label[i] for i in range(len(VQA_ANSWERS))] == VQA_ANSWERS
    questions = ["what color is the cat?", "how many dogs are there?"]
    inputs = processor(images=images, text=questions, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (2, len(VQA_ANSWERS))
    assert all(model.config.id2label[i] in VQA_ANSWERS for i in logits.argmax(-1).tolist())


def test_vilt_rejects_duplicate_answers(tmp_path):
    with pytest.raises(ValueError, match="distinct"):
        tiny_models.make_vilt_vqa(tmp_path, ["yes", "yes"])


# --------------------------------------------------------------------------- chat VLMs

CHATS = [
    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the image?"}]}],
    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe it in one short sentence."}]}],
]


@pytest.mark.parametrize("name", ["llava", "idefics3"])
def test_chat_vlm_batched_left_padded_generation_matches_single(checkpoints, images, name):
    model, processor = load(checkpoints, name)
    processor.tokenizer.padding_side = "left"
    prompts = [processor.apply_chat_template(chat, add_generation_prompt=True) for chat in CHATS]
    assert all(p.count("<image>") == 1 for p in prompts)
    batch = processor(images=[[image] for image in images], text=prompts, padding=True, return_tensors="pt")
    assert batch["attention_mask"][0, 0] == 0 or batch["attention_mask"][1, 0] == 0  # left padding happened
    out = _generate(model, batch)
    prompt_len = batch["input_ids"].shape[1]
    assert out.shape[0] == 2 and prompt_len < out.shape[1] <= prompt_len + 5
    for i in range(2):
        single = processor(images=[[images[i]]], text=[prompts[i]], return_tensors="pt")
        one = _generate(model, single)
        new_single = one[0, single["input_ids"].shape[1] :]
        new_batched = out[i, prompt_len : prompt_len + len(new_single)]
        assert torch.equal(new_single, new_batched), f"{name}: sample {i} differs when batched"


@pytest.mark.parametrize("name", ["llava", "idefics3"])
def test_chat_template_renders_image_and_text_parts(checkpoints, name):
    processor = AutoProcessor.from_pretrained(checkpoints[name], local_files_only=True)
    prompt = processor.apply_chat_template(CHATS[0], add_generation_prompt=True)
    expected = {
        "llava": "<s>USER: <image>\nWhat is in the image? ASSISTANT:",
        "idefics3": "<|im_start|>User:<image>What is in the image?<end_of_utterance>\nAssistant:",
    }
    assert prompt == expected[name]


# --------------------------------------------------------------------------- dual encoders


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_dual_encoder_scores_images_against_texts(checkpoints, images, name):
    model, processor = load(checkpoints, name)
    texts = ["a photo of a red circle", "a blue square", "a dog"]
    inputs = processor(text=texts, images=images, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
        image_embeds = model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output
        text_embeds = model.get_text_features(input_ids=inputs["input_ids"]).pooler_output
    assert out.logits_per_image.shape == (2, 3)
    assert out.logits_per_text.shape == (3, 2)
    assert image_embeds.shape[0] == 2 and text_embeds.shape[0] == 3
    assert image_embeds.shape[1] == text_embeds.shape[1]
    assert not torch.allclose(out.logits_per_image[0], out.logits_per_image[1])


def test_clip_tokenizer_wraps_text_in_bos_and_eos(checkpoints):
    tokenizer = AutoProcessor.from_pretrained(checkpoints["clip"], local_files_only=True).tokenizer
    ids = tokenizer("a red circle").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids[1:-1]


# --------------------------------------------------------------------------- LoRA


def _lora_inputs(name, model, processor, images, path):
    if name == "vit_gpt2":
        image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        return {
            "pixel_values": image_processor(images, return_tensors="pt").pixel_values,
            "decoder_input_ids": torch.full((2, 1), model.config.decoder_start_token_id),
        }
    if name == "git":
        inputs = processor(images=images, text=["a photo of", "a photo of"], return_tensors="pt")
        return {"pixel_values": inputs["pixel_values"], "input_ids": inputs["input_ids"]}
    if name == "blip":
        return dict(processor(images=images, text=["a photo of"] * 2, return_tensors="pt"))
    processor.tokenizer.padding_side = "left"
    prompts = [processor.apply_chat_template(chat, add_generation_prompt=True) for chat in CHATS]
    return dict(processor(images=[[i] for i in images], text=prompts, padding=True, return_tensors="pt"))


@pytest.mark.parametrize("name", ["vit_gpt2", "blip", "git", "llava", "idefics3"])
def test_lora_adapter_changes_outputs_and_reloads(checkpoints, images, tmp_path, name):
    peft = pytest.importorskip("peft")
    from safetensors.torch import load_file

    base_path = checkpoints[name]
    adapter_dir = tiny_models.make_lora_adapter(base_path, tmp_path / "adapter")
    assert adapter_dir == str(tmp_path / "adapter")
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == base_path
    saved = load_file(Path(adapter_dir) / "adapter_model.safetensors")
    lora_b = [t for k, t in saved.items() if "lora_B" in k]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)  # not the usual zero init

    model, processor = load(checkpoints, name)
    inputs = _lora_inputs(name, model, processor, images, base_path)
    with torch.no_grad():
        base_logits = model(**inputs).logits
    adapted = peft.PeftModel.from_pretrained(model, adapter_dir, local_files_only=True).eval()
    reloaded = peft.get_peft_model_state_dict(adapted)
    assert reloaded.keys() == saved.keys()
    assert all(torch.equal(reloaded[k], saved[k]) for k in saved)
    with torch.no_grad():
        adapted_logits = adapted(**inputs).logits
    assert adapted_logits.shape == base_logits.shape
    assert not torch.allclose(adapted_logits, base_logits, atol=1e-3)
    gen_inputs = {k: v for k, v in inputs.items() if k != "decoder_input_ids"}
    with torch.no_grad():
        out = adapted.generate(**gen_inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[0] == 2


def test_lora_adapter_honours_target_modules(checkpoints, tmp_path):
    pytest.importorskip("peft")
    from safetensors.torch import load_file

    adapter_dir = tiny_models.make_lora_adapter(checkpoints["blip"], tmp_path / "qv", target_modules=["query", "value"])
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["query", "value"]
    keys = load_file(Path(adapter_dir) / "adapter_model.safetensors").keys()
    assert keys and all(".query." in k or ".value." in k for k in keys)
