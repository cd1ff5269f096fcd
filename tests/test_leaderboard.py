"""Leaderboards: validation of hostile files, grouping by fingerprint, bootstrap CIs and ties, escaping."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.errors import DataError
from mmbench.leaderboard import build_leaderboard, make_board, show_leaderboard
from mmbench.leaderboard.cli import leaderboard_app
from mmbench.leaderboard.html import script_json, to_html
from mmbench.leaderboard.load import load_run
from mmbench.leaderboard.stats import bootstrap_mean_ci, paired_difference_ci
from mmbench.leaderboard.tables import fingerprint_differences, md_escape, to_markdown

EVIL = "<img src=x onerror=alert(1)>"

# ------------------------------------------------------------------ real runs (made once per session)

_RUNS_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import mmbench
    from mmbench.runner import evaluate
    root = Path(sys.argv[1])
    repo_yaml = Path(mmbench.__file__).resolve().parents[1] / "tasks" / "captioning" / "easyvqa_caption.yaml"
    wheel_yaml = Path(mmbench.__file__).resolve().parent / "_builtin_tasks" / "captioning" / "easyvqa_caption.yaml"
    inc = root / "alt_prompt"
    inc.mkdir(parents=True, exist_ok=True)
    (inc / "alt.yaml").write_text(f"include: {repo_yaml if repo_yaml.exists() else wheel_yaml}\\n"
                                  "name: easyvqa_caption\\nprompt: 'Describe the shape.'\\n")
    common = dict(tasks=["easyvqa_caption"], limit=12, meteor=False, cache=False)
    evaluate(model="easyvqa-captioner", output=str(root / "captioner"), **common)
    evaluate(model="example-echo", output=str(root / "echo"), **common)
    evaluate(model="easyvqa-captioner", include=[str(inc)], output=str(root / "captioner_alt"), **common)
""")


def real_runs(tmp_path_factory) -> Path:
    """Three real run folders (captioner, echo, captioner with another prompt), made once per session
    in a subprocess (the ``--include`` override must not leak into other tests' task registry)."""
    root = tmp_path_factory.getbasetemp() / "leaderboard-runs"
    if not (root / "done").exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-c", _RUNS_SCRIPT, str(root)], check=True, capture_output=True,
                       env={**__import__("os").environ, "MMBENCH_CACHE_DIR": str(root / "cache")})
        evil = root / "evil"
        shutil.copytree(root / "echo", evil)
        data = json.loads((evil / "results.json").read_text())
        data["model"]["name"] = EVIL
        (evil / "results.json").write_text(json.dumps(data))
        (root / "done").write_text("ok")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return real_runs(tmp_path_factory)


# ------------------------------------------------------------------ synthetic runs

def fake_run(root: Path, model: str, scores: list[float], *, prompt: str = "Describe.", metric: str = "CIDEr-D",
             image_ids: list[str] | None = None, limit: int | None = None, value: float | None = None,
             max_new_tokens: int = 16) -> Path:
    """A minimal valid run folder with per-sample ``scores`` (corpus value = their mean)."""
    run = root / model.replace("/", "_").replace("<", "_").replace(">", "_")
    (run / "predictions").mkdir(parents=True, exist_ok=True)
    fp = {"task": "t", "version": 1, "prompt": prompt, "generation": {"max_new_tokens": max_new_tokens},
          "dataset": {"revision": "abc"}, "sample_ids_hash": "s", "limit": limit}
    fp["hash"] = str(abs(hash(json.dumps(fp, sort_keys=True))))
    results = {"schema_version": 1, "model": {"name": model, "n_parameters": 1000},
               "tasks": {"t": {"family": "captioning", "fingerprint": fp, "n_samples": len(scores), "n_failed": 0,
                               "metrics": {metric: float(np.mean(scores)) if value is None else value},
                               "timing": {"samples_per_s": 10.0}, "memory": {"peak_rss_mb": 100.0},
                               "warnings": [], "predictions": "predictions/t.jsonl"}}}
    (run / "results.json").write_text(json.dumps(results))
    lines = []
    for i, s in enumerate(scores):
        line = {"id": str(i), "prediction": "x", "references": ["x"], "scores": {metric: s}, "error": None}
        if image_ids:
            line["meta"] = {"image_id": image_ids[i]}
        lines.append(json.dumps(line))
    (run / "predictions" / "t.jsonl").write_text("\n".join(lines) + "\n")
    return run


def _mutate(run: Path, fn) -> Path:
    data = json.loads((run / "results.json").read_text())
    fn(data)
    (run / "results.json").write_text(json.dumps(data))
    return run


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("mutation, reason", [
    (lambda d: d.update(schema_version=99), "unsupported schema version 99"),
    (lambda d: d.update(schema_version=True), "unsupported schema version"),
    (lambda d: d["tasks"]["t"]["metrics"].update({"CIDEr-D": "0.9"}),
     "field 'tasks.t.metrics.CIDEr-D': expected a number"),
    (lambda d: d["tasks"]["t"]["metrics"].update({"CIDEr-D": [1]}), "expected a number, got a list"),
    (lambda d: d.pop("tasks"), "field 'tasks': missing"),
    (lambda d: d["model"].pop("name"), "field 'model.name': missing"),
    (lambda d: d["model"].update(name=7), "field 'model.name': expected a string"),
    (lambda d: d["model"].update(name="x" * 1000), "more than 500"),
    (lambda d: d["tasks"]["t"].update(n_samples=-1), "n_samples"),
    (lambda d: d["tasks"]["t"]["fingerprint"].pop("hash"), "fingerprint.hash': missing"),
    (lambda d: d["tasks"]["t"].update(predictions="../../../etc/passwd"), "inside the run folder"),
    (lambda d: d["tasks"]["t"].update(predictions="/etc/passwd"), "inside the run folder"),
    (lambda d: d["tasks"]["t"]["timing"].update(samples_per_s="fast"), "samples_per_s"),
    (lambda d: d.update(tasks={}), "no tasks"),
])
def test_invalid_results_rejected_with_reason(tmp_path, mutation, reason):
    run = _mutate(fake_run(tmp_path, "m", [1.0, 2.0]), mutation)
    with pytest.raises(DataError) as exc:
        load_run(run)
    assert reason in str(exc.value)
    assert str(run / "results.json") in str(exc.value)


@pytest.mark.parametrize("text, reason", [
    ('{"schema_version": 1, "x": NaN}', "NaN is not allowed"),
    ('{"schema_version": 1, "x": -Infinity}', "Infinity is not allowed"),
    ('{"schema_version": 1, "x": 1e999}', "overflows"),
    ("not json at all", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ('{"schema_version": 1, "model": {"name": "m"}, "tasks": {"t": {"metrics": {"m": NaN}}}}', "NaN"),
])
def test_malformed_json_rejected(tmp_path, text, reason):
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(DataError, match=reason):
        load_run(path)


def test_huge_file_rejected_without_reading(tmp_path):
    path = tmp_path / "results.json"
    with path.open("wb") as fh:
        fh.truncate(50 * 2**20)  # sparse: 50 MB on paper, nothing on disk
    with pytest.raises(DataError, match="50.0 MB, more than the 16 MB allowed"):
        load_run(path)


def test_bad_predictions_line_rejected(tmp_path):
    run = fake_run(tmp_path, "m", [1.0, 2.0])
    with (run / "predictions" / "t.jsonl").open("a") as fh:
        fh.write('{"id": "9", "scores": {"CIDEr-D": "high"}}\n')
    with pytest.raises(DataError, match=r"t\.jsonl:3, field 'scores.CIDEr-D': expected a number"):
        make_board([run])


def test_build_is_all_or_nothing(tmp_path):
    good = fake_run(tmp_path, "good", [1.0, 2.0])
    bad = _mutate(fake_run(tmp_path, "bad", [1.0]), lambda d: d.update(schema_version=9))
    out = tmp_path / "out"
    with pytest.raises(DataError, match="bad"):
        build_leaderboard([good, bad], out)
    assert not out.exists()
    board = build_leaderboard([good, bad], out, skip_invalid=True)
    assert [r["path"] for r in board["rejected"]] == [str(bad / "results.json")]
    assert "Rejected files" in (out / "README.md").read_text()


def test_folder_of_runs_is_expanded(tmp_path):
    fake_run(tmp_path / "all", "a", [1.0, 2.0])
    fake_run(tmp_path / "all", "b", [3.0, 4.0])
    board = make_board([tmp_path / "all"], n_boot=200)
    assert [r["model"] for r in board["tasks"][0]["groups"][0]["rows"]] == ["b", "a"]


# ------------------------------------------------------------------ bootstrap

def test_bootstrap_ci_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    values = rng.normal(2.0, 1.0, size=300)
    units = [str(i) for i in range(300)]
    ci = bootstrap_mean_ci(values, units, seed=3, n_boot=500)
    assert ci[0] < values.mean() < ci[1]
    assert ci == bootstrap_mean_ci(values, units, seed=3, n_boot=500)
    assert ci != bootstrap_mean_ci(values, units, seed=4, n_boot=500)
    assert 0.15 < ci[1] - ci[0] < 0.30  # about 2 * 1.96 / sqrt(300) = 0.23


def test_bootstrap_resamples_images_not_questions():
    per_image = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 0.25])
    images = [f"img{i}" for i in range(6)]
    # three identical questions per image: the cluster bootstrap must see 6 units, not 18 samples
    questions = np.repeat(per_image, 3)
    units = [u for u in images for _ in range(3)]
    assert bootstrap_mean_ci(questions, units, seed=0, n_boot=300) == bootstrap_mean_ci(per_image, images, seed=0,
                                                                                         n_boot=300)
    naive = bootstrap_mean_ci(questions, [str(i) for i in range(18)], seed=0, n_boot=300)
    assert naive[1] - naive[0] < bootstrap_mean_ci(per_image, images, seed=0, n_boot=300)[1] - \
        bootstrap_mean_ci(per_image, images, seed=0, n_boot=300)[0]


def test_paired_difference():
    a = np.linspace(0, 1, 50)
    units = [str(i) for i in range(50)]
    assert paired_difference_ci(a, a.copy(), units) == (0.0, 0.0)
    lo, hi = paired_difference_ci(a + 0.2, a, units)
    assert lo > 0 and hi > 0


def test_board_ties_and_ranks(tmp_path):
    rng = np.random.default_rng(0)
    base = list(rng.uniform(0, 1, 60))
    noisy = [s + d for s, d in zip(base, rng.normal(0, 0.3, 60))]
    fake_run(tmp_path, "same-a", base)
    fake_run(tmp_path, "same-b", base)
    fake_run(tmp_path, "worse", [s - 0.5 for s in base])
    board = make_board(sorted(tmp_path.iterdir()), n_boot=300)
    rows = board["tasks"][0]["groups"][0]["rows"]
    assert [(r["model"], r["rank_label"]) for r in rows] == [("same-a", "=1"), ("same-b", "=1"), ("worse", "3")]
    assert [r["tie_with_previous"] for r in rows] == [None, True, False]
    # a noisy copy with a small mean shift is not separable from the original: tie
    fake_run(tmp_path / "n", "orig", base)
    fake_run(tmp_path / "n", "noisy", [s + 0.01 for s in noisy])
    rows = make_board([tmp_path / "n"], n_boot=300)["tasks"][0]["groups"][0]["rows"]
    assert rows[1]["tie_with_previous"] is True
    assert "=" in to_markdown(board)


def test_value_that_is_not_the_mean_of_its_scores_gets_no_interval(tmp_path):
    """An interval of the per-sample mean need not contain the value (METEOR showed 0.8214 [0.9921, 0.9987]):
    a value that its per-sample scores do not average to gets no interval, and the cell says why."""
    fake_run(tmp_path / "a", "m", [0.1, 0.2, 0.3, 0.4], metric="CIDEr-D", value=0.9)  # a "mean" metric
    cell = make_board([tmp_path / "a"], n_boot=200)["tasks"][0]["groups"][0]["rows"][0]["metrics"]["CIDEr-D"]
    assert cell["ci"] is None and cell["ci_of"] is None and cell["sample_mean"] == pytest.approx(0.25)
    assert "not the reported value" in cell["ci_note"]
    # a corpus metric (metric_info aggregation "corpus") without a corpus-resampling method: none either
    fake_run(tmp_path / "b", "m", [0.1, 0.2, 0.3, 0.4], metric="METEOR", value=0.25)
    cell = make_board([tmp_path / "b"], n_boot=200)["tasks"][0]["groups"][0]["rows"][0]["metrics"]["METEOR"]
    assert cell["ci"] is None and "corpus metric" in cell["ci_note"]


def test_image_ids_from_meta_are_units(tmp_path):
    fake_run(tmp_path / "a", "m", [1.0, 1.0, 0.0, 0.0], image_ids=["x", "x", "y", "y"])
    fake_run(tmp_path / "b", "m", [1.0, 0.0], image_ids=["x", "y"])
    ci_a = make_board([tmp_path / "a"], n_boot=200)["tasks"][0]["groups"][0]["rows"][0]["metrics"]["CIDEr-D"]["ci"]
    ci_b = make_board([tmp_path / "b"], n_boot=200)["tasks"][0]["groups"][0]["rows"][0]["metrics"]["CIDEr-D"]["ci"]
    assert ci_a == ci_b


def test_gzipped_predictions_give_the_same_intervals(tmp_path):
    """Published runs keep predictions/<task>.jsonl.gz; the board reads them transparently."""
    import gzip

    plain = fake_run(tmp_path / "plain", "m", [0.1, 0.5, 0.9, 0.3, 0.7])
    packed = fake_run(tmp_path / "packed", "m", [0.1, 0.5, 0.9, 0.3, 0.7])
    jsonl = packed / "predictions" / "t.jsonl"
    (packed / "predictions" / "t.jsonl.gz").write_bytes(gzip.compress(jsonl.read_bytes()))
    jsonl.unlink()
    cell = lambda root: make_board([root], n_boot=200)["tasks"][0]["groups"][0]["rows"][0]["metrics"]["CIDEr-D"]
    assert cell(packed)["ci"] == cell(plain)["ci"] is not None


def test_gzip_expansion_is_bounded(tmp_path, monkeypatch):
    import gzip

    from mmbench.leaderboard import load

    run = fake_run(tmp_path, "m", [0.5] * 200)
    jsonl = run / "predictions" / "t.jsonl"
    (run / "predictions" / "t.jsonl.gz").write_bytes(gzip.compress(jsonl.read_bytes()))
    jsonl.unlink()
    monkeypatch.setattr(load, "MAX_PREDICTIONS_BYTES", 2000)  # the .gz is smaller, the text is not
    with pytest.raises(DataError, match="more than"):
        make_board([tmp_path], n_boot=100)


# ------------------------------------------------------------------ comparability

def test_fingerprint_differences_name_the_cause():
    a = {"prompt": "p", "rendered_prompt_hash": "1", "definition_hash": "d1", "generation": {"max_new_tokens": 16},
         "dataset": {"revision": "r1"}, "sample_ids_hash": "s", "limit": None, "hash": "h1"}
    b = dict(a, prompt="q", rendered_prompt_hash="2", definition_hash="d2", hash="h2")
    assert fingerprint_differences(a, b) == ["prompt differs ('p' vs 'q')"]
    c = dict(a, generation={"max_new_tokens": 8}, definition_hash="d3")
    assert fingerprint_differences(a, c) == ["generation.max_new_tokens differs (16 vs 8)"]
    d = dict(a, dataset={"revision": "r2"}, sample_ids_hash="t")
    assert fingerprint_differences(a, d) == ["dataset differs (dataset.revision, sample_ids_hash)"]
    assert fingerprint_differences(a, dict(a, rendered_prompt_hash="9")) == ["rendered prompt (chat template) differs"]


def test_subset_and_generation_groups(tmp_path):
    fake_run(tmp_path / "x", "full", [1.0, 2.0])
    fake_run(tmp_path / "y", "short", [1.0, 2.0], max_new_tokens=4)
    fake_run(tmp_path / "z", "subset", [1.0], limit=1)
    board = make_board([tmp_path / "x", tmp_path / "y", tmp_path / "z"], n_boot=200)
    groups = board["tasks"][0]["groups"]
    assert len(groups) == 3 and all(len(g["rows"]) == 1 for g in groups)
    text = to_markdown(board)
    assert "generation.max\\_new\\_tokens differs \\(16 vs 4\\)" in text
    assert "subset: --limit 1" in text and "not comparable with other subsets" in text


@pytest.mark.slow
def test_two_prompts_make_two_groups(runs, tmp_path):
    out = tmp_path / "lb"
    board = build_leaderboard([runs / "captioner", runs / "echo", runs / "captioner_alt"], out, n_boot=200)
    (task,) = board["tasks"]
    assert [[r["model"] for r in g["rows"]] for g in task["groups"]] == [["easyvqa-captioner", "example-echo"],
                                                                         ["easyvqa-captioner"]]
    readme, page = (out / "README.md").read_text(), (out / "index.html").read_text()
    for text in (readme, page):
        assert "prompt differs" in text and "Describe the shape." in text
    for row in task["groups"][0]["rows"]:
        cider = row["metrics"]["CIDEr-D"]
        assert cider["ci_of"] == "value" and cider["ci"][0] <= cider["value"] <= cider["ci"][1]
    # efficiency columns come through
    first = task["groups"][0]["rows"][0]
    assert first["n_parameters"] > 0 and first["samples_per_s"] > 0 and first["peak_rss_mb"] > 0
    # CSV and JSON: one row per model x task
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text())))
    data = json.loads((out / "leaderboard.json").read_text())
    assert len(rows) == len(data["rows"]) == 3
    assert {r["group"] for r in rows} == {"1", "2"}
    assert rows[0]["CIDEr-D"] and rows[0]["CIDEr-D_ci_low"]
    # reproducible: the same seed gives byte-identical files
    build_leaderboard([runs / "captioner", runs / "echo", runs / "captioner_alt"], tmp_path / "again", n_boot=200)
    for name in ("README.md", "leaderboard.csv", "leaderboard.json", "index.html"):
        assert (out / name).read_text() == (tmp_path / "again" / name).read_text()


# ------------------------------------------------------------------ escaping

def test_markdown_escaping():
    assert md_escape("a|b") == "a\\|b"
    assert md_escape(EVIL) == "&lt;img src=x onerror=alert\\(1\\)&gt;"
    assert md_escape("*x* _y_ [l](u)\nz") == "\\*x\\* \\_y\\_ \\[l\\]\\(u\\) z"


@pytest.mark.slow
def test_hostile_names_escaped_everywhere(runs, tmp_path):
    out = tmp_path / "lb"
    build_leaderboard([runs / "captioner", runs / "evil"], out, n_boot=200)
    page = (out / "index.html").read_text()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    data_start = page.index('<script type="application/json"')
    blob = page[page.index(">", data_start) + 1:page.index("</script>", data_start)]
    assert "<" not in blob and ">" not in blob
    assert json.loads(blob)["tasks"][0]["groups"][0]["rows"][1]["model"] == EVIL
    readme = (out / "README.md").read_text()
    assert "<img" not in readme and "&lt;img src=x onerror=alert\\(1\\)&gt;" in readme
    assert json.loads((out / "leaderboard.json").read_text())["rows"][1]["model"] == EVIL


def test_script_json_cannot_close_script():
    text = script_json({"x": "</script><script>alert(1)</script>&\u2028"})
    assert "</" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text)["x"].startswith("</script>")


def test_html_escapes_notes_and_titles(tmp_path):
    fake_run(tmp_path / "a", "m1", [1.0], prompt="<b>bold</b>")
    fake_run(tmp_path / "b", "m2", [1.0], prompt="plain")
    page = to_html(make_board([tmp_path / "a", tmp_path / "b"], n_boot=200))
    assert "<b>" not in page and "&#x27;&lt;b&gt;bold&lt;/b&gt;&#x27;" in page


def test_show_escapes_rich_markup(tmp_path):
    from rich.console import Console

    fake_run(tmp_path, "[bold red]x[/]", [1.0, 0.5])
    console = Console(record=True, width=200)
    for table in show_leaderboard([tmp_path], n_boot=200):
        console.print(table)
    assert "[bold red]x[/]" in console.export_text()


# ------------------------------------------------------------------ CLI

def test_cli_build_and_show(tmp_path):
    fake_run(tmp_path / "runs", "m1", [1.0, 0.0, 1.0])
    fake_run(tmp_path / "runs", "m2", [0.0, 0.0, 1.0])
    runner = CliRunner()
    result = runner.invoke(leaderboard_app, ["build", str(tmp_path / "runs"), "--out", str(tmp_path / "lb"),
                                             "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "lb").iterdir()) == ["README.md", "index.html", "leaderboard.csv",
                                                                   "leaderboard.json", "samples"]
    result = runner.invoke(leaderboard_app, ["show", str(tmp_path / "runs"), "--n-boot", "200"])
    assert result.exit_code == 0 and "m1" in result.output
    (tmp_path / "bad.json").write_text("{")
    result = runner.invoke(leaderboard_app, ["show", str(tmp_path / "bad.json")])
    assert result.exit_code == 2 and "bad.json" in result.output and "not valid JSON" in result.output


def test_statistic_bootstrap_uses_the_same_draws_as_the_mean():
    """A ratio-of-sums statistic over (value, 1) columns is the mean: identical intervals."""
    from mmbench.leaderboard.stats import bootstrap_statistic_ci

    rng = np.random.default_rng(3)
    values = rng.random(50)
    units = [f"u{i // 2}" for i in range(50)]
    stats = np.column_stack([values, np.ones(50)])
    got = bootstrap_statistic_ci(stats, units, lambda t: t[..., 0] / t[..., 1], seed=4, key=9, n_boot=300)
    assert got == pytest.approx(bootstrap_mean_ci(values, units, seed=4, key=9, n_boot=300), abs=1e-12)


def _caption_run(root: Path, preds: list[str], refs: list[list[str]], *, tamper: float = 0.0) -> Path:
    from mmbench.metrics.caption import score_captions

    values = score_captions(preds, refs, meteor=False)
    run = root / "cap"
    (run / "predictions").mkdir(parents=True)
    fp = {"task": "t", "version": 1, "prompt": "p", "dataset": {}, "hash": "fp"}
    metrics = {k: v + (tamper if k == "BLEU-4" else 0.0) for k, v in values.corpus.items()}
    (run / "results.json").write_text(json.dumps({
        "schema_version": 1, "model": {"name": "m"},
        "tasks": {"t": {"family": "captioning", "fingerprint": fp, "n_samples": len(preds), "n_failed": 0,
                        "metrics": metrics, "timing": {}, "memory": {}, "warnings": [],
                        "predictions": "predictions/t.jsonl"}}}))
    lines = [json.dumps({"id": str(i), "prediction": p, "references": r, "scores": dict(s), "error": None})
             for i, (p, r, s) in enumerate(zip(preds, refs, values.per_sample))]
    (run / "predictions" / "t.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_corpus_bleu_interval_is_of_the_value(tmp_path):
    """Corpus BLEU is not a mean of per-image BLEU; the board re-derives the n-gram statistics from
    the predictions file and bootstraps the corpus value itself (no dagger)."""
    rng = np.random.default_rng(0)
    words = "a man dog red on the grass riding small big".split()
    refs = [[" ".join(rng.choice(words, 6)) for _ in range(3)] for _ in range(40)]
    preds = []
    for r in refs:  # a reference with some words replaced and a random length: real 4-gram overlap
        tokens = r[0].split()[:int(rng.integers(4, 7))]
        for j in rng.choice(len(tokens), 2, replace=False):
            tokens[j] = str(rng.choice(words))
        preds.append(" ".join(tokens))
    board = make_board([_caption_run(tmp_path, preds, refs)], n_boot=300)
    cells = board["tasks"][0]["groups"][0]["rows"][0]["metrics"]
    for m in ("BLEU-2", "BLEU-3", "BLEU-4"):
        assert cells[m]["ci_of"] == "value", m
        assert cells[m]["ci"][0] <= cells[m]["value"] <= cells[m]["ci"][1], m
    assert 0.01 < cells["BLEU-4"]["value"] < 1  # a real, non-degenerate score


def test_reported_bleu_that_does_not_match_the_predictions_keeps_the_marked_interval(tmp_path):
    rng = np.random.default_rng(1)
    words = "a man dog red on the grass riding small big".split()
    refs = [[" ".join(rng.choice(words, 6)) for _ in range(3)] for _ in range(30)]
    preds = [" ".join(rng.choice(words, 6)) for _ in range(30)]
    board = make_board([_caption_run(tmp_path, preds, refs, tamper=0.01)], n_boot=200)
    cells = board["tasks"][0]["groups"][0]["rows"][0]["metrics"]
    assert cells["BLEU-4"]["ci"] is None and cells["BLEU-2"]["ci_of"] == "value"


def test_mixed_library_versions_are_noted(tmp_path):
    a = fake_run(tmp_path / "a", "m1", [0.5, 0.6])
    b = fake_run(tmp_path / "b", "m2", [0.4, 0.7])
    for run, version in ((a, "4.57.6"), (b, "5.23.0")):
        _mutate(run, lambda d, v=version: d.update(environment={"torch": "2.13.0", "transformers": v}))
    notes = make_board([tmp_path / "a", tmp_path / "b"], n_boot=100)["tasks"][0]["groups"][0]["notes"]
    assert any("different library versions (transformers 4.57.6, 5.23.0)" in n for n in notes)
    _mutate(b, lambda d: d.update(environment={"torch": "2.13.0", "transformers": "4.57.6"}))
    notes = make_board([tmp_path / "a", tmp_path / "b"], n_boot=100)["tasks"][0]["groups"][0]["notes"]
    assert not any("library versions" in n for n in notes)
