"""Benchmark task files (MMBench, MMStar, SEED-Bench, ScienceQA, AI2D, MMMU, POPE, DocVQA,
InfographicVQA, ChartQA, GQA, VizWiz) on local shards of their hub schema: each built-in task is
included with its `path:` swapped to parquet files written here, loaded, prompted, and run end to
end through `mmbench eval` with instant baselines; plus `mmbench list tasks` naming data and revision."""

import io
import json
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmbench.catalog import build_task, builtin_task_dir, include_tasks
from mmbench.cli import app
from mmbench.metrics.registry import METRICS
from tests.helpers import read_jsonl

runner = CliRunner()
IMG = datasets.Image()


def _png(seed: int) -> dict:
    buf = io.BytesIO()
    Image.fromarray((np.random.RandomState(seed).rand(16, 16, 3) * 255).astype("uint8")).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _needs(*metrics: str) -> None:
    missing = [m for m in metrics if m not in METRICS]
    if missing:
        pytest.skip(f"metrics {missing} are not registered yet")


def _shard(path: Path, rows: dict, features: dict) -> str:
    feats = datasets.Features({k: features.get(k, datasets.Value("string")) for k in rows})
    datasets.Dataset.from_dict(rows, features=feats).to_parquet(str(path))
    return path.name


def _local(tmp_path: Path, builtin: str, name: str, data: str, dataset_extra: str = "") -> str:
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(f"""
        include: {next(builtin_task_dir().rglob(builtin + '.yaml'))}
        name: {name}
        dataset: {{path: parquet, data_files: {data}, split: train, revision: null, name: null{dataset_extra}}}
    """))
    include_tasks(tmp_path / f"{name}.yaml")
    return name


# ---------------------------------------------------------------- shards of each hub schema
def mmbench_shard(tmp_path):
    # index 0: 3 options (D empty) with a hint; index 1: 4 options; 1000000: MMBench's own rotated copy of 0
    rows = {"index": [0, 1, 1000000], "question": ["Which animal?", "Which colour?", "Which animal?"],
            "hint": ["A farm.", None, "A farm."], "A": ["cat", "red", "dog"], "B": ["dog", "green", "cow"],
            "C": ["cow", "blue", "cat"], "D": [None, "black", None], "answer": ["B", "D", "A"],
            "category": ["animals", "colours", "animals"], "L2-category": ["x"] * 3, "source": ["s"] * 3,
            "image": [_png(0), _png(1), _png(0)], "comment": [None] * 3, "split": ["dev"] * 3}
    return _local(tmp_path, "mmbench_en_dev", "mmbench_local",
                  _shard(tmp_path / "mmbench.parquet", rows, {"index": datasets.Value("int64"), "image": IMG}))


def mmmu_shard(tmp_path):
    rows = {"id": ["validation_Art_1", "validation_Art_2", "validation_Art_3"],
            "question": ["Compare <image 1> and <image 2>.", "What is <image 1>?", "Open question?"],
            "options": ["['left', 'right', 'both']", "['a', 'b']", "[]"], "explanation": [""] * 3,
            "answer": ["C", "A", "42"], "img_type": ["['Photos']"] * 3, "topic_difficulty": ["Easy"] * 3,
            "question_type": ["multiple-choice", "multiple-choice", "open"], "subfield": ["Art", "Design", "Art"]}
    for k in range(1, 8):
        rows[f"image_{k}"] = [_png(10 + k) if k == 1 or (k == 2 and i == 0) else None for i in range(3)]
    return _local(tmp_path, "mmmu_val", "mmmu_local",
                  _shard(tmp_path / "mmmu.parquet", rows, {f"image_{k}": IMG for k in range(1, 8)}))


def test_mmbench_circular_rotations(tmp_path):
    task = build_task(mmbench_shard(tmp_path))
    samples = task.load_samples()
    assert [s.id for s in samples] == ["0@0", "0@1", "0@2", "1@0", "1@1", "1@2", "1@3"]  # copy 1000000 dropped
    assert [s.meta["choices"] for s in samples[:3]] == [["cat", "dog", "cow"], ["dog", "cow", "cat"],
                                                        ["cow", "cat", "dog"]]
    assert [s.references[0] for s in samples[:3]] == ["B", "A", "C"]  # "dog" wherever it moved
    assert {s.meta["group"] for s in samples[:3]} == {"0"} and samples[0].meta["category"] == "animals"
    assert task.build_request(samples[1], "m").prompt == (
        "Hint: A farm.\nWhich animal?\nA. dog\nB. cow\nC. cat\n"
        "Answer with the option's letter from the given choices directly.")
    assert task.build_request(samples[3], "m").prompt.startswith("Which colour?\nA. red")  # no hint line
    assert [s.id for s in task.load_samples(limit=1)] == ["0@0", "0@1", "0@2"]  # --limit counts questions


def test_mmmu_images_in_order_and_open_questions_left_out(tmp_path):
    task = build_task(mmmu_shard(tmp_path))
    samples = task.load_samples()
    assert [s.id for s in samples] == ["validation_Art_1", "validation_Art_2"]
    assert len(samples[0].images) == 2 and len(samples[1].images) == 1
    assert samples[0].images[0].data == _png(11)["bytes"] and samples[0].images[1].data == _png(12)["bytes"]
    assert samples[0].meta["choices"] == ["left", "right", "both"] and samples[0].references == ("C",)
    assert "group" not in samples[0].meta  # not circular


@pytest.mark.parametrize("builtin", ["mmstar", "seedbench_image", "scienceqa_img", "ai2d_test"])
def test_single_pass_choice_schemas(tmp_path, builtin):
    if builtin == "mmstar":
        rows = {"index": [0, 1], "question": ["Which one?\nOptions: A: a cat, B: a dog, C: a cow, D: a hen",
                                              "Colour?\nOptions: A: red, B: blue"],
                "image": [_png(0), _png(1)], "answer": ["B", "A"], "category": ["coarse perception"] * 2,
                "l2_category": ["x"] * 2, "meta_info": [{"source": "s"}] * 2}
        feats = {"index": datasets.Value("int64"), "image": IMG, "meta_info": {"source": datasets.Value("string")}}
        want = (["a cat", "a dog", "a cow", "a hen"], "B", "Which one?")
    elif builtin == "seedbench_image":
        rows = {"answer": ["C", "A", "B"], "choice_a": ["x", "p", "u"], "choice_b": ["y", "q", "v"],
                "choice_c": ["z", "r", "w"], "choice_d": ["w", "s", "t"], "data_id": ["1", "2", "3"],
                "data_type": ["image", "video", "image"], "question": ["What?", "When?", "Where?"],
                "question_id": ["101", "102", "103"], "question_type_id": [1, 10, 2],
                "image": [[_png(0)], [_png(1), _png(2)], [_png(3)]]}
        feats = {"question_type_id": datasets.Value("int64"), "image": datasets.Sequence(IMG)}
        want = (["x", "y", "z", "w"], "C", "What?")
    elif builtin == "scienceqa_img":
        rows = {"image": [_png(0), _png(1)], "question": ["Which is a mammal?", "Hot or cold?"],
                "choices": [["frog", "whale"], ["hot", "cold", "warm"]], "answer": [1, 0],
                "hint": ["Mammals feed milk.", ""], "subject": ["natural science"] * 2, "lecture": [""] * 2}
        feats = {"image": IMG, "choices": datasets.Sequence(datasets.Value("string")), "answer": datasets.Value("int64")}
        want = (["frog", "whale"], "B", "Which is a mammal?")
    else:
        rows = {"question": ["Which stage?", "What eats grass?"], "options": [["egg", "larva", "pupa", "adult"],
                                                                             ["cow", "lion", "owl", "hawk"]],
                "answer": ["2", "0"], "image": [_png(0), _png(1)]}
        feats = {"image": IMG, "options": datasets.Sequence(datasets.Value("string"))}
        want = (["egg", "larva", "pupa", "adult"], "C", "Which stage?")
    name = _local(tmp_path, builtin, f"{builtin}_local", _shard(tmp_path / f"{builtin}.parquet", rows, feats))
    samples = build_task(name).load_samples()
    assert all(s.error is None for s in samples), [s.error for s in samples]
    assert (samples[0].meta["choices"], samples[0].references[0], samples[0].text) == want
    if builtin == "seedbench_image":
        assert [s.id for s in samples] == ["101", "103"]  # the video question is filtered out
    if builtin == "scienceqa_img":
        prompt = build_task(name).build_request(samples[0], "m").prompt
        assert prompt.startswith("Hint: Mammals feed milk.\nWhich is a mammal?\nA. frog\nB. whale\n")
        assert "Hint" not in build_task(name).build_request(samples[1], "m").prompt  # an empty hint adds nothing


# ---------------------------------------------------------------- open-answer benchmarks
def vqa_shards(tmp_path):
    """Local copies of POPE, DocVQA, InfographicVQA, ChartQA, GQA and VizWiz; returns task names."""
    names = []
    rows = {"id": ["0", "1", "2", "3", "4", "5"], "question_id": ["1", "2", "1", "2", "1", "2"],
            "question": ["Is there a dog in the image?", "Is there a cat in the image?"] * 3,
            "answer": ["yes", "no"] * 3, "image_source": ["COCO_val2014_1"] * 6,
            "image": [_png(i) for i in range(6)], "category": ["adversarial"] * 2 + ["popular"] * 2 + ["random"] * 2}
    names.append(_local(tmp_path, "pope", "pope_local", _shard(tmp_path / "pope.parquet", rows, {"image": IMG})))
    seq = datasets.Sequence(datasets.Value("string"))
    rows = {"questionId": ["10", "11"], "question": ["What is the date?", "Who signed?"],
            "question_types": [["form"], ["handwritten"]], "image": [_png(0), _png(1)], "docId": [5, 6],
            "ucsf_document_id": ["a", "b"], "ucsf_document_page_no": ["1", "2"],
            "answers": [["1 May 1990", "May 1, 1990"], ["J. Smith"]], "data_split": ["val"] * 2}
    names.append(_local(tmp_path, "docvqa_val", "docvqa_local", _shard(
        tmp_path / "docvqa.parquet", rows, {"question_types": seq, "image": IMG, "docId": datasets.Value("int64"),
                                            "answers": seq})))
    rows = {"questionId": ["20"], "question": ["How many?"], "answers": [["12", "twelve"]],
            "answer_type": [["single span"]], "image": [_png(2)], "image_url": ["u"],
            "operation/reasoning": [["counting"]], "ocr": ["{}"], "data_split": ["val"]}
    names.append(_local(tmp_path, "infovqa_val", "infovqa_local", _shard(
        tmp_path / "infovqa.parquet", rows, {"answers": seq, "answer_type": seq, "operation/reasoning": seq,
                                             "image": IMG})))
    rows = {"type": ["human_test", "augmented_test"], "question": ["Peak value?", "Which year?"],
            "answer": ["42.5", "2010"], "image": [_png(3), _png(4)]}
    names.append(_local(tmp_path, "chartqa_test", "chartqa_local",
                        _shard(tmp_path / "chartqa.parquet", rows, {"image": IMG})))
    rows = {"question_id": ["VizWiz_val_0", "VizWiz_val_1"], "image": [_png(5), _png(6)],
            "question": ["What is this?", "What colour?"],
            "answers": [["unanswerable"] * 8 + ["soup"] * 2, ["blue"] * 10],
            "category": ["unanswerable", "other"], "answerable": [0, 1]}
    names.append(_local(tmp_path, "vizwiz_val", "vizwiz_local", _shard(
        tmp_path / "vizwiz.parquet", rows, {"image": IMG, "answers": seq, "answerable": datasets.Value("int32")})))
    # GQA: questions and images in two files, joined by the `gqa` loader on imageId
    types = {"structural": datasets.Value("string"), "semantic": datasets.Value("string"),
             "detailed": datasets.Value("string")}
    q = _shard(tmp_path / "gqa_q.parquet", {
        "id": ["201", "202"], "imageId": ["n1", "n2"], "question": ["Is the sky blue?", "What is on the table?"],
        "answer": ["yes", "cup"], "fullAnswer": ["Yes.", "A cup."], "isBalanced": [True, True],
        "types": [{"structural": "verify", "semantic": "attr", "detailed": "verifyAttr"},
                  {"structural": "query", "semantic": "rel", "detailed": "relS"}]},
        {"types": types, "isBalanced": datasets.Value("bool")})
    im = _shard(tmp_path / "gqa_i.parquet", {"id": ["n2", "n1"], "image": [_png(8), _png(7)]}, {"image": IMG})
    (tmp_path / "gqa_local.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'vqa' / 'gqa_testdev.yaml'}
        name: gqa_local
        dataset:
          loader_kwargs: {{path: parquet, revision: null, questions: {tmp_path / q}, images: {tmp_path / im}}}
    """))
    include_tasks(tmp_path / "gqa_local.yaml")
    return names + ["gqa_local"]


def test_open_answer_schemas(tmp_path):
    names = vqa_shards(tmp_path)
    loaded = {n: build_task(n).load_samples() for n in names}
    assert all(s.error is None for ss in loaded.values() for s in ss)
    pope = loaded["pope_local"]
    assert pope[0].id == "adversarial/1" and pope[0].meta["split"] == "adversarial" and pope[1].references == ("no",)
    assert loaded["docvqa_local"][0].references == ("1 May 1990", "May 1, 1990")
    assert [s.meta["split"] for s in loaded["chartqa_local"]] == ["human_test", "augmented_test"]
    assert loaded["vizwiz_local"][0].meta["answer_type"] == "unanswerable"
    gqa = loaded["gqa_local"]
    assert [s.id for s in gqa] == ["201", "202"] and gqa[0].meta["question_type"] == "verify"
    assert gqa[0].images[0].data == _png(7)["bytes"]  # joined on imageId, not by position


def test_benchmarks_end_to_end_through_mmbench_eval(tmp_path):
    _needs("multiple-choice", "multiple-choice-mmmu", "pope", "anls", "relaxed-accuracy", "gqa-accuracy")
    names = vqa_shards(tmp_path) + [mmbench_shard(tmp_path), mmmu_shard(tmp_path)]
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--model", "easyvqa-always-yes", "--tasks", ",".join(names),
                                 "--output", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    metrics = {name: t["metrics"] for name, t in res["tasks"].items()}
    assert metrics["pope_local"]["yes_ratio"] == 1.0 and metrics["pope_local"]["recall"] == 1.0
    assert metrics["pope_local"]["precision"] == 0.5
    assert metrics["vizwiz_local"]["accuracy"] == 0.0
    assert set(metrics) == set(names)
    lines = read_jsonl(out / res["tasks"]["mmbench_local"]["predictions"])
    assert [line["id"] for line in lines] == ["0@0", "0@1", "0@2", "1@0", "1@1", "1@2", "1@3"]  # one per rotation
    assert metrics["mmbench_local"]["circular_accuracy"] == 0.0


def test_list_tasks_shows_data_and_revision():
    result = runner.invoke(app, ["list", "tasks"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "│ pope " in line)
    assert "data: lmms-lab/POPE@4db1276663df test" in line
    assert "data: lmms-lab/MMBench/en@56ba1af89549 dev" in result.output
    assert "data: loader easyvqa-mc test" in result.output
