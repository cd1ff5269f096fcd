"""scripts/publish_compression_showcase.py end to end on a tiny --limit: the LoRA comparison's runs
(two `mmbench eval` processes) and its `mmbench compare` reports, written into tmp_path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ADAPTER = REPO / "mmbench" / "assets" / "models" / "easyvqa-vilt-lora-rephrased"


def _script():
    spec = importlib.util.spec_from_file_location("publish_compression_showcase",
                                                  REPO / "scripts" / "publish_compression_showcase.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_adapter_names_a_registered_base_that_resolves_from_any_folder(tmp_path, monkeypatch):
    from mmbench.models.resolve import resolve_model

    cfg = json.loads((ADAPTER / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "easyvqa-vilt"
    monkeypatch.chdir(tmp_path)  # not the repository root
    resolved = resolve_model(str(ADAPTER))
    assert (Path(resolved.kwargs["path"]) / "config.json").is_file()
    assert resolved.kwargs["path"].endswith("mmbench/assets/models/easyvqa-vilt")
    assert (ADAPTER / "adapter_model.safetensors").stat().st_size < 100_000


@pytest.mark.slow
def test_lora_comparison_on_a_tiny_limit(tmp_path, monkeypatch):
    showcase = _script()
    out = tmp_path / "showcase"
    try:
        results = showcase.publish(out, limit=30, only=["vilt-lora"])
    finally:
        monkeypatch.chdir(tmp_path)  # publish() moved to the repository root
    for name in ("compare.md", "compare.html", "compare.json"):
        assert (out / "vilt-lora" / name).stat().st_size > 0
    assert list((out / "runs" / "easyvqa-vilt-lora-rephrased" / "predictions").glob("*.jsonl.gz"))

    report = json.loads((out / "vilt-lora" / "compare.json").read_text())
    cand = report["candidates"]["easyvqa-vilt-lora-rephrased"]
    assert report["base"]["name"] == "easyvqa-vilt" and report["base"]["peft_adapter"] is None
    assert cand["model"]["peft_adapter"]["path"] == "mmbench/assets/models/easyvqa-vilt-lora-rephrased"
    assert cand["model"]["base_model"].endswith("mmbench/assets/models/easyvqa-vilt")
    assert "PEFT adapter mmbench/assets/models/easyvqa-vilt-lora-rephrased" in cand["relation"]
    assert "same weights hash" in cand["relation"]  # the adapter's base is the base run's checkpoint
    assert set(cand["tasks"]) == {"easyvqa_vqa", "easyvqa_consistency"}
    assert cand["tasks"]["easyvqa_vqa"]["metrics"]["exact_match"]["test"] == "mcnemar-exact"
    md = (out / "vilt-lora" / "compare.md").read_text()
    assert "easyvqa-vilt-lora-rephrased" in md and "easyvqa-vilt-fp32" in md
    readme = (out / "README.md").read_text()
    assert "easyvqa-vilt vs easyvqa-vilt + LoRA" in readme and "p (Holm)" in readme
    assert results["vilt-lora"]["settings"]["n_tests"] >= 2
