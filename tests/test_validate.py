"""Pre-flight checks: `mmbench validate`, the runner's preflight, and unknown --model-arg keys
refused before a model loads (issue #16 section 3)."""

import json
import textwrap

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmbench.catalog import MODELS, build_task
from mmbench.cli import app
from mmbench.errors import MMBenchError, ModelLoadError
from mmbench.models.resolve import accepted_model_args, check_model_args, load_model, resolve_model
from mmbench.runner.preflight import preflight
from mmbench.validate import validate_tasks

runner = CliRunner()


def _vqa_tasks(root, **tasks):
    """A 3-row VQA JSONL (one good row, one undecodable image, one empty question) and one task
    file per keyword: ``name=(question column, prompt)``; returns the task folder."""
    data, folder = root / "data", root / "tasks"
    data.mkdir()
    folder.mkdir()
    Image.new("RGB", (8, 8), "red").save(data / "a.png")
    (data / "bad.png").write_bytes(b"not a png")
    rows = [{"qid": "q1", "image": "a.png", "question": "what colour?", "answer": "red"},
            {"qid": "q2", "image": "bad.png", "question": "what colour?", "answer": "red"},
            {"qid": "q3", "image": "a.png", "question": "", "answer": "red"}]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, (question, prompt) in tasks.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            name: {name}
            family: vqa
            dataset:
              path: json
              data_files: ../data/test.jsonl
              split: train
              columns: {{id: qid, question: {question}, answers: answer}}
            prompt: {json.dumps(prompt)}
            metrics: [exact-match]
            """))
    return folder


def _line_with(output: str, needle: str) -> str:
    lines = [line for line in output.splitlines() if needle in line]
    assert lines, f"{needle!r} not in:\n{output}"
    return lines[0]


def test_validate_prints_the_rendered_prompts_and_exits_0():
    result = runner.invoke(app, ["validate", "--tasks", "easyvqa_vqa", "--n", "2"])
    assert result.exit_code == 0, result.output
    assert "  data: loader " in result.output and "(split test)" in result.output
    assert "checked: 2 samples, 2 images decoded" in result.output
    assert "    what is the red shape?\n    Answer the question using a single word." in result.output
    assert "error" not in result.output


def test_a_placeholder_no_field_fills_names_the_file_and_line(tmp_path):
    folder = _vqa_tasks(tmp_path, typo_prompt=("question", "{questoin}\nAnswer briefly."))
    result = runner.invoke(app, ["validate", "--tasks", "typo_prompt", "--include", str(folder)])
    assert result.exit_code == 2, result.output
    line = _line_with(result.output, "{questoin}")
    assert f"error: {folder / 'typo_prompt.yaml'}:8, field 'prompt': placeholder {{questoin}} is not filled by a " \
           "vqa task (it fills {question}, {options})" in line


def test_a_column_the_data_lacks_is_named_with_the_columns_it_has(tmp_path):
    folder = _vqa_tasks(tmp_path, typo_column=("quetsion", "{question}"))
    result = runner.invoke(app, ["validate", "--tasks", "typo_column", "--include", str(folder)])
    assert result.exit_code == 2, result.output
    line = _line_with(result.output, "quetsion")
    assert f"error: {folder / 'typo_column.yaml'}:7, field 'dataset.columns.question': column 'quetsion' is not " \
           "in the data (its columns: answer, image, qid, question)" in line


def test_row_errors_and_undecodable_images_are_reported_per_sample(tmp_path):
    folder = _vqa_tasks(tmp_path, rows_bad=("question", "Q: {question}"))
    reports = validate_tasks("rows_bad", include=[str(folder)], n=3)
    (report,) = reports
    assert not report.ok and report.n_checked == 3 and report.n_images == 1
    data = str(tmp_path / "data" / "test.jsonl")
    assert report.problems == [
        f"{data}, row 2: task rows_bad: sample 'q3', field 'question': missing or empty question",
        f"task rows_bad: sample 'q2': {tmp_path / 'data' / 'bad.png'}, field 'image': cannot decode image "
        "(UnidentifiedImageError: not a known image format)"]
    assert report.prompts == [("q1", "Q: what colour?"), ("q2", "Q: what colour?")]
    assert report.data_source == f"json {data} (split train)"


def test_an_unknown_task_is_a_problem_not_a_crash(tmp_path):
    result = runner.invoke(app, ["validate", "--tasks", "easyvqa_vqa,no_such_task", "--n", "1"])
    assert result.exit_code == 2
    assert "unknown task 'no_such_task'" in result.output
    assert "what is the red shape?" in result.output  # the good task is still checked


def test_validate_with_a_model_checks_it_can_serve_the_task():
    reports = validate_tasks("easyvqa_retrieval", model="easyvqa-captioner", n=1)
    assert reports[0].problems == ["task easyvqa_retrieval (retrieval) needs a model that can embed; "
                                   "easyvqa-captioner (hf-captioner) serves: generate, score"]
    assert reports[0].notes == ["easyvqa-captioner (hf-captioner) applies no chat template: prompts shown as the "
                                "task renders them"]


def test_preflight_checks_the_model_without_its_weights(monkeypatch):
    from mmbench.models.hf import HFAdapter
    from mmbench.runner import EvalConfig

    def no_weights(*args, **kwargs):
        raise AssertionError("preflight loaded weights")

    monkeypatch.setattr(HFAdapter, "_load", no_weights)
    tasks = [build_task("easyvqa_caption"), build_task("easyvqa_retrieval")]
    preflight(tasks[:1], EvalConfig(model="easyvqa-captioner", compile=True))
    with pytest.raises(MMBenchError, match=r"^task easyvqa_retrieval \(retrieval\) needs a model that can embed; "
                                           r"easyvqa-captioner \(hf-captioner\) serves: generate, score$"):
        preflight(tasks, EvalConfig(model="easyvqa-captioner"))
    with pytest.raises(ModelLoadError, match="unknown --model-arg colour for 'easyvqa-captioner' "
                                             r"\(HFCaptioner\); it accepts: compile, path, peft_adapter, prefix_reuse$"):
        preflight(tasks[:1], EvalConfig(model="easyvqa-captioner", model_args={"colour": "red"}))


# ------------------------------------------------------------------ --model-arg


def test_an_unknown_model_arg_stops_eval_before_any_work(tmp_path):
    pytest.importorskip("mmbench_example_plugin", reason="install tests/plugin_pkg (README test command)")
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--model", "example-echo", "--model-arg", "colour=red", "--tasks",
                                 "easyvqa_caption", "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert "error: unknown --model-arg colour for 'example-echo' (EchoCaptioner); it accepts: delay, log" \
           in result.output
    assert not out.exists()


def test_model_args_an_option_sets_are_refused():
    with pytest.raises(ModelLoadError, match="--model-arg device is not a model argument: --device sets it"):
        check_model_args(resolve_model("easyvqa-majority"), {"device": "cuda"})
    with pytest.raises(ModelLoadError, match="--model-arg path is not a model argument: --model sets it"):
        load_model("ViT-B-32", adapter="open-clip", path="elsewhere")  # refused before open_clip is needed


def test_every_adapter_declares_what_it_accepts_and_registered_paths_still_load():
    for name in MODELS.names():
        accepted = accepted_model_args(MODELS.entry(name).load())
        assert accepted is not None and "name" in accepted, name
    assert accepted_model_args(MODELS.get("hf-vlm")) >= {"path", "compile", "peft_adapter"}
    assert {"pretrained", "path"} <= accepted_model_args(MODELS.get("open-clip"))
    assert {"base_url", "model", "concurrency"} <= accepted_model_args(MODELS.get("openai-chat"))
    model = load_model("easyvqa-majority")  # path= comes from the registry entry
    assert model.generate and model.name == "easyvqa-majority"
    table = MODELS.entry("easyvqa-majority").options["path"]
    assert load_model("easyvqa-question-only", path=table).name == "easyvqa-question-only"  # overridable


def test_a_factory_with_kwargs_is_not_checked():
    def factory(name, **kwargs):
        return None

    class Extra:
        extra_model_args = None

        def __init__(self, name, **kwargs):
            pass

    assert accepted_model_args(factory) is None and accepted_model_args(Extra) is None


@pytest.mark.slow
def test_hf_adapter_model_args_and_chat_template_preview(tmp_path):
    """A tiny local LLaVA: an unknown key fails before the weights load; validate --model shows
    exactly the prompt the loaded model renders."""
    from tests.fixtures.tiny_models import make_llava

    path = make_llava(tmp_path / "llava")
    result = runner.invoke(app, ["eval", "--model", path, "--model-arg", "colour=red", "--tasks", "easyvqa_vqa",
                                 "--output", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "unknown --model-arg colour for 'hf-vlm' (HFVisionLanguageModel); it accepts: compile" in result.output
    result = runner.invoke(app, ["validate", "--tasks", "easyvqa_vqa", "--model", path, "--n", "1"])
    assert result.exit_code == 0, result.output
    assert "chat template; no weights loaded" in result.output
    (report,) = validate_tasks("easyvqa_vqa", model=path, n=1)
    task = build_task("easyvqa_vqa")
    sample = task.load_samples(limit=1)[0]
    expected = load_model(path, device="cpu").render_prompt(task.build_request(sample, "llava").prompt, 1)
    assert report.prompts == [(sample.id, expected)] and expected.startswith("<s>USER: <image>")
