"""What a run tells a user and a cluster job (issue #16 §5, §9): exit status, every failure with its
traceback in the run folder, plain progress lines in logs, cached runs, reused output folders,
results kept when a later task breaks, and the image pixel limit."""

import json
import re

from typer.testing import CliRunner

from mmbench.catalog import MODELS
from mmbench.cli import app
from mmbench.models.base import ModelAdapter
from tests.helpers import make_caption_task, read_jsonl

runner = CliRunner()


class AlwaysBroken(ModelAdapter):
    """A new adapter with a bug: every batch raises."""

    adapter = "test-always-broken"

    def __init__(self, name, **kw):
        super().__init__(name, device="cpu")

    def _generate_batch(self, requests, images):
        raise RuntimeError("tensor shapes (3, 4) and (5, 6) do not match")


MODELS.register("test-always-broken", AlwaysBroken, replace=True)


def _eval(*args: str):
    return runner.invoke(app, ["eval", *args])


def test_a_task_where_every_sample_failed_exits_1_with_everything_written(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", n=3)
    out = tmp_path / "run"
    result = _eval("--model", "test-always-broken", "--tasks", "tiny_caption", "--include", str(tasks),
                   "--output", str(out), "--debug")
    assert result.exit_code == 1, result.output
    assert "every sample failed in 1 task(s): test-always-broken on tiny_caption" in result.output
    res = json.loads((out / "results.json").read_text())
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == task["n_samples"] == 3 and task["failures_file"] == "failures/tiny_caption.jsonl"
    failures = read_jsonl(out / task["failures_file"])
    assert [f["id"] for f in failures] == ["img0", "img1", "img2"]
    assert all("RuntimeError: tensor shapes" in f["error"] for f in failures)
    assert all(f["traceback"].startswith("Traceback") and "_generate_batch" in f["traceback"] for f in failures)
    assert len(read_jsonl(out / "predictions" / "tiny_caption.jsonl")) == 3
    # --debug shows the first traceback, not just the one-line error
    assert "first traceback (img" in result.output and 'in _generate_batch' in result.output


def test_data_errors_are_listed_without_tracebacks_and_a_partial_run_exits_0(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", n=3, bad_rows=True)
    out = tmp_path / "run"
    result = _eval("--model", "example-echo", "--tasks", "tiny_caption", "--include", str(tasks),
                   "--output", str(out))
    assert result.exit_code == 0, result.output
    failures = {f["id"]: f for f in read_jsonl(out / "failures" / "tiny_caption.jsonl")}
    assert set(failures) == {"no_file", "no_refs"} and failures["no_file"]["traceback"] is None
    assert f"all 2 failures: {out}/failures/tiny_caption.jsonl" in result.output.replace("\n", "")


def test_logs_get_plain_progress_lines_and_a_cached_run_says_so(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", n=4)
    args = ["--model", "example-echo", "--tasks", "tiny_caption", "--include", str(tasks)]
    first = _eval(*args, "--output", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output
    # not a terminal (CliRunner, | tee, a scheduler's log): timestamped lines as work happens
    assert re.search(r"^\[\d\d:\d\d:\d\d\] tiny_caption \(example-echo\): 0/4$", first.output, re.M)
    assert re.search(r"^\[\d\d:\d\d:\d\d\] tiny_caption \(example-echo\): 4/4 \([\d.]+/s\)$", first.output, re.M)
    second = _eval(*args, "--output", str(tmp_path / "b"))
    text = " ".join(second.output.split())  # the table caption wraps at the runner's width
    assert second.exit_code == 0 and "all from the prediction cache (no model time)" in text
    assert "None samples/s" not in text


def test_reusing_an_output_folder_moves_the_earlier_run_aside(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", n=2)
    make_caption_task(tmp_path / "other", metric="example-length", n=2, name="other_caption")
    out = tmp_path / "run"
    both = ["--include", str(tasks), "--include", str(tmp_path / "other" / "tasks"), "--output", str(out)]
    assert _eval("--model", "example-echo", "--tasks", "tiny_caption,other_caption", *both).exit_code == 0
    (out / "my-notes.txt").write_text("mine")
    result = _eval("--model", "example-echo", "--tasks", "tiny_caption", *both)
    assert result.exit_code == 0, result.output
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.previous-")]
    assert len(moved) == 1 and f"an earlier run in {out} was moved to {moved[0]}" in result.output.replace("\n", "")
    assert sorted(p.name for p in (moved[0] / "predictions").iterdir()) == ["other_caption.jsonl",
                                                                            "tiny_caption.jsonl"]
    # no stale predictions of the other task beside the new run; the user's own file stays
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["tiny_caption.jsonl"]
    assert (out / "my-notes.txt").read_text() == "mine"
    assert list(json.loads((out / "results.json").read_text())["tasks"]) == ["tiny_caption"]


def test_results_of_finished_tasks_survive_a_later_task_error(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", n=2)
    (tasks / "broken.yaml").write_text(
        "name: broken_task\nfamily: captioning\n"
        "dataset: {path: json, data_files: ../data/absent-*.jsonl, split: train}\nmetrics: [example-length]\n")
    out = tmp_path / "run"
    result = _eval("--model", "example-echo", "--tasks", "tiny_caption,broken_task", "--include", str(tasks),
                   "--output", str(out))
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    assert list(json.loads((out / "results.json").read_text())["tasks"]) == ["tiny_caption"]


def test_max_image_pixels_refuses_large_images_per_sample_and_enters_the_fingerprint(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", n=2)  # 32 x 32 PNGs
    out = tmp_path / "run"
    result = _eval("--model", "example-echo", "--tasks", "tiny_caption", "--include", str(tasks),
                   "--output", str(out), "--max-image-pixels", "1000")
    assert result.exit_code == 1, result.output  # both images refused: nothing succeeded
    failures = read_jsonl(out / "failures" / "tiny_caption.jsonl")
    assert all("1,024 pixels" in f["error"] and "1,000-pixel limit" in f["error"] for f in failures), failures
    fp = json.loads((out / "results.json").read_text())["tasks"]["tiny_caption"]["fingerprint"]
    assert fp["max_image_pixels"] == 1000
    bad = _eval("--model", "example-echo", "--tasks", "tiny_caption", "--include", str(tasks),
                "--output", str(tmp_path / "x"), "--max-image-pixels", "0")
    assert bad.exit_code == 2 and "--max-image-pixels must be a whole number of at least 1" in bad.output
