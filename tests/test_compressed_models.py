"""Compressed models and fine-tunes as inputs (#15 B): --quantize, pre-quantized checkpoints,
sparsity and parameter counts of pruned checkpoints, a LoRA run naming its base."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import ModelLoadError
from mmbench.models import quantize as q
from mmbench.models.resolve import load_model
from mmbench.runner import EvalConfig, evaluate
from tests.fixtures import tiny_models
from tests.helpers import make_caption_task, read_jsonl
from tests.test_vlm_families import _retrieval_task

pytestmark = pytest.mark.skipif(q.library_version("torchao") is None, reason="needs torchao")


@pytest.fixture(scope="module")
def vit_gpt2(tmp_path_factory):
    return tiny_models.make_vit_gpt2_captioner(tmp_path_factory.mktemp("vit_gpt2"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return tiny_models.make_clip(tmp_path_factory.mktemp("clip"))


def _caption(tmp_path, model, **kw):
    tasks = make_caption_task(tmp_path, metric="coco-caption")
    return evaluate(model=model, tasks=["tiny_caption"], include=[str(tasks)], output=str(tmp_path / "run"),
                    meteor=False, batch_size=3, **kw)


# ------------------------------------------------------------------ 1. --quantize

def test_int8_changes_the_fingerprint_and_runs_a_captioner_end_to_end(tmp_path, vit_gpt2):
    full = _caption(tmp_path / "fp32", vit_gpt2)
    int8 = _caption(tmp_path / "int8", vit_gpt2, quantize="int8")
    fp = int8["model"]["fingerprint"]
    assert fp["quantization"]["method"] == "torchao" and fp["quantization"]["bits"] == 8
    assert fp["quantization"]["torchao_version"] == q.library_version("torchao")
    assert fp["weights_sha256"] == full["model"]["fingerprint"]["weights_sha256"]  # same checkpoint...
    assert fp["hash"] != full["model"]["fingerprint"]["hash"]  # ...another model
    assert int8["config"]["quantize"] == "int8"
    task = int8["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0 and task["n_computed"] == 6  # nothing served from the fp32 run's cache
    preds = read_jsonl(tmp_path / "int8" / "run" / task["predictions"])
    assert len(preds) == 6 and all(isinstance(p["prediction"], str) for p in preds)


@pytest.mark.parametrize("method", ["int8", "int4"])
def test_torchao_quantizes_a_clip_for_retrieval(tmp_path, clip, method):
    name, include = _retrieval_task(tmp_path)
    res = evaluate(model=clip, tasks=[name], include=[include], output=str(tmp_path / "run"), batch_size=4,
                   quantize=method)
    task = res["tasks"][name]
    assert task["n_failed"] == 0 and set(task["metrics"]) >= {"t2i_R@1", "i2t_R@1"}
    assert res["model"]["fingerprint"]["quantization"]["name"] == method
    assert (tmp_path / "run" / "predictions" / f"{name}.image_embeddings.npy").is_file()


def test_quantized_linear_layers_hold_quantized_weights_and_the_head_stays(vit_gpt2):
    model = load_model(vit_gpt2, device="cpu", quantize="int8").model
    linear = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    assert type(linear.weight.data).__name__ == "Int8Tensor"
    assert type(model.decoder.lm_head.weight.data) is torch.Tensor  # the output head: full precision


def test_unknown_method_is_one_line_listing_the_methods(tmp_path, vit_gpt2):
    result = CliRunner().invoke(app, ["eval", "--model", vit_gpt2, "--tasks", "x", "--quantize", "fp3"])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "unknown --quantize 'fp3'" in line
    assert all(m in line for m in q.METHODS)


@pytest.mark.parametrize("method", ["bnb-int8", "bnb-nf4"])
def test_bitsandbytes_on_a_cpu_fails_in_one_line_before_weights_load(tmp_path, vit_gpt2, monkeypatch, method):
    from mmbench.models.hf import HFAdapter

    monkeypatch.setattr(HFAdapter, "_load", lambda *a, **k: pytest.fail("weights were loaded"))
    tasks = make_caption_task(tmp_path)
    result = CliRunner().invoke(app, ["eval", "--model", vit_gpt2, "--tasks", "tiny_caption", "--include", str(tasks),
                                      "--device", "cpu", "--quantize", method, "--output", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "needs a CUDA GPU" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "results.json").exists()


def test_quantize_is_refused_for_adapters_that_are_not_hf():
    with pytest.raises(ModelLoadError, match="--quantize is for the Hugging Face adapters"):
        load_model("easyvqa-majority", quantize="int8")


def test_config_refuses_an_unknown_method_before_anything_loads():
    with pytest.raises(ModelLoadError, match="choose one of: int8"):
        EvalConfig(quantize="int3").validated()


# ------------------------------------------------------------------ 2. pre-quantized checkpoints

def test_a_torchao_checkpoint_loads_as_it_is_and_records_its_method(tmp_path, vit_gpt2):
    from torchao.quantization import Int8WeightOnlyConfig
    from transformers import TorchAoConfig, VisionEncoderDecoderModel

    quantized = VisionEncoderDecoderModel.from_pretrained(
        vit_gpt2, quantization_config=TorchAoConfig(Int8WeightOnlyConfig()), local_files_only=True)
    out = tmp_path / "vg-int8"
    quantized.save_pretrained(out)
    for f in ("preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{vit_gpt2}/{f}", out / f)
    assert json.loads((out / "config.json").read_text())["quantization_config"]["quant_method"] == "torchao"

    res = _caption(tmp_path, str(out))
    quant = res["model"]["fingerprint"]["quantization"]
    assert quant["method"] == "torchao" and quant["source"] == "checkpoint" and quant["bits"] == 8
    assert quant["scheme"] == "Int8WeightOnlyConfig" and quant["torchao_version"]
    assert res["tasks"]["tiny_caption"]["n_failed"] == 0
    with pytest.raises(ModelLoadError, match="already quantized"):
        load_model(str(out), quantize="int8")


def _with_quantization_config(src, dst, qc):
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**config, "quantization_config": qc}))
    return str(dst)


@pytest.mark.parametrize("qc, message", [
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "needs a CUDA GPU"),
    ({"quant_method": "awq", "bits": 4, "group_size": 128}, "needs a CUDA GPU"),
])
def test_a_checkpoint_quantized_for_cuda_is_refused_on_a_cpu_before_weights_load(tmp_path, vit_gpt2, monkeypatch,
                                                                                  qc, message):
    from mmbench.models.hf import HFAdapter

    path = _with_quantization_config(vit_gpt2, tmp_path / "ckpt", qc)
    monkeypatch.setattr(HFAdapter, "_load", lambda *a, **k: pytest.fail("weights were loaded"))
    tasks = make_caption_task(tmp_path)
    result = CliRunner().invoke(app, ["eval", "--model", path, "--tasks", "tiny_caption", "--include", str(tasks),
                                      "--device", "cpu"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert qc["quant_method"] in result.output


def test_checkpoint_quantization_reads_method_and_bits():
    gptq = q.checkpoint_quantization({"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}})
    assert gptq == {"method": "gptq", "source": "checkpoint", "bits": 4, "group_size": 128}
    ct = q.checkpoint_quantization({"quantization_config": {
        "quant_method": "compressed-tensors", "format": "pack-quantized",
        "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}, "targets": ["Linear"]}}}})
    assert ct["bits"] == 4 and ct["format"] == "pack-quantized"
    assert q.checkpoint_quantization({"quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True}}
                                     )["bits"] == 8
    assert q.checkpoint_quantization({}) is None


# ------------------------------------------------------------------ 3. pruned checkpoints

def test_sparsity_and_parameter_count_of_a_pruned_checkpoint(tmp_path, vit_gpt2):
    from transformers import VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(vit_gpt2, local_files_only=True)
    weights = [p for p in model.parameters() if p.dim() >= 2]
    total = sum(p.numel() for p in weights)
    with torch.no_grad():
        for p in weights[::2]:  # magnitude pruning's result: half of every other weight tensor exactly zero
            flat = p.view(-1)
            flat[: flat.numel() // 2] = 0
    zeros = sum(int((p == 0).sum()) for p in weights)
    pruned = tmp_path / "pruned"
    shutil.copytree(vit_gpt2, pruned)
    model.save_pretrained(pruned)

    res = _caption(tmp_path, str(pruned))
    assert res["model"]["sparsity"] == pytest.approx(zeros / total, abs=1e-6) and res["model"]["sparsity"] > 0.2
    assert res["model"]["n_parameters"] == sum(p.numel() for p in model.parameters())
    from mmbench.results import RunResult

    run = RunResult.load(tmp_path / "run")
    assert run.sparsity == res["model"]["sparsity"] and run.n_parameters == res["model"]["n_parameters"]
    assert load_model(vit_gpt2).info()["sparsity"] == 0.0


# ------------------------------------------------------------------ 4. fine-tunes against their base

def test_a_lora_run_names_its_base_and_its_adapter(tmp_path, vit_gpt2):
    adapter = tiny_models.make_lora_adapter(vit_gpt2, tmp_path / "lora")
    base_fp = load_model(vit_gpt2).fingerprint()
    res = _caption(tmp_path, adapter)
    fp = res["model"]["fingerprint"]
    assert fp["base_model"]["hash"] == base_fp["hash"]  # "base X + adapter Y"
    assert fp["base_model"]["weights_sha256"] == base_fp["weights_sha256"]
    assert fp["base_model"]["path"] == vit_gpt2
    assert fp["peft_adapter"]["weights_sha256"] and fp["peft_adapter_path"] == adapter
    assert fp["hash"] != base_fp["hash"]
