"""`mmbench pin` writes a hub dataset's commit into a task file and keeps the rest of the file."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import MMBenchError
from mmbench.pin import pin_task_file
from mmbench.tasks.config import load_task_config

REPO = Path(__file__).resolve().parents[1]
SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, sha=SHA, error=None):
        self.sha, self.error, self.asked = sha, error, []

    def dataset_info(self, repo_id):
        self.asked.append(repo_id)
        if self.error:
            raise self.error
        return SimpleNamespace(sha=self.sha)


def test_pins_an_unpinned_builtin_task_and_keeps_its_comments(tmp_path):
    path = tmp_path / "cifar10_test.yaml"
    shutil.copy(REPO / "tasks" / "zeroshot" / "cifar10_test.yaml", path)
    before = path.read_text()
    hub = FakeHub()
    assert pin_task_file(path, api=hub) == (SHA, None)
    after = path.read_text()
    assert hub.asked == [yaml.safe_load(before)["dataset"]["path"]]
    assert yaml.safe_load(after)["dataset"]["revision"] == SHA
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(changed) == 1 and len(before.splitlines()) == len(after.splitlines())
    assert load_task_config(path).dataset.revision == SHA


def test_a_pinned_task_moves_only_with_force(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(f'name: t\nfamily: vqa\ndataset:\n  path: org/data\n  revision: "{"f" * 40}"  # pinned\n'
                    "  split: test\nmetrics: [exact-match]\n")
    with pytest.raises(MMBenchError, match="already pinned"):
        pin_task_file(path, api=FakeHub())
    assert pin_task_file(path, api=FakeHub(), force=True) == (SHA, "f" * 40)
    assert f'revision: "{SHA}"  # pinned' in path.read_text()


@pytest.mark.parametrize("dataset, message", [
    ("  path: json\n  data_files: a.jsonl\n  revision: null\n", "local files"),
    ("  loader: easyvqa-questions\n  revision: null\n", "not a hub task"),
])
def test_refuses_what_is_not_a_hub_dataset(tmp_path, dataset, message):
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nfamily: vqa\ndataset:\n" + dataset + "metrics: [exact-match]\n")
    with pytest.raises(MMBenchError, match=message):
        pin_task_file(path, api=FakeHub())


def test_hub_errors_and_bad_answers_are_one_line_and_leave_the_file(tmp_path):
    path = tmp_path / "t.yaml"
    text = "name: t\nfamily: vqa\ndataset:\n  path: org/gated\n  revision: null\nmetrics: [exact-match]\n"
    path.write_text(text)
    with pytest.raises(MMBenchError, match="cannot look up .*org/gated.*GatedRepoError: no access"):
        pin_task_file(path, api=FakeHub(error=type("GatedRepoError", (Exception,), {})("no access")))
    with pytest.raises(MMBenchError, match="not a commit sha"):
        pin_task_file(path, api=FakeHub(sha="main"))
    assert path.read_text() == text


def test_cli_reports_an_offline_hub_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nfamily: vqa\ndataset:\n  path: org/data\n  revision: null\nmetrics: [exact-match]\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(app, ["pin", str(path)])
    assert result.exit_code == 2
    assert "cannot look up the current commit of 'org/data'" in result.output
    assert "revision: null" in path.read_text()
