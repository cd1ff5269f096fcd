"""`mmbench score captioning`: every bad input is a clear error naming file, line, id and field."""

import json

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import DataError
from mmbench.scoring import score_captioning

runner = CliRunner()
REFS = [{"image_id": 1, "references": ["a dog", "a brown dog"]}, {"image_id": 2, "references": ["a cat"]}]


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("pred_rows, message", [
    ([{"image_id": 1, "prediction": "a dog"}, {"image_id": 1, "prediction": "x"}, {"image_id": 2, "prediction": "y"}],
     r"pred.jsonl:2, sample '1': duplicate id \(first at .*pred.jsonl:1\)"),
    ([{"image_id": 1, "prediction": "a"}, {"image_id": 2, "prediction": "b"}, {"image_id": 3, "prediction": "c"}],
     r"sample '3'.*not in the references"),
    ([{"image_id": 1, "prediction": "a"}], r"sample '2'.*have no prediction"),
    ([], r"pred.jsonl: no predictions \(the file is empty\)"),
    ([{"image_id": 1}, {"image_id": 2, "prediction": "b"}], r"pred.jsonl:1, sample '1', field 'prediction': missing"),
    ([{"image_id": 1, "prediction": 5}, {"image_id": 2, "prediction": "b"}],
     r"pred.jsonl:1, sample '1', field 'prediction': prediction must be a string"),
    ([{"image_id": 1, "prediction": None}, {"image_id": 2, "prediction": "b"}], r"sample '1'.*prediction is null"),
    (["{not json"], r"pred.jsonl:1: invalid JSON"),
    ([{"prediction": "a"}], r"pred.jsonl:1, field 'image_id': no id"),
])
def test_bad_predictions(tmp_path, pred_rows, message):
    refs = _write(tmp_path / "refs.jsonl", REFS)
    preds = _write(tmp_path / "pred.jsonl", pred_rows)
    with pytest.raises(DataError, match=message):
        score_captioning(preds, refs)
    result = runner.invoke(app, ["score", "captioning", "--predictions", str(preds), "--references", str(refs)])
    assert result.exit_code == 2 and "error:" in result.output


@pytest.mark.parametrize("ref_rows, message", [
    ([{"image_id": 1, "references": []}], r"refs.jsonl:1, sample '1', field 'references'"),
    ([{"image_id": 1, "references": ["a", 3]}], r"field 'references': reference 1 is int"),
    ([{"image_id": 1, "references": ["a"]}, {"image_id": 1, "references": ["b"]}], r"refs.jsonl:2.*duplicate id"),
])
def test_bad_references(tmp_path, ref_rows, message):
    refs = _write(tmp_path / "refs.jsonl", ref_rows)
    preds = _write(tmp_path / "pred.jsonl", [{"image_id": 1, "prediction": "a"}])
    with pytest.raises(DataError, match=message):
        score_captioning(preds, refs)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope.jsonl: file not found"):
        score_captioning(tmp_path / "nope.jsonl", tmp_path / "refs.jsonl")


def test_own_predictions_file_carries_its_references(tmp_path):
    preds = _write(tmp_path / "pred.jsonl", [{"id": "1", "prediction": "a", "references": ["a dog"]},
                                             {"id": "2", "prediction": "b", "references": []}])
    with pytest.raises(DataError, match=r"pred.jsonl:2, sample '2', field 'references'"):
        score_captioning(preds)
