"""A broken plugin does not break everything (issue #16 §8).

A throwaway distribution (a ``*.dist-info`` with ``entry_points.txt``) on ``sys.path`` declares
a task folder, a model and a metric from a module that does not exist, as when a plugin
package was removed but its metadata stayed.  The registries are fresh for each test
(``_fresh``), so the installed example plugin is left alone.
"""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from mmbench.catalog import MODELS, TASKS, build_task, list_registered
from mmbench.cli import app
from mmbench.errors import MMBenchError, UnknownNameError
from mmbench.metrics.registry import METRICS
from mmbench import registry as registry_module


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    dist = tmp_path / "site" / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [mmbench.tasks]
        broken-tasks = gone_plugin_module:TASK_DIR
        [mmbench.models]
        broken-echo = gone_plugin_module:Echo
        [mmbench.metrics]
        broken-length = gone_plugin_module:LENGTH
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(registry_module, "_WARNED", set())
    for reg in (TASKS, MODELS, METRICS):  # read entry points again, as a fresh process would
        # built-in models and metrics are registered at import; built-in tasks come back through the loader
        monkeypatch.setattr(reg, "_entries", {} if reg is TASKS else
                            {k: v for k, v in reg._entries.items() if v.source == "builtin"})
        monkeypatch.setattr(reg, "_loaded", False)
        monkeypatch.setattr(reg, "broken", {})
    return "broken-tasks (plugin broken-plugin)"


def test_builtins_still_build_and_the_plugin_is_warned_once(broken_plugin, caplog):
    """Before: every command failed at start: `cannot load task plugin entry point ...: No module named ...`."""
    with caplog.at_level(logging.WARNING, logger="mmbench.registry"):
        task = build_task("easyvqa_vqa")
        assert task.family == "vqa" and "easyvqa-majority" in MODELS.names() and "coco-caption" in METRICS.names()
        MODELS.names(), METRICS.names()
    warnings = [r.getMessage() for r in caplog.records if "broken-plugin" in r.getMessage()]
    assert warnings == ["mmbench: plugin broken-plugin cannot be loaded, so what it provides is unavailable (task "
                        "entry point broken-tasks: ModuleNotFoundError: No module named 'gone_plugin_module')"]


def test_asking_for_the_plugin_fails_naming_it(broken_plugin):
    with pytest.raises(MMBenchError, match=r"^'broken-tasks' is from a plugin that cannot be loaded \(entry point "
                                           r"broken-tasks \(plugin broken-plugin\)\): ModuleNotFoundError: No module "
                                           r"named 'gone_plugin_module'$"):
        build_task("broken-tasks")
    with pytest.raises(UnknownNameError, match=r"unknown task 'broken_caption'\..* It may come from broken-tasks "
                                               r"\(plugin broken-plugin\), which cannot be loaded: "
                                               r"ModuleNotFoundError: No module named 'gone_plugin_module'\."):
        build_task("broken_caption")
    with pytest.raises(MMBenchError, match=r"'broken-echo' is from a plugin that cannot be loaded .*broken-plugin"):
        MODELS.get("broken-echo")
    with pytest.raises(MMBenchError, match=r"'broken-length' is from a plugin that cannot be loaded .*broken-plugin"):
        METRICS.get("broken-length")


def test_list_shows_broken_plugins(broken_plugin):
    rows = {name: (description, source) for name, description, source in list_registered("tasks")}
    assert rows["broken-tasks"][0] == ("broken plugin: ModuleNotFoundError: No module named 'gone_plugin_module'")
    assert "easyvqa_vqa" in rows
    models = {name: description for name, description, _ in list_registered("models")}
    assert models["broken-echo"].startswith("broken plugin: ModuleNotFoundError")
    metrics = {name: description for name, description, _ in list_registered("metrics")}
    assert metrics["broken-length"].startswith("unavailable: 'broken-length' is from a plugin that cannot be loaded")
    result = CliRunner().invoke(app, ["list", "tasks"])
    assert result.exit_code == 0 and "broken-tasks" in result.output and "broken plugin" in result.output


def test_a_builtin_task_runs_from_the_cli(broken_plugin, tmp_path):
    result = CliRunner().invoke(app, ["eval", "--model", "easyvqa-majority", "--tasks", "easyvqa_vqa", "--limit", "3",
                                      "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "results.json").is_file()
