"""`mmbench score vqa` against the official script's values (tests/data/vqa, see its README)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import DataError
from mmbench.scoring import score_vqa_files

runner = CliRunner()
DATA = json.loads((Path(__file__).parent / "data" / "vqa" / "cases.json").read_text())


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _files(tmp_path, cases):
    refs = _write(tmp_path / "refs.jsonl", [
        {"question_id": i, "answers": c["answers"], "answer_type": c["answer_type"],
         "question_type": c["question_type"]} for i, c in enumerate(cases)])
    preds = _write(tmp_path / "preds.jsonl", [{"question_id": i, "prediction": c["prediction"]}
                                              for i, c in enumerate(cases)])
    return preds, refs


def test_cli_json_matches_the_official_script(tmp_path):
    preds, refs = _files(tmp_path, DATA["cases"])
    result = runner.invoke(app, ["score", "vqa", "--predictions", str(preds), "--references", str(refs), "--json",
                                 "--answers-per-question", "0"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])  # the keys of a run's results.json metrics
    exp = DATA["expected"]
    assert got.pop("accuracy") == pytest.approx(exp["accuracy"], abs=1e-9)
    assert got.pop("unanswered") == sum(c["prediction"] == "" for c in DATA["cases"])
    for prefix, kind in (("accuracy/question_type/", "by_question_type"), ("accuracy/", "by_answer_type")):
        part = {k[len(prefix):]: got.pop(k) for k in list(got) if k.startswith(prefix)}
        assert set(part) == set(exp[kind])
        for key, value in exp[kind].items():
            assert part[key] == pytest.approx(value, abs=1e-9), (kind, key)
    assert got == {}


def test_per_question_values(tmp_path):
    preds, refs = _files(tmp_path, DATA["cases"])
    result = score_vqa_files(preds, refs, answers_per_question=None)
    for case, sample in zip(DATA["cases"], result.per_sample, strict=True):  # in the references' order
        assert sample["accuracy"] == pytest.approx(case["expected_accuracy"], abs=1e-9)


def test_vqa_bad_inputs_name_the_question(tmp_path):
    ten = ["yes"] * 10
    refs = _write(tmp_path / "r.jsonl", [{"question_id": 7, "answers": ten}, {"question_id": 8, "answers": ten[:9]}])
    preds = _write(tmp_path / "p.jsonl", [{"question_id": 7, "prediction": "yes"}, {"question_id": 8, "prediction": "no"}])
    with pytest.raises(DataError, match=r"r.jsonl:2, sample '8', field 'answers': expected 10 answers, got 9"):
        score_vqa_files(preds, refs)
    refs = _write(tmp_path / "r.jsonl", [{"question_id": 7, "answers": ten}])
    preds = _write(tmp_path / "p.jsonl", [{"question_id": 7, "prediction": None}])
    with pytest.raises(DataError, match=r"sample '7', field 'prediction': prediction is null"):
        score_vqa_files(preds, refs)
    preds = _write(tmp_path / "p.jsonl", [{"question_id": 7, "prediction": None, "error": "boom"}])
    values = score_vqa_files(preds, refs)  # a recorded failure is wrong, as in the run
    assert values.corpus["accuracy"] == 0.0 and "1 recorded failure(s) scored as empty answers" in values.warnings[-1]
    preds = _write(tmp_path / "p.jsonl", [{"question_id": 7, "prediction": "yes"}, {"question_id": 7, "prediction": "no"}])
    with pytest.raises(DataError, match=r"p.jsonl:2, sample '7': duplicate id"):
        score_vqa_files(preds, refs)
    preds = _write(tmp_path / "p.jsonl", [{"question_id": 9, "prediction": "yes"}])
    with pytest.raises(DataError, match=r"sample '9'.*not in the references"):
        score_vqa_files(preds, refs)
    refs = _write(tmp_path / "r.jsonl", [{"question_id": 7, "answers": ten[:9] + [3]}])
    with pytest.raises(DataError, match=r"sample '7', field 'answers': answer 9 is int"):
        score_vqa_files(preds, refs)
