"""mmbench compare: real baseline runs, refusals, self-comparison, test choice per metric kind,
flips, cost, PEFT naming, escaping, and the CLI (--json shape, --out files, errors)."""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.compare import compare_runs, write_report
from mmbench.errors import MMBenchError

runner = CliRunner()
LIMIT = 150
ISSUE_KEYS = {"base", "candidate", "difference", "ci_low", "ci_high", "test", "p_value", "p_value_holm"}
EVIL = '<img src=x onerror="alert(1)">**bold**|'


@pytest.fixture(scope="module")
def baseline_runs(tmp_path_factory):
    """easyvqa-majority and easyvqa-question-only on the first 150 samples of two tasks (instant baselines)."""
    from mmbench.runner import EvalConfig, evaluate

    root = tmp_path_factory.mktemp("compare_runs")
    for model in ("easyvqa-majority", "easyvqa-question-only"):
        evaluate(EvalConfig(model=model, tasks=["easyvqa_vqa", "easyvqa_consistency"], limit=LIMIT,
                            output=str(root / model), cache=False))
    return root


def _lines(run: Path, task: str) -> dict[str, dict]:
    return {o["id"]: o for o in map(json.loads, (run / "predictions" / f"{task}.jsonl").read_text().splitlines())}


def _copy_run(src: Path, dst: Path, edit=None) -> Path:
    shutil.copytree(src, dst)
    if edit:
        res = json.loads((dst / "results.json").read_text())
        edit(res)
        (dst / "results.json").write_text(json.dumps(res))
    return dst


def test_two_baselines_flips_and_mcnemar(baseline_runs):
    base, cand = baseline_runs / "easyvqa-majority", baseline_runs / "easyvqa-question-only"
    result = compare_runs(base, [cand], n_boot=500, task_data=False)
    entry = result["candidates"]["easyvqa-question-only"]
    task = entry["tasks"]["easyvqa_vqa"]
    a, b = _lines(base, "easyvqa_vqa"), _lines(cand, "easyvqa_vqa")
    to_correct = [i for i in a if a[i]["scores"]["exact_match"] == 0 and b[i]["scores"]["exact_match"] == 1]
    to_wrong = [i for i in a if a[i]["scores"]["exact_match"] == 1 and b[i]["scores"]["exact_match"] == 0]
    assert task["n"] == LIMIT
    assert (task["flipped_to_correct"], task["flipped_to_wrong"]) == (len(to_correct), len(to_wrong))
    assert [it["id"] for it in task["flips"]["items"]["to_correct"]] == to_correct
    assert [it["id"] for it in task["flips"]["items"]["to_wrong"]] == to_wrong
    item = task["flips"]["items"]["to_correct"][0]
    assert item["base"]["prediction"] == a[item["id"]]["prediction"]
    assert item["candidate"]["prediction"] == b[item["id"]]["prediction"]
    assert item["references"] == a[item["id"]]["references"] and item["meta"]["answer_type"]
    em = task["metrics"]["exact_match"]
    assert set(em) >= ISSUE_KEYS
    assert em["test"] == "mcnemar-exact" and em["p_value"] < 1e-6 and em["p_value_holm"] < 1e-5
    assert em["discordant"] == {"to_correct": len(to_correct), "to_wrong": len(to_wrong)}
    assert em["difference"] == pytest.approx(em["candidate"] - em["base"])
    assert em["ci_low"] < em["difference"] < em["ci_high"] and em["ci_low"] > 0
    assert em["verdict"] == "better"
    # per-answer-type keys are tested on their own samples; counts get no test
    assert task["metrics"]["exact_match/yes/no"]["test"] == "mcnemar-exact"
    assert task["metrics"]["exact_match/yes/no"]["n"] == sum(1 for o in a.values()
                                                              if o["meta"]["answer_type"] == "yes/no")
    assert task["metrics"]["unanswered"]["test"].startswith("none") and task["metrics"]["unanswered"]["p_value"] is None
    cats = task["flips"]["by_category"]["answer_type"]
    assert sum(c["to_correct"] for c in cats.values()) == len(to_correct)
    assert sum(c["n"] for c in cats.values()) == LIMIT
    # Holm over every test of the comparison, both tasks
    ps = [r for t in entry["tasks"].values() for r in t["metrics"].values() if r["p_value"] is not None]
    assert result["settings"]["n_tests"] == len(ps) and all(r["p_value_holm"] >= r["p_value"] for r in ps)
    cons = entry["tasks"]["easyvqa_consistency"]["metrics"]
    assert cons["consistency"]["test"] == "none (corpus statistic)" and cons["consistency"]["ci_low"] is None


def test_run_compared_with_itself(baseline_runs):
    base = baseline_runs / "easyvqa-question-only"
    result = compare_runs(base, [base], n_boot=200, task_data=False)
    for task in result["candidates"]["easyvqa-question-only"]["tasks"].values():
        assert task["flipped_to_correct"] == task["flipped_to_wrong"] == 0
        for row in task["metrics"].values():
            assert row["difference"] == 0
            if row["p_value"] is not None:
                assert row["p_value"] == 1.0 and (row["ci_low"], row["ci_high"]) == (0.0, 0.0)
                assert row["verdict"] == "no significant difference"


def test_incomparable_task_is_refused_with_reasons(baseline_runs, tmp_path):
    def change_prompt(res):
        res["tasks"]["easyvqa_consistency"]["fingerprint"].update(prompt="{question}\nOne word.", hash="0" * 16)

    cand = _copy_run(baseline_runs / "easyvqa-question-only", tmp_path / "other-prompt", change_prompt)
    result = compare_runs(baseline_runs / "easyvqa-majority", [cand], n_boot=200, task_data=False)
    entry = result["candidates"]["other-prompt"]
    assert list(entry["tasks"]) == ["easyvqa_vqa"]
    reasons = entry["refused"]["easyvqa_consistency"]["reasons"]
    assert any(r.startswith("prompt differs") and "One word." in r for r in reasons)
    md = (write_report(result, tmp_path / "out")["markdown"]).read_text()
    assert "Not compared" in md and "prompt differs" in md


def test_no_comparable_or_common_task_is_an_error(baseline_runs, tmp_path):
    def change_all(res):
        for t in res["tasks"].values():
            t["fingerprint"].update(limit=9, hash="1" * 16)

    def rename(res):
        res["tasks"] = {"other_" + k: v for k, v in res["tasks"].items()}

    base = baseline_runs / "easyvqa-majority"
    with pytest.raises(MMBenchError, match="no comparable task.*limit"):
        compare_runs(base, [_copy_run(base, tmp_path / "subset", change_all)], task_data=False)
    with pytest.raises(MMBenchError, match="no task in common"):
        compare_runs(base, [_copy_run(base, tmp_path / "renamed", rename)], task_data=False)


# ------------------------------------------------------------------ synthetic runs (graded, corpus, cost)

def _fake_run(folder: Path, name: str, preds: list[str], scores: list[dict], *, model_extra=None,
              prediction_text=None) -> Path:
    refs = [["a red circle", "a circle that is red"], ["a blue square"], ["a green triangle"],
            ["a gray rectangle"], ["a teal circle"], ["a yellow circle"]]
    from mmbench.metrics.caption import bleu_from_statistics, caption_bleu_statistics

    bleu = bleu_from_statistics(caption_bleu_statistics(preds, refs).sum(axis=0))
    metrics = {"BLEU-1": float(bleu[0]), "BLEU-4": float(bleu[3]), "METEOR": 0.3,
               "CIDEr-D": sum(s["CIDEr-D"] for s in scores) / len(scores)}
    info = {"BLEU-1": ("corpus", True), "BLEU-4": ("corpus", True), "METEOR": ("corpus", True),
            "CIDEr-D": ("mean", True)}
    folder.mkdir(parents=True)
    (folder / "predictions").mkdir()
    with gzip.open(folder / "predictions" / "cap.jsonl.gz", "wt") as fh:
        for i, (p, s) in enumerate(zip(preds, scores)):
            fh.write(json.dumps({"id": str(i), "prompt_hash": None, "raw_output": (prediction_text or p),
                                 "prediction": p, "references": refs[i], "scores": s, "error": None,
                                 "meta": {"image_id": str(i // 2)}}) + "\n")
    fp = {"adapter": "x", "hash": name, "n_parameters": 1000, "bytes": 4 * 2**20, **(model_extra or {})}
    res = {"schema_version": 2, "model": {"name": name, "fingerprint": fp, "n_parameters": 1000},
           "timing": {"model_load_s": 2.0}, "tasks": {"cap": {
               "family": "captioning", "fingerprint": {"hash": "f" * 16, "task": "cap"}, "n_samples": len(preds),
               "metrics": metrics, "primary_metric": "CIDEr-D",
               "metric_info": {k: {"metric": "coco-caption", "aggregation": a, "higher_is_better": h}
                               for k, (a, h) in info.items()},
               "timing": {"samples_per_s": 10.0}, "memory": {"peak_rss_mb": 100.0, "peak_gpu_mb": 50.0},
               "predictions": "predictions/cap.jsonl"}}}
    (folder / "results.json").write_text(json.dumps(res))
    return folder


BASE_PREDS = ["a red circle", "a blue square on white", "green", "a gray rectangle", "circle", "a yellow circle"]
CAND_PREDS = ["a red circle", "a blue square", "a green triangle", "a gray shape", "a teal circle", "a yellow circle"]
BASE_CIDER = [2.0, 1.0, 0.0, 1.5, 0.0, 2.2]
CAND_CIDER = [2.0, 1.8, 1.9, 0.0, 1.7, 2.2]


def test_test_choice_per_metric_kind_cost_and_peft(tmp_path):
    base = _fake_run(tmp_path / "base", "base-model", BASE_PREDS, [{"CIDEr-D": c} for c in BASE_CIDER])
    lora = {"peft_adapter": {"weights_sha256": "abc123", "bytes": 2**20}, "peft_adapter_path": "/ckpt/lora",
            "path": "/ckpt/base", "quantization": {"method": "int8"}}
    cand = _fake_run(tmp_path / "cand", f"base-model+lora {EVIL}", CAND_PREDS, [{"CIDEr-D": c} for c in CAND_CIDER],
                     model_extra=lora, prediction_text=EVIL)
    result = compare_runs(base, [cand], n_boot=500, task_data=False)
    entry = result["candidates"]["cand"]
    rows = entry["tasks"]["cap"]["metrics"]
    assert rows["BLEU-1"]["test"] == rows["BLEU-4"]["test"] == "randomization-bleu"
    assert rows["BLEU-1"]["n_resamples"] == 2 ** 3 and rows["BLEU-1"]["exact_enumeration"]  # 3 images
    assert rows["BLEU-1"]["ci_low"] <= rows["BLEU-1"]["difference"] <= rows["BLEU-1"]["ci_high"]
    assert rows["METEOR"]["test"] == "none (corpus statistic)" and rows["METEOR"]["p_value"] is None
    assert rows["CIDEr-D"]["test"] == "sign-flip" and rows["CIDEr-D"]["n_resamples"] == 8
    # graded flips: right when CIDEr-D > 0
    flips = entry["tasks"]["cap"]["flips"]
    assert flips["rule"] == "right: CIDEr-D > 0"
    assert [it["id"] for it in flips["items"]["to_correct"]] == ["2", "4"]
    assert [it["id"] for it in flips["items"]["to_wrong"]] == ["3"]
    # cost: differences and ratios; quantization and the adapter shown
    cost = entry["cost"]
    assert cost["run"]["weights_bytes"] == {"base": 4 * 2**20, "candidate": 5 * 2**20, "difference": 2**20,
                                            "ratio": 1.25}
    assert cost["tasks"]["cap"]["peak_gpu_mb"]["ratio"] == 1.0
    assert cost["model"]["quantization"] == {"base": None, "candidate": {"method": "int8"}}
    assert entry["model"]["peft_adapter"]["path"] == "/ckpt/lora"
    assert "PEFT adapter /ckpt/lora" in entry["relation"] and "/ckpt/base" in entry["relation"]
    # model text is never markup: Markdown and HTML escape it
    paths = write_report(result, tmp_path / "out")
    page = paths["html"].read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "http://" not in page and "https://" not in page
    md = paths["markdown"].read_text()
    assert "<img" not in md and "&lt;img" in md
    assert json.loads(paths["json"].read_text())["candidates"]["cand"]["tasks"]["cap"]["n"] == 6


def test_cli_json_shape_and_files(baseline_runs, tmp_path):
    base, cand = baseline_runs / "easyvqa-majority", baseline_runs / "easyvqa-question-only"
    out = tmp_path / "report"
    result = runner.invoke(app, ["compare", str(base), str(cand), "--json", "--n-boot", "200", "--out", str(out),
                                 "--no-task-data"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"base", "candidates", "settings"}
    task = data["candidates"]["easyvqa-question-only"]["tasks"]["easyvqa_vqa"]
    assert {"metrics", "flipped_to_correct", "flipped_to_wrong", "n"} <= set(task)
    assert all(ISSUE_KEYS <= set(row) for row in task["metrics"].values())
    assert json.loads((out / "compare.json").read_text()) == data
    assert (out / "compare.md").read_text().startswith("# Comparison")
    table = runner.invoke(app, ["compare", str(base), str(cand), "--n-boot", "200", "--no-task-data"],
                          env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "McNemar" in table.stdout and "wrong→right" in table.stdout


def test_cli_errors_are_one_line(tmp_path):
    result = runner.invoke(app, ["compare", str(tmp_path / "missing"), str(tmp_path / "also")])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output


def test_task_data_gives_questions_and_thumbnails(baseline_runs):
    base, cand = baseline_runs / "easyvqa-majority", baseline_runs / "easyvqa-question-only"
    result = compare_runs(base, [cand], n_boot=200, max_items=5)
    task = result["candidates"]["easyvqa-question-only"]["tasks"]["easyvqa_vqa"]
    item = task["flips"]["items"]["to_correct"][0]
    assert item["question"] and "?" in item["question"]
    assert result["thumbnails"]["easyvqa_vqa"][item["id"]].startswith("data:image/png;base64,")
    assert len(task["flips"]["items"]["to_correct"]) == 5 and task["flips"]["truncated"]
