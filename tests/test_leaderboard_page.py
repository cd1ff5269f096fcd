"""Leaderboard page and exports (#14): failures never ranked, cached throughput, one number format per
column, CSV ranks, chart ticks and label placement, the summary across tasks, per-sample files, Hub files."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from mmbench.errors import MMBenchError
from mmbench.leaderboard import build_leaderboard, make_board
from mmbench.leaderboard.charts import log_ticks, nice_ticks, place_labels, scatter, text_width
from mmbench.leaderboard.cli import leaderboard_app
from mmbench.leaderboard.format import column_format
from mmbench.leaderboard.html import to_html
from mmbench.leaderboard.hub import export_hub, push_board
from mmbench.leaderboard.summary import family_summaries
from mmbench.leaderboard.tables import columns, table_cells, to_csv, to_json_obj, to_markdown
from tests.test_leaderboard import EVIL, _mutate, fake_run


def _rows(board):
    return board["tasks"][0]["groups"][0]["rows"]


def _failed(run, n_failed):
    def fn(d):
        d["tasks"]["t"]["n_failed"] = n_failed
    return _mutate(run, fn)


@pytest.fixture
def three(tmp_path):
    """good (1.0), partial (0.5, 1 of 20 failed), dead (every sample failed, its value is 1.0 anyway)."""
    fake_run(tmp_path, "good", [1.0] * 20)
    _failed(fake_run(tmp_path, "partial", [1.0, 0.0] * 10), 1)
    _failed(fake_run(tmp_path, "dead", [1.0] * 20), 20)
    return tmp_path


def test_a_run_whose_samples_all_failed_is_never_ranked(three):
    board = make_board([three], n_boot=200)
    rows = _rows(board)
    assert [(r["model"], r["rank"], r["rank_label"], r["ranked"]) for r in rows] == [
        ("good", 1, "1", True), ("partial", 2, "2", True), ("dead", None, "-", False)]
    assert rows[2]["unranked_reason"] == "no successful samples" and rows[2]["flags"] == ["all 20 samples failed"]
    assert rows[1]["flags"] == ["1 of 20 samples failed (scored as wrong)"]
    assert any("Not ranked: dead (no successful samples)" in n for n in board["tasks"][0]["groups"][0]["notes"])
    # every renderer: Markdown, CSV, JSON, HTML, terminal cells
    header, cells = table_cells(board["tasks"][0]["groups"][0])
    assert [c[0][0] for c in cells] == ["1", "2", "-"]
    assert "[all 20 samples failed]" in cells[2][1][0] and not any(best for _, best in cells[2])
    md = to_markdown(board)
    assert "| - | dead \\[all 20 samples failed\\]" in md
    lines = list(csv.DictReader(io.StringIO(to_csv(board))))
    assert [(r["rank"], r["ranked"], r["flags"]) for r in lines][2] == ("", "False", "all 20 samples failed")
    assert to_json_obj(board)["rows"][2]["rank"] is None
    page = to_html(board)
    assert re.search(r'<tr data-model="dead"[^>]*class="unranked"', page)
    assert 'title="not ranked: no successful samples"' in page


def test_csv_rank_is_a_number_and_the_tie_a_separate_column(tmp_path):
    fake_run(tmp_path, "a", [0.5, 0.6, 0.7])
    fake_run(tmp_path, "b", [0.5, 0.6, 0.7])
    text = to_csv(make_board([tmp_path], n_boot=200))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["rank"], r["tied"]) for r in rows] == [("1", "True"), ("1", "True")]
    assert "rank_label" not in rows[0] and "'=" not in text


def test_cached_runs_keep_their_point_and_say_so(tmp_path):
    fake_run(tmp_path, "fast", [1.0, 0.0, 1.0])
    _mutate(fake_run(tmp_path, "cached", [1.0, 1.0, 0.0]),
            lambda d: d["tasks"]["t"].update(timing={"samples_per_s": None}, n_cached=3, n_computed=0))
    _mutate(fake_run(tmp_path, "partly", [0.0, 0.0, 1.0]),
            lambda d: d["tasks"]["t"].update(timing={"samples_per_s": 4.0}, n_cached=2, n_computed=1))
    board = make_board([tmp_path], n_boot=200)
    group = board["tasks"][0]["groups"][0]
    by = {r["model"]: r for r in group["rows"]}
    assert by["cached"]["throughput"] == "cached" and "served from the cache" in by["cached"]["flags"][0]
    assert by["partly"]["throughput"] == "partly cached" and "2 of 3 samples came from the cache" in \
        by["partly"]["flags"][0]
    header, cells = table_cells(group)
    col = header.index("samples/s")
    assert {c[1][0].split(" [")[0]: c[col][0] for c in cells} == {"fast": "10.0", "cached": "cached",
                                                                    "partly": "4.0*"}
    svg = scatter(group, lambda r: r["model"])
    assert svg.count("<circle") == 3 and 'stroke="#D55E00"' in svg and ">cached</text>" in svg


def test_one_number_format_per_column(tmp_path):
    fake_run(tmp_path, "big", [1871.0, 1871.0], metric="t2i_mean_rank")
    fake_run(tmp_path, "small", [1.3547, 1.3547], metric="t2i_mean_rank")
    group = make_board([tmp_path], n_boot=200)["tasks"][0]["groups"][0]
    header, cells = table_cells(group)
    col = header.index("t2i_mean_rank")
    values = [c[col][0].split(" [")[0] for c in cells]
    assert values == ["1.4", "1,871.0"]  # lower is better: the small one ranks first; same decimals
    assert column_format([0.25, 0.5])(0.5) == "0.5000" and column_format([3.0, 12.0])(3.0) == "3"


def test_first_click_sorts_best_first_in_the_recorded_direction(tmp_path):
    fake_run(tmp_path / "a", "m1", [1.0, 2.0], metric="t2i_mean_rank")
    fake_run(tmp_path / "a", "m2", [3.0, 2.0], metric="t2i_mean_rank")
    group = make_board([tmp_path / "a"], n_boot=200)["tasks"][0]["groups"][0]
    cols = {c["label"]: c["first"] for c in columns(group)}
    assert cols["t2i_mean_rank"] == "asc" and cols["rank"] == "asc" and cols["samples/s"] == "desc"
    page = to_html(make_board([tmp_path / "a"], n_boot=200))
    assert 'data-first="asc" class="stick stick-last" title="lower is better">t2i_mean_rank' in page


def test_groups_of_one_model_draw_no_chart(tmp_path):
    fake_run(tmp_path, "alone", [1.0, 0.5])
    page = to_html(make_board([tmp_path], n_boot=200))
    assert "<svg" not in page and "One model in this group" in page


# ------------------------------------------------------------------ charts

def test_ticks():
    assert nice_ticks(0.2273, 0.9443, 4) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 5.58) == [0, 2, 4, 6]
    assert log_ticks(100, 300000) == [100, 1000, 10000, 100000]
    assert log_ticks(30, 800) == [50, 100, 200, 500]


def test_scatter_has_ticks_on_both_axes(three):
    group = make_board([three], n_boot=200)["tasks"][0]["groups"][0]
    svg = scatter(group, lambda r: r["model"])
    ticks = re.findall(r'class="tick">([^<]+)</text>', svg)
    assert len(ticks) >= 4  # y ticks and x ticks, not just min and max


@pytest.mark.parametrize("seed", range(20))
def test_labels_never_overlap_and_stay_inside(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    points = [(float(x), float(y)) for x, y in zip(rng.uniform(60, 510, n), rng.uniform(30, 250, n))]
    points[1] = (points[0][0] + 3, points[0][1] + 2)  # two nearby points
    labels = [f"model-{'x' * int(rng.integers(3, 16))}-{i}" for i in range(n)]
    area = (2, 16, 518, 258)
    spots = place_labels(points, labels, area)
    boxes = []
    for (x, y, anchor, _), label in zip(spots, labels):
        w = text_width(label)
        x0 = x if anchor == "start" else x - w if anchor == "end" else x - w / 2
        boxes.append((x0, y - 10, x0 + w, y + 3))
    for b in boxes:
        assert area[0] <= b[0] and b[2] <= area[2] and area[1] <= b[1] and b[3] <= area[3]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (i, j)


# ------------------------------------------------------------------ summary

def _task_board(tmp_path, specs):
    """specs: {task: {model: scores}}, all of family vqa, each task its own fingerprint."""
    for task, models in specs.items():
        for model, scores in models.items():
            run = fake_run(tmp_path / task, model, scores, prompt=task)

            def rename(d, task=task):
                d["tasks"][task] = d["tasks"].pop("t")
                d["tasks"][task]["family"] = "vqa"
                d["tasks"][task]["metrics"] = {"accuracy": d["tasks"][task]["metrics"]["CIDEr-D"],
                                               "accuracy/yes/no": 0.5, "accuracy/number": 0.25}
                d["tasks"][task]["predictions"] = None
            _mutate(run, rename)
    return make_board([tmp_path / t for t in specs], n_boot=100)


def test_summary_across_tasks_ranks_within_groups_and_never_averages_values(tmp_path):
    board = _task_board(tmp_path, {"t1": {"a": [0.9], "b": [0.5]}, "t2": {"a": [0.2], "b": [0.8], "c": [0.1]},
                                   "t3": {"c": [1.0]}})
    (fam,) = family_summaries(board)
    assert [c["task"] for c in fam["columns"]] == ["t1", "t2"]  # t3 ranks one model: no column
    got = {m["model"]: (m["ranks"], m["mean_rank"], m["n_tasks"]) for m in fam["models"]}
    assert got == {"a": ([1, 2], 1.5, 2), "b": ([2, 1], 1.5, 2), "c": ([None, 3], 3.0, 2)}
    page = to_html(board)
    assert "Summary across tasks" in page and "accuracy by category" in page and "2 of 3" in page


# ------------------------------------------------------------------ per-sample files

def _chunk(path):
    text = path.read_text()
    m = re.fullmatch(r'mmbenchSamples\(("[^"]*"), (.*)\);\n', text, re.S)
    assert m, text[:200]
    return json.loads(m.group(1)), json.loads(m.group(2))


def test_sample_files_are_chunked_escaped_and_indexed(tmp_path, monkeypatch):
    from mmbench.leaderboard import samples

    monkeypatch.setattr(samples, "CHUNK", 2)
    a = fake_run(tmp_path / "runs", "a", [1.0, 0.0, 1.0])
    fake_run(tmp_path / "runs", EVIL, [0.0, 0.0, 1.0])
    lines = (a / "predictions" / "t.jsonl").read_text().splitlines()
    objs = [json.loads(x) for x in lines]
    objs[1].update(prediction="</script><script>alert(1)</script>", error="boom", scores={})
    (a / "predictions" / "t.jsonl").write_text("\n".join(json.dumps(o) for o in objs) + "\n")
    out = tmp_path / "lb"
    build_leaderboard([tmp_path / "runs"], out, n_boot=100, thumbnails=False)
    folder = out / "samples" / "g1"
    assert sorted(p.name for p in folder.iterdir()) == ["m0-0.js", "m0-1.js", "m0-idx.js", "m1-0.js", "m1-1.js",
                                                        "m1-idx.js", "s-idx.js", "s0.js", "s1.js"]
    key, shared = _chunk(folder / "s0.js")
    assert key == "g1/s0" and [s[0] for s in shared] == ["0", "1"]
    text = (folder / "m0-0.js").read_text()
    assert "</script" not in text and "<" not in text
    key, recs = _chunk(folder / "m0-0.js")
    assert recs[1]["p"] == "</script><script>alert(1)</script>" and recs[1]["e"] == "boom" and recs[1]["v"] == -1
    _, idx = _chunk(folder / "m0-idx.js")
    assert idx["right"] == [0, 2] and idx["failed"] == [1] and idx["asc"][-1] in (0, 2)
    page = (out / "index.html").read_text()
    assert 'id="samples-index"' in page and 'data-group="g1" data-row="0"' in page
    assert "no thumbnails" in page  # said, not silently missing


def test_page_csp_allows_only_its_own_folder():
    from mmbench.leaderboard.html import CSP

    assert "connect-src 'none'" in CSP and "script-src 'self' 'unsafe-inline'" in CSP and "http" not in CSP


# ------------------------------------------------------------------ Hub

def test_hub_export_writes_eval_results_and_a_dataset_card(three, tmp_path):
    board = make_board([three], n_boot=200)
    out = tmp_path / "hub"
    report = export_hub(board, out, repo="acme/board", dataset_ids={"t": "acme/data"})
    assert report["files"] == ["README.md", "leaderboard.csv", "leaderboard.json",
                               "models/good/.eval_results/t.yaml", "models/partial/.eval_results/t.yaml"]
    assert report["skipped"] == ["dead on t: not ranked (no successful samples)"]
    (entry,) = yaml.safe_load((out / "models/partial/.eval_results/t.yaml").read_text())
    assert entry["dataset"] == {"id": "acme/data", "task_id": "t", "revision": "abc"}
    assert entry["value"] == pytest.approx(0.5)
    assert entry["source"] == {"url": "https://huggingface.co/datasets/acme/board", "name": "mmbench leaderboard"}
    fp = board["tasks"][0]["groups"][0]["fingerprint_hash"]
    assert f"task fingerprint {fp}" in entry["notes"] and "95% CI [" in entry["notes"]
    assert "1 of 20 samples failed" in entry["notes"]
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["configs"][0]["data_files"][0]["path"] == "leaderboard.csv" and "acme/board" in card
    # without a dataset id nothing is invented
    assert export_hub(board, tmp_path / "h2")["files"] == ["README.md", "leaderboard.csv", "leaderboard.json"]


def test_push_dry_run_lists_files_and_a_real_push_fails_in_one_line(three, tmp_path):
    out = tmp_path / "hub"
    export_hub(make_board([three], n_boot=100), out, dataset_ids={"t": "acme/data"})
    result = CliRunner().invoke(leaderboard_app, ["push", str(out), "--repo", "acme/board", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would upload 5 files to datasets/acme/board" in result.output
    assert "models/good/.eval_results/t.yaml" in result.output
    with pytest.raises(MMBenchError) as exc:
        push_board(out, "acme/board", endpoint="http://127.0.0.1:9")
    assert str(exc.value).startswith("could not push to https://huggingface.co/datasets/acme/board: ")
    assert "\n" not in str(exc.value)
    result = CliRunner().invoke(leaderboard_app, ["push", str(out), "--repo", "not a repo"])
    assert result.exit_code == 2 and "ORG/NAME" in result.output


def test_cli_export(three, tmp_path):
    result = CliRunner().invoke(leaderboard_app, ["export", str(three), "--hub", str(tmp_path / "hub"),
                                                  "--dataset-id", "t=acme/data", "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "hub" / "models" / "good" / ".eval_results" / "t.yaml").is_file()
