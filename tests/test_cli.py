"""The command line, driven through typer's CliRunner (and one real subprocess)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from tests.helpers import make_caption_task, read_jsonl

runner = CliRunner()
plugin = pytest.importorskip("mmbench_example_plugin", reason="install tests/plugin_pkg (README test command)")


def test_list_commands():
    for kind, expected in (("tasks", "easyvqa_caption"), ("models", "easyvqa-captioner"),
                           ("metrics", "coco-caption")):
        result = runner.invoke(app, ["list", kind])
        assert result.exit_code == 0, result.output
        assert expected in result.output


def test_eval_records_and_counts_failed_samples(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", bad_rows=True)
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--model", "example-echo", "--tasks", "tiny_caption", "--include",
                                 str(tasks), "--output", str(out), "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    task = res["tasks"]["tiny_caption"]
    assert res["schema_version"] == 2 and res["mmbench_version"]
    assert res["config"]["batch_size"] == 3 and res["config"]["model"] == "example-echo"
    assert task["n_samples"] == 8 and task["n_failed"] == 2 and task["n_scored"] == 7
    assert task["metrics"] == {"mean_length": pytest.approx((6 * 7 + 0) / 7)}  # failed image scored as empty
    assert {f["id"] for f in task["failures"]} == {"no_file", "no_refs"}
    assert task["fingerprint"]["hash"] and task["fingerprint"]["sample_ids_hash"]
    assert res["model"]["fingerprint"]["adapter"] == "example-echo"
    lines = read_jsonl(out / task["predictions"])
    assert [line["id"] for line in lines][:2] == ["img0", "img1"]
    by_id = {line["id"]: line for line in lines}
    assert by_id["img0"]["prediction"] == "an image of 32 by 32 pixels"
    assert by_id["img0"]["scores"] == {"mean_length": 7.0}
    assert "missing.png" in by_id["no_file"]["error"] and "'image'" in by_id["no_file"]["error"]
    assert "'captions'" in by_id["no_refs"]["error"] and by_id["no_refs"]["prediction"] is None
    assert "2 failed" in result.output.replace("\n", " ")


def test_on_error_fail_stops_and_names_the_sample(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", bad_rows=True)
    result = runner.invoke(app, ["eval", "--model", "example-echo", "--tasks", "tiny_caption", "--include",
                                 str(tasks), "--output", str(tmp_path / "run"), "--on-error", "fail"])
    assert result.exit_code == 2
    assert "no_refs" in result.output or "no_file" in result.output
    assert not (tmp_path / "run" / "results.json").exists()


def test_unknown_task_suggests(tmp_path):
    result = runner.invoke(app, ["eval", "--model", "example-echo", "--tasks", "easyvqa_captoin"])
    assert result.exit_code == 2
    assert "Did you mean: easyvqa_caption" in result.output


def test_unknown_model_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["eval", "--model", "not a model", "--tasks", "easyvqa_caption",
                                 "--output", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "not a registered model" in result.output


def test_uncached_hub_model_fails_at_once_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    t0 = time.perf_counter()
    result = runner.invoke(app, ["eval", "--model", "Salesforce/blip-image-captioning-base",
                                 "--tasks", "easyvqa_caption", "--output", str(tmp_path / "r")])
    assert time.perf_counter() - t0 < 10
    assert result.exit_code == 2
    assert "not in the local Hugging Face cache" in result.output and "offline" in result.output


def test_remote_code_needs_opt_in(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "custom", "auto_map": {"AutoModel": "m.Model"}}))
    result = runner.invoke(app, ["eval", "--model", str(ckpt), "--tasks", "easyvqa_caption",
                                 "--output", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "--trust-remote-code" in result.output


def test_python_module_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mmbench", "list", "metrics"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "coco-caption" in proc.stdout


PUBLISHED = Path(__file__).resolve().parent.parent / "leaderboards" / "easy-vqa" / "runs"


@pytest.mark.slow
def test_default_run_evaluates_each_reference_model_offline_and_joins_the_published_board(tmp_path, monkeypatch):
    """The README's first command, from another folder: each reference model works, and each task lands
    in the published easy-VQA board's group (same fingerprint: nothing depends on where files sit) with
    the published numbers."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["eval", "--output", "default"])
    assert result.exit_code == 0, result.output
    cap = json.loads((tmp_path / "default" / "easyvqa-captioner" / "results.json").read_text())
    vqa = json.loads((tmp_path / "default" / "easyvqa-vilt" / "results.json").read_text())
    assert cap["tasks"]["easyvqa_caption"]["metrics"]["CIDEr-D"] > 3.0  # the reference captioner works
    assert vqa["tasks"]["easyvqa_vqa"]["metrics"]["exact_match"] > 0.8
    clip = json.loads((tmp_path / "default" / "easyvqa-clip" / "results.json").read_text())
    assert clip["tasks"]["easyvqa_retrieval"]["metrics"]["t2i_R@1"] > 0.9  # the reference CLIP works
    assert cap["tasks"]["easyvqa_caption"]["metrics"]["CLIPScore"] > 2.0  # and scores the captioner's captions
    assert cap["tasks"]["easyvqa_caption"]["metric_backends"]["CLIPScore"]["scorer"] == "easyvqa-clip"
    assert all(t in result.output for t in ("easyvqa_caption", "easyvqa_vqa", "easyvqa_retrieval"))
    for model, ours in (("easyvqa-captioner", cap), ("easyvqa-vilt", vqa), ("easyvqa-clip", clip)):
        published = json.loads((PUBLISHED / model / "results.json").read_text())
        for task, entry in ours["tasks"].items():
            board = published["tasks"][task]
            assert entry["fingerprint"]["hash"] == board["fingerprint"]["hash"], (model, task)
            assert entry["metrics"] == pytest.approx(board["metrics"], rel=1e-9, abs=1e-9), (model, task)
        assert ours["model"]["fingerprint"]["hash"] == published["model"]["fingerprint"]["hash"]


def test_model_without_tasks_is_an_error():
    result = runner.invoke(app, ["eval", "--model", "easyvqa-captioner"])
    assert result.exit_code == 2 and "pass both --model and --tasks" in result.output
