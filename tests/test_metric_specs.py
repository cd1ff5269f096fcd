"""Metric specs: every metric describes itself (inputs, directions, primary, version) in one place,
the runner records directions and the primary metric in results.json, and a plugin metric has
the same power as a built-in one (per-sample meta fields, options, directions on the board)."""

import json

import pytest

from mmbench.catalog import build_task, include_tasks
from mmbench.errors import DataError, MMBenchError, UnknownNameError
from mmbench.leaderboard import make_board
from mmbench.metrics.dispatch import describe_outputs
from mmbench.metrics.registry import METRICS, metric_spec
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.results import RunResult
from mmbench.runner import evaluate
from mmbench.types import MetricValues

plugin = pytest.importorskip("mmbench_example_plugin", reason="install tests/plugin_pkg (README test command)")


@pytest.mark.parametrize("name", [n for n in METRICS.names() if METRICS.entry(n).source == "builtin"])
def test_builtin_specs_are_complete(name):
    spec = metric_spec(name)
    assert spec.name == name and spec.version and spec.description
    assert spec.output(spec.primary) is not None and spec.output(spec.primary).higher_is_better is not None
    assert spec.option_names() is not None  # every built-in lists the options a task may set


def test_directions_come_from_the_spec_not_the_name():
    specs = [metric_spec("retrieval-recall"), metric_spec("answer-consistency")]
    info, primary, warnings = describe_outputs(
        specs, ["t2i_R@1", "i2t_R@5", "t2i_mean_rank", "i2t_median_rank", "consistency", "CS(2)", "n_groups",
                "mystery"])
    assert primary == "t2i_R@1" and info["t2i_R@1"] == {"metric": "retrieval-recall", "higher_is_better": True,
                                                        "aggregation": "mean"}
    assert info["t2i_mean_rank"]["higher_is_better"] is False and info["i2t_median_rank"]["higher_is_better"] is False
    assert info["CS(2)"]["aggregation"] == "corpus" and info["n_groups"]["higher_is_better"] is None
    # a key no spec declares is recorded without a direction, and said so
    assert info["mystery"]["higher_is_better"] is None and "mystery" in warnings[0]


def test_a_spec_checks_itself():
    with pytest.raises(ValueError, match="primary output 'x'"):
        MetricSpec(name="m", fn=lambda p, r: None, version="1", outputs=(Output("y"),), primary="x")
    with pytest.raises(ValueError, match="aggregation"):
        Output("y", aggregation="median-ish")
    spec = metric_spec("coco-caption")
    assert spec.option_names() == {"spice"}  # tokenizer and meteor are run options, not task options


def test_unknown_metric_and_option_fail_before_anything_loads(tmp_path):
    base = ("family: captioning\ndataset: {loader: \"mmbench.tasks.datasets.easyvqa:caption_rows\", split: test}\n")
    (tmp_path / "a.yaml").write_text("name: spec_bad_name\n" + base + "metrics: [coco-captions]\n")
    (tmp_path / "b.yaml").write_text("name: spec_bad_option\n" + base + "metrics: [coco-caption]\n"
                                     "metric_options: {coco-caption: {tokeniser: ptb}}\n")
    (tmp_path / "c.yaml").write_text("name: spec_stray_option\n" + base + "metrics: [coco-caption]\n"
                                     "metric_options: {clipscore: {scorer: x}}\n")
    include_tasks(tmp_path)
    with pytest.raises(UnknownNameError, match=r"a\.yaml:4, field 'metrics': unknown metric 'coco-captions'\. Did you mean: coco-caption[,?]"):
        build_task("spec_bad_name")
    with pytest.raises(DataError, match=r"unknown option\(s\) \['tokeniser'\] for metric 'coco-caption'"):
        build_task("spec_bad_option")
    with pytest.raises(DataError, match=r"metric_options for metric\(s\) \['clipscore'\]"):
        build_task("spec_stray_option")


def test_plugin_metric_gets_meta_fields_and_its_direction_reaches_the_board(tmp_path):
    """The example plugin's spec asks for each question's answer type and says shorter is better:
    results.json records that, and the leaderboard ranks the shorter-answering model first."""
    runs = {}
    for model in ("example-echo", "easyvqa-majority"):  # 7-word captions vs one-word answers
        runs[model] = evaluate(model=model, tasks=["example_vqa"], limit=40, output=str(tmp_path / model))
    task = runs["easyvqa-majority"]["tasks"]["example_vqa"]
    assert task["metric_info"]["mean_length"] == {"metric": "example-length", "higher_is_better": False,
                                                  "aggregation": "mean"}
    assert {"mean_length/yes/no", "mean_length/shape", "mean_length/color"} <= set(task["metrics"])
    assert task["metric_info"]["exact_match"]["higher_is_better"] is True
    assert task["primary_metric"] == "mean_length"
    assert task["fingerprint"]["metric_versions"] == {"example-length": "1", "exact-match": "1"}
    # the per-type values are the plugin's arithmetic over the run's own predictions
    lines = [json.loads(x) for x in (tmp_path / "easyvqa-majority" / "predictions" / "example_vqa.jsonl")
             .read_text().splitlines()]
    yes_no = [len(x["prediction"].split()) for x in lines if x["meta"]["answer_type"] == "yes/no"]
    assert task["metrics"]["mean_length/yes/no"] == pytest.approx(sum(yes_no) / len(yes_no))

    board = make_board([tmp_path / m for m in runs], n_boot=200)
    group = board["tasks"][0]["groups"][0]
    assert group["primary_metric"] == "mean_length" and group["higher_is_better"]["mean_length"] is False
    values = [row["metrics"]["mean_length"]["value"] for row in group["rows"]]
    assert [row["model"] for row in group["rows"]] == ["easyvqa-majority", "example-echo"]
    assert values == sorted(values) and values[0] < values[-1]  # lower is better: ascending


def test_bare_function_plugin_metric_is_reported_never_ranked(tmp_path):
    (tmp_path / "t.yaml").write_text(
        "name: spec_bare\nfamily: captioning\n"
        "dataset: {loader: \"mmbench.tasks.datasets.easyvqa:caption_rows\", split: test}\n"
        "metrics: [example-bare-length]\n")
    include_tasks(tmp_path)
    res = evaluate(model="example-echo", tasks=["spec_bare"], limit=5, output=str(tmp_path / "run"))
    task = res["tasks"]["spec_bare"]
    assert task["metrics"]["mean_length"] > 0
    assert task["metric_info"]["mean_length"]["higher_is_better"] is None and task["primary_metric"] is None


def test_results_round_trip_and_schema_1_files_get_directions(tmp_path):
    res = evaluate(model="easyvqa-majority", tasks=["easyvqa_vqa"], limit=20, output=str(tmp_path / "run"))
    run = RunResult.load(tmp_path / "run")
    assert run.to_json() == res
    assert run.tasks["easyvqa_vqa"].higher_is_better("unanswered") is False
    # a schema-1 file (written before metric_info existed) is read with directions from the specs
    old = json.loads((tmp_path / "run" / "results.json").read_text())
    old["schema_version"] = 1
    for entry in old["tasks"].values():
        entry.pop("metric_info"), entry.pop("primary_metric")
    (tmp_path / "run" / "results.json").write_text(json.dumps(old))
    legacy = RunResult.load(tmp_path / "run").tasks["easyvqa_vqa"]
    assert legacy.primary_metric == "exact_match"
    assert legacy.metric_info == run.tasks["easyvqa_vqa"].metric_info


def test_metric_errors_name_the_metric():
    spec = MetricSpec(name="strict", fn=lambda p, r: (_ for _ in ()).throw(ValueError("bad input")), version="1",
                      outputs=(Output("x"),), primary="x")
    from mmbench.metrics.dispatch import compute_metrics
    from mmbench.types import Sample

    with pytest.raises(MMBenchError, match="metric 'strict': bad input"):
        compute_metrics([(spec, {})], [Sample(id="a", references=("r",))], ["p"], {})
    ok = MetricSpec(name="ok", fn=lambda p, r: MetricValues(corpus={"x": 1.0}), version="1",
                    outputs=(Output("x"),), primary="x")
    assert compute_metrics([(ok, {})], [Sample(id="a", references=("r",))], [None], {}).corpus == {"x": 1.0}
