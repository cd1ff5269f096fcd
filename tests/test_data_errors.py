"""Bad data is a one-line error naming the file and line (or the sample) and the field
(issue #16 §4), through ``include_tasks`` + ``build_task`` + ``load_samples`` and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmbench.catalog import build_task, include_tasks
from mmbench.cli import app
from mmbench.errors import DataError

TASK = """\
name: {name}
family: {family}
dataset:
  path: json
  data_files: {files}
  split: train
  columns: {columns}
metrics: [{metric}]
"""
FAMILIES = {
    "vqa": ("{id: qid, image: file, question: q, answers: a}", "exact-match"),
    "captioning": ("{id: qid, image: file, references: a}", "coco-caption"),
    "retrieval": ("{id: qid, image: file, captions: a}", "retrieval-recall"),
}


def _row(i: int, **over) -> dict:
    return {"qid": f"q{i}", "file": "red.png", "q": "what colour?", "a": ["red"], **over}


def _setup(tmp_path: Path, lines: list[str] | bytes, *, family: str = "vqa", files: str = "data.jsonl",
           name: str = "bad_data") -> str:
    folder = tmp_path / "tasks"
    folder.mkdir(exist_ok=True)
    Image.new("RGB", (8, 8), "red").save(folder / "red.png")
    data = folder / "data.jsonl"
    data.write_bytes(lines if isinstance(lines, bytes) else "".join(line + "\n" for line in lines).encode())
    columns, metric = FAMILIES[family]
    (folder / f"{name}.yaml").write_text(TASK.format(name=name, family=family, files=files, columns=columns,
                                                     metric=metric))
    include_tasks(folder)
    return str(data)


def _load_error(name: str = "bad_data") -> str:
    with pytest.raises(DataError) as info:
        build_task(name).load_samples()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_malformed_jsonl_line(tmp_path):
    """Before: DatasetGenerationError: An error occurred while generating the dataset."""
    data = _setup(tmp_path, [json.dumps(_row(0)), '{"qid": "q1", "file": "red.png"', json.dumps(_row(2))])
    assert _load_error() == f"{data}:2: invalid JSON (Expecting ',' delimiter at column 32)"


def test_a_line_that_is_not_an_object(tmp_path):
    data = _setup(tmp_path, [json.dumps(_row(0)), "[1, 2]"])
    assert _load_error() == f"{data}:2: expected a JSON object per row, got list"


def test_empty_file_and_glob_matching_nothing(tmp_path):
    """Before: StopIteration: ."""
    data = _setup(tmp_path, b"")
    assert _load_error() == f"{data}: the data file is empty"
    data = _setup(tmp_path, ["", "  "])
    assert _load_error() == f"{data}: the data file is empty (only blank lines)"
    _setup(tmp_path, [json.dumps(_row(0))], files="shards/*.jsonl")
    assert _load_error() == f"{tmp_path / 'tasks' / 'shards' / '*.jsonl'}, field 'data_files': no file matches " \
                            "this pattern"


def test_non_utf8_file(tmp_path):
    """Before: a UnicodeDecodeError traceback."""
    data = _setup(tmp_path, (json.dumps(_row(0)) + "\n" + json.dumps(_row(1, q="caf\u00e9?"), ensure_ascii=False) + "\n")
                  .encode("latin-1"))
    assert _load_error() == f"{data}:2: not UTF-8 text (invalid continuation byte at byte 43 of the line)"


def test_row_without_its_id(tmp_path):
    """Before: the row was silently numbered by its row index."""
    no_id = _row(1)
    del no_id["qid"]
    data = _setup(tmp_path, [json.dumps(_row(0)), json.dumps(no_id)])
    assert _load_error() == f"{data}:2, field 'qid': the row has no id (the task's id column is 'qid')"
    # unmapped: the data's own id column (here `id`), if the first row has one
    rows = [{"id": "a", "file": "red.png", "q": "x?", "a": "red"}, {"file": "red.png", "q": "y?", "a": "red"}]
    folder = tmp_path / "unmapped"
    folder.mkdir()
    Image.new("RGB", (8, 8), "red").save(folder / "red.png")
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "u.yaml").write_text(TASK.format(name="unmapped", family="vqa", files="d.jsonl", metric="exact-match",
                                               columns="{image: file, question: q, answers: a}"))
    include_tasks(folder)
    assert _load_error("unmapped") == f"{folder / 'd.jsonl'}:2, field 'id': the row has no id (the task's id " \
                                      "column is 'id')"
    # data with no id column at all is numbered by row index (documented in Task.sample_id)
    (folder / "d.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "id"}) + "\n"
                                            for r in rows))
    assert [s.id for s in build_task("unmapped").load_samples()] == ["0", "1"]


def test_row_without_its_id_from_a_loader(tmp_path, monkeypatch):
    monkeypatch.setattr("mmbench.tasks.datasets.easyvqa.rows_missing_id", lambda split: [
        {"image_id": "a", "image": "x.png", "references": ["r"]}, {"image": "y.png", "references": ["r"]}],
        raising=False)
    folder = tmp_path / "loader"
    folder.mkdir()
    (folder / "l.yaml").write_text("name: loader_ids\nfamily: captioning\ndataset:\n  loader: "
                                   "mmbench.tasks.datasets.easyvqa:rows_missing_id\nmetrics: [coco-caption]\n")
    include_tasks(folder)
    with pytest.raises(DataError) as info:
        build_task("loader_ids", trust_remote_code=True).load_samples()
    assert str(info.value) == f"task loader_ids ({folder / 'l.yaml'}), row 1, field 'image_id': the row has no id"


@pytest.mark.parametrize("family, value, message", [
    ("vqa", ["red", ""], "sample 'q1', field 'a': answer 1 is an empty string"),
    ("vqa", "", "sample 'q1', field 'a': answer 0 is an empty string"),
    ("captioning", ["a red shape", " "], "sample 'q1', field 'a': reference 1 is an empty string"),
    ("captioning", [{"raw": ""}], "sample 'q1', field 'a': reference 0 is an empty string"),
    ("retrieval", ["a red shape", ""], "sample 'q1', field 'a': caption 1 is empty"),
])
def test_empty_reference_is_a_sample_error(tmp_path, family, value, message):
    _setup(tmp_path, [json.dumps(_row(0)), json.dumps(_row(1, a=value))], family=family)
    samples = build_task("bad_data").load_samples()
    assert samples[0].error is None and samples[1].error == message


def test_json_document_error_names_the_line(tmp_path):
    folder = tmp_path / "doc"
    folder.mkdir()
    (folder / "d.json").write_text('[\n  {"qid": "a"},\n  {"qid": "b",}\n]\n')
    (folder / "t.yaml").write_text(TASK.format(name="doc_task", family="vqa", files="d.json", metric="exact-match",
                                               columns=FAMILIES["vqa"][0]))
    include_tasks(folder)
    assert _load_error("doc_task").startswith(f"{folder / 'd.json'}:3: invalid JSON (")


def test_cli_exits_non_zero_with_one_line(tmp_path):
    _setup(tmp_path, [json.dumps(_row(0)), "{not json"])
    result = CliRunner().invoke(app, ["eval", "--model", "easyvqa-majority", "--tasks", "bad_data", "--include",
                                      str(tmp_path / "tasks"), "--output", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "data.jsonl:2: invalid JSON (Expecting property name enclosed in double quotes at column 2)" in \
        " ".join(result.output.split())


def test_dataset_rows_convert_in_chunks_and_equal_to_list(monkeypatch):
    """Task data is read as rows a chunk at a time (a 200k-row task never holds every row as a
    dict at once); every way of reading it gives what ``to_list()`` gives, plus ``__base_dir__``."""
    import datasets

    from mmbench.tasks.rows import DatasetRows

    monkeypatch.setattr(DatasetRows, "CHUNK", 4)
    ds = datasets.Dataset.from_dict({"id": [str(i) for i in range(10)], "answers": [[f"a{i}", "b"] for i in range(10)]})
    expected = [dict(r, __base_dir__="/d") for r in ds.to_list()]
    rows = DatasetRows(ds, base_dir="/d")
    converted = []
    real_rows = DatasetRows._rows
    monkeypatch.setattr(DatasetRows, "_rows", lambda self, a, b: converted.append(b - a) or real_rows(self, a, b))
    assert list(rows) == expected and converted == [4, 4, 2]
    assert len(rows) == 10 and rows[0] == expected[0] and rows[-1] == expected[-1]
    assert list(rows[3:7]) == expected[3:7] and list(rows[8:20]) == expected[8:] and list(rows[5:2]) == []
    assert rows[::3] == expected[::3]
    with pytest.raises(IndexError):
        rows[10]
    assert list(DatasetRows(ds))[0] == ds.to_list()[0]  # no base_dir: rows as they are
