"""The registry: lazy entries, did-you-mean errors, entry points, task YAML and include folders."""

import textwrap

import pytest

from mmbench import catalog
from mmbench.catalog import METRICS, MODELS, TASKS, build_task, include_tasks
from mmbench.metrics.registry import metric_spec
from mmbench.errors import DataError, MMBenchError, UnknownNameError
from mmbench.registry import Registry, import_string
from mmbench.tasks.config import load_task_config


def test_unknown_name_suggests_close_matches():
    reg = Registry("task")
    for name in ("coco_caption", "coco_retrieval", "flickr30k_caption"):
        reg.register(name, "x:y")
    with pytest.raises(UnknownNameError) as info:
        reg.get("coco_captoin")
    message = str(info.value)
    assert "coco_caption" in message and "Did you mean" in message
    assert message.split("Did you mean: ")[1].startswith("coco_caption")  # closest first


def test_registering_a_name_twice_is_an_error():
    reg = Registry("model")
    reg.register("a", "x:y", source="one")
    with pytest.raises(MMBenchError, match="registered twice"):
        reg.register("a", "x:z", source="two")


def test_lazy_entries_do_not_import_until_used():
    reg = Registry("metric")
    reg.register("m", "mmbench_no_such_module:fn")
    assert reg.names() == ["m"]  # listing does not import
    with pytest.raises(MMBenchError, match="cannot import 'mmbench_no_such_module'"):
        reg.get("m")


def test_import_string_errors_name_the_target():
    with pytest.raises(MMBenchError, match="has no attribute"):
        import_string("mmbench.types:NoSuchThing")
    with pytest.raises(MMBenchError, match="module:attr"):
        import_string("mmbench.types")


def test_builtins_are_registered():
    assert "easyvqa_caption" in TASKS.names()
    assert "easyvqa-captioner" in MODELS.names()
    assert "coco-caption" in METRICS.names()


def test_entry_points_from_an_installed_plugin_package():
    # tests/plugin_pkg is pip-installed by the README's test command
    pytest.importorskip("mmbench_example_plugin", reason="install tests/plugin_pkg (README test command)")
    assert "example-echo" in MODELS.names()
    assert MODELS.entry("example-echo").source.startswith("entry point mmbench-example-plugin")
    spec = metric_spec("example-length")  # a full MetricSpec, with a per-sample meta field
    assert spec.sample_fields == {"answer_types": "answer_type"}
    assert spec.fn(["a b c", "d"], [["x"], ["y"]], answer_types=[None, None]).corpus == {"mean_length": 2.0}
    bare = metric_spec("example-bare-length")  # a bare function: wrapped, outputs never ranked
    assert bare.fn(["a b c", "d"], [["x"], ["y"]]).corpus == {"mean_length": 2.0}
    assert bare.output("mean_length").higher_is_better is None
    task = build_task("example_caption")
    assert task.family == "captioning" and task.config.metrics == ("example-length",)


def test_include_folder_adds_tasks_and_overrides(tmp_path):
    (tmp_path / "_base.yaml").write_text(textwrap.dedent("""
        family: captioning
        dataset: {loader: "mmbench.tasks.datasets.easyvqa:caption_rows", split: test}
        generation: {max_new_tokens: 7}
        metrics: [coco-caption]
    """))
    (tmp_path / "variant.yaml").write_text("include: _base.yaml\nname: my_variant\nprompt: Caption it.\n")
    names = include_tasks(tmp_path)
    assert names == ["my_variant"]  # files starting with _ are bases, not tasks
    task = build_task("my_variant")
    assert task.config.generation.max_new_tokens == 7
    assert task.config.prompt == "Caption it."
    assert task.config.dataset.split == "test"


def test_task_yaml_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nfamily: captioning\ndataset: {path: json, data_files: x.jsonl}\nmetrcs: [x]\n")
    with pytest.raises(DataError, match=r"bad.yaml.*unknown keys \['metrcs'\]"):
        load_task_config(bad)
    cyc = tmp_path / "a.yaml"
    cyc.write_text("include: a.yaml\nname: a\n")
    with pytest.raises(MMBenchError, match="include cycle"):
        load_task_config(cyc)
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(DataError, match="invalid YAML"):  # safe_load refuses python tags
        load_task_config(hostile)


def test_builtin_task_dir_exists():
    assert (catalog.builtin_task_dir() / "captioning" / "easyvqa_caption.yaml").is_file()
