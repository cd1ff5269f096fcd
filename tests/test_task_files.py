"""Task YAML mistakes are one-line errors naming the file, the line and the key (issue #16 §3),
and a task file runs only registered code unless remote code is trusted (§7).

Every check goes through the path a user hits: ``include_tasks`` + ``build_task`` +
``load_samples`` (or ``mmbench eval`` through typer's CliRunner).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmbench import catalog
from mmbench.catalog import DATASET_LOADERS, FAMILIES, build_task, include_tasks
from mmbench.cli import app
from mmbench.errors import DataError
from mmbench.tasks.captioning import CaptioningTask
from mmbench.tasks.vqa import VQATask

VQA_FILE = """\
name: {name}
family: vqa
dataset:
  path: json
  data_files: data.jsonl
  split: train
  columns: {{id: qid, image: file, question: q, answers: a}}
metrics: [exact-match]
"""


def _data(folder: Path, rows: list[dict] | None = None) -> None:
    Image.new("RGB", (8, 8), "red").save(folder / "red.png")
    rows = rows if rows is not None else [{"qid": f"q{i}", "file": "red.png", "q": "what colour?", "a": "red"}
                                          for i in range(3)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _task(tmp_path: Path, text: str, name: str = "t_vqa", data: bool = True) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir(exist_ok=True)
    if data:
        _data(folder)
    (folder / f"{name}.yaml").write_text(text)
    return folder


def _error(tmp_path: Path, text: str, *, load: bool = False, **kw) -> str:
    folder = _task(tmp_path, text)
    with pytest.raises(DataError) as info:
        include_tasks(folder)
        task = build_task("t_vqa", **kw)
        if load:
            task.load_samples()
    message = str(info.value)
    assert "\n" not in message
    return message


def _line(text: str, key: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if re.match(rf"\s*{key}:", line))


BASE = VQA_FILE.format(name="t_vqa")


@pytest.mark.parametrize("key, value, message", [
    ("generation", "5", "expected a mapping like {max_new_tokens: 16}, got int 5"),
    ("metrics", "5", "expected a list of metric names, got int 5"),
    ("dataset", '"x"', "expected a mapping (loader: or path:, split, columns, ...), got str 'x'"),
    ("family", "7", "expected a string, got int 7"),
    ("prompt", "[a, b]", "expected a string, got list ['a', 'b']"),
    ("prompt_overrides", '"x"', "expected a mapping of model name -> prompt, got str 'x'"),
    ("include", "5", "expected a file or task name, or a list of them, got int 5"),
    ("metric_options", "[1]", "expected a mapping of metric name -> options, got list [1]"),
    ("version", "[1]", "expected an integer or a string, got list [1]"),
])
def test_top_level_types(tmp_path, key, value, message):
    text = re.sub(rf"^{key}:.*\n", "", BASE, flags=re.MULTILINE) if key in ("family", "metrics") else BASE
    if key == "dataset":
        text = "name: t_vqa\nfamily: vqa\nmetrics: [exact-match]\n"
    text += f"{key}: {value}\n"
    err = _error(tmp_path, text)
    path = tmp_path / "tasks" / "t_vqa.yaml"
    assert err == f"{path}:{_line(text, key)}, field '{key}': {message}"


@pytest.mark.parametrize("extra, field, message", [
    ("generation: {max_new_tokens: many}", "generation.max_new_tokens", "expected a positive integer, got str 'many'"),
    ("generation: {max_new_tokens: 0}", "generation.max_new_tokens", "expected a positive integer, got 0"),
    ("generation: {do_sample: 1}", "generation.do_sample", "expected true or false, got int 1"),
    ("prompt_overrides: {m: 5}", "prompt_overrides.m", "expected a string, got int 5"),
    ("metric_options: {exact-match: 5}", "metric_options.exact-match", "expected a mapping of options, got int 5"),
])
def test_nested_types(tmp_path, extra, field, message):
    err = _error(tmp_path, BASE + extra + "\n")
    assert err.endswith(f"t_vqa.yaml:{BASE.count(chr(10)) + 1}, field '{field}': {message}"), err


def test_dataset_field_types(tmp_path):
    err = _error(tmp_path, BASE.replace("  columns: {id: qid, image: file, question: q, answers: a}",
                                        "  columns: [qid, file]"))
    assert err.endswith("t_vqa.yaml:7, field 'dataset.columns': expected a mapping of field -> dataset column, "
                        "like {id: question_id}, got list ['qid', 'file']"), err
    err = _error(tmp_path, BASE.replace("split: train", "split: 3"))
    assert err.endswith("t_vqa.yaml:6, field 'dataset.split': expected a string, got int 3"), err
    err = _error(tmp_path, BASE.replace("id: qid", "id: 7"))
    assert err.endswith("t_vqa.yaml:7, field 'dataset.columns.id': expected a string, got int 7"), err


def test_family_checks_from_the_yaml_alone(tmp_path):
    """A columns key the family never reads and a prompt placeholder it never fills fail at build time."""
    err = _error(tmp_path, BASE.replace("answers: a", "answer: a"))
    assert "t_vqa.yaml:7, field 'dataset.columns': unknown field(s) ['answer']: a vqa task reads" in err
    err = _error(tmp_path, BASE + 'prompt: "{questoin}\\nAnswer in one word."\n')
    assert err.endswith("t_vqa.yaml:9, field 'prompt': placeholder {questoin} is not filled by a vqa task (it "
                        "fills {question}, {options}); write a literal brace as {{ or }}"), err
    err = _error(tmp_path, BASE + 'prompt: "{question"\n')
    assert "t_vqa.yaml:9, field 'prompt': malformed prompt template" in err


def test_unknown_family_names_the_file(tmp_path):
    err = _error(tmp_path, BASE.replace("family: vqa", "family: vqqa"))
    assert re.search(r"t_vqa.yaml:2, field 'family': unknown task family 'vqqa'. Did you mean: vqa", err), err


def test_mapped_column_missing_from_the_data_fails_the_load(tmp_path):
    """Before: every sample failed ('missing or empty question') and the run exited 0."""
    err = _error(tmp_path, BASE.replace("question: q", "question: questoin"), load=True)
    assert err.endswith("t_vqa.yaml:7, field 'dataset.columns.question': column 'questoin' is not in the data "
                        "(its columns: a, file, q, qid)"), err


def test_include_a_builtin_task_by_name(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "short.yaml").write_text("include: easyvqa_vqa\nname: easyvqa_short\ngeneration: {max_new_tokens: 2}\n")
    assert include_tasks(folder) == ["easyvqa_short"]
    task, builtin = build_task("easyvqa_short"), build_task("easyvqa_vqa")
    assert isinstance(task, VQATask) and task.config.generation.max_new_tokens == 2
    assert task.config.dataset.loader == builtin.config.dataset.loader == "easyvqa-questions"
    assert task.config.prompt == builtin.config.prompt
    assert [s.id for s in task.load_samples(limit=2)] == ["test-0", "test-1"]
    (folder / "short.yaml").write_text("include: easyvqa_vqaa\nname: easyvqa_short\n")
    with pytest.raises(DataError, match=r"short.yaml:1, field 'include': 'easyvqa_vqaa' is neither a file next "
                                        r"to the task file nor a built-in task \(built-in tasks: .*easyvqa_vqa"):
        include_tasks(folder)


def test_two_files_with_one_task_name_in_a_folder(tmp_path):
    """Before: the last file silently won."""
    folder = _task(tmp_path, BASE)
    (folder / "zz_copy.yaml").write_text(BASE)
    with pytest.raises(DataError) as info:
        include_tasks(folder)
    assert str(info.value) == (f"{folder / 'zz_copy.yaml'}:1, field 'name': task 't_vqa' is defined twice, here "
                               f"and in {folder / 't_vqa.yaml'}:1")


# ------------------------------------------------------------------ §7 no code runs from data
LOADER_FILE = """\
name: t_loader
family: captioning
dataset:
  loader: {loader}
  split: test
  loader_kwargs: {{}}
metrics: [coco-caption]
"""


def test_registered_loaders_and_builtin_files_use_them():
    assert {"easyvqa-captions", "easyvqa-retrieval", "easyvqa-questions", "easyvqa-consistency",
            "vqa-rephrasings"} <= set(DATASET_LOADERS.names())
    for name in ("easyvqa_caption", "easyvqa_vqa", "easyvqa_retrieval", "easyvqa_consistency", "vqa_rephrasings_val"):
        assert ":" not in build_task(name).config.dataset.loader


def test_import_string_loader_needs_trust(tmp_path, monkeypatch):
    """Before: `loader: 'torch.hub:load'` + loader_kwargs ran any hubconf.py, with no --trust-remote-code."""
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "hub.yaml").write_text(LOADER_FILE.format(name="t_loader", loader='"torch.hub:load"'))
    include_tasks(folder)
    with pytest.raises(DataError) as info:
        build_task("t_loader")
    assert str(info.value).startswith(
        f"{folder / 'hub.yaml'}:4, field 'dataset.loader': 'torch.hub:load' is an import string, not a registered "
        "dataset loader: running code named by a task file needs --trust-remote-code (trust_remote_code=True), "
        "or register it (entry-point group 'mmbench.dataset_loaders'; registered: ")
    # with trust the import string is imported (a harmless module function here)
    monkeypatch.setattr("mmbench.tasks.datasets.easyvqa.custom_rows",
                        lambda split: [{"image_id": "a", "image": "x.png", "references": ["r"]}], raising=False)
    (folder / "hub.yaml").write_text(LOADER_FILE.format(loader='"mmbench.tasks.datasets.easyvqa:custom_rows"'))
    include_tasks(folder)
    with pytest.raises(DataError, match="needs --trust-remote-code"):
        build_task("t_loader")
    task = build_task("t_loader", trust_remote_code=True)
    assert [s.id for s in task.load_samples()] == ["a"]


def test_registered_target_string_and_short_name_both_work(tmp_path):
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "a.yaml").write_text(LOADER_FILE.format(loader='"mmbench.tasks.datasets.easyvqa:caption_rows"')
                                   .replace("t_loader", "t_target"))
    (folder / "b.yaml").write_text(LOADER_FILE.format(loader="easyvqa-captions").replace("t_loader", "t_short"))
    include_tasks(folder)
    a, b = build_task("t_target").load_samples(limit=2), build_task("t_short").load_samples(limit=2)
    assert a == b and a[0].references[0].startswith("a ")


def test_class_resolves_through_families_only(tmp_path):
    folder = tmp_path / "cls"
    folder.mkdir()
    text = LOADER_FILE.format(loader="easyvqa-captions").replace("family: captioning", "class: CLS")
    (folder / "c.yaml").write_text(text.replace("CLS", "captioning"))
    include_tasks(folder)
    assert isinstance(build_task("t_loader"), CaptioningTask)
    (folder / "c.yaml").write_text(text.replace("CLS", '"mmbench.tasks.captioning:CaptioningTask"'))
    include_tasks(folder)
    assert isinstance(build_task("t_loader"), CaptioningTask)  # the target of a registered family
    (folder / "c.yaml").write_text(text.replace("CLS", '"collections:OrderedDict"'))
    include_tasks(folder)
    with pytest.raises(DataError, match=r"c.yaml:2, field 'class': 'collections:OrderedDict' is an import "
                                        r"string, not a registered task family"):
        build_task("t_loader")
    assert "vqa" in FAMILIES.names()


def test_cli_refuses_an_import_string_loader(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "hub.yaml").write_text(LOADER_FILE.format(loader='"torch.hub:load"'))
    result = CliRunner().invoke(app, ["eval", "--model", "easyvqa-majority", "--tasks", "t_loader", "--include",
                                      str(folder), "--output", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "hub.yaml:4, field 'dataset.loader': 'torch.hub:load' is an import string" in " ".join(result.output.split())


def test_catalog_reexports_builtin_task_dir():
    assert (catalog.builtin_task_dir() / "vqa" / "easyvqa_vqa.yaml").is_file()


def test_task_image_helper(tmp_path):
    """#10: one image helper for the three families (missing cell, bad cell, relative path)."""
    folder = _task(tmp_path, BASE)
    include_tasks(folder)
    task = build_task("t_vqa")
    ref = task.image({"file": "red.png", "__base_dir__": str(folder)}, "q1")
    assert ref.path == str(folder / "red.png")
    with pytest.raises(DataError, match=r"^sample 'q1', field 'file': missing image$"):
        task.image({}, "q1")
    with pytest.raises(DataError, match=r"^sample 'q1', field 'file': unsupported image value of type int$"):
        task.image({"file": 3}, "q1")
    sample = task.row_to_sample(0, {"qid": "q1", "file": {"bytes": None, "path": None}, "q": "x", "a": "y"})
    assert sample.error == "sample 'q1', field 'file': image cell has neither bytes nor path"


def test_docs_have_a_security_paragraph():
    root = Path(__file__).resolve().parent.parent
    assert "--trust-remote-code" in (root / "docs" / "task-files.md").read_text()
    assert "### Security" in (root / "README.md").read_text()
