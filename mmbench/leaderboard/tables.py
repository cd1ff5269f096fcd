"""Group runs into comparable tables, rank them, and write Markdown, CSV and JSON.

``build_board(runs)`` is the one computation; every output (README, CSV, JSON, HTML,
the terminal) renders the same board, a plain JSON-able dict::

    {"seed", "n_boot", "level", "rejected": [{"path", "reason"}],
     "tasks": [{"task", "family", "primary_metric",
                "groups": [{"index", "fingerprint_hash", "subset_limit", "notes": [...],
                            "metrics": [...], "higher_is_better": {metric: bool | None}, "has_gpu": bool,
                            "categories": {prefix: [metric, ...]},
                            "rows": [{"rank", "rank_label", "tie_with_previous", "ranked", "unranked_reason",
                                      "model", "run", "results", "n_samples", "n_failed", "n_ok",
                                      "n_cached", "n_computed", "samples_per_s", "throughput",
                                      "peak_rss_mb", "peak_gpu_mb", "n_parameters", "warnings", "flags",
                                      "metrics": {m: {"value", "ci", "ci_of", "ci_note", "sample_mean"}}}]}]}]}

Rows of one task are grouped by ``fingerprint.hash``; rows of different groups are never
ranked together, and each group's notes say what differs from the task's other groups.
A row is ranked only when it has the primary metric, the metric has a recorded direction,
and at least one of its samples succeeded; every other row is listed below the ranked
ones with ``rank`` None and the reason.  Runs with failed samples carry a flag.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mmbench.leaderboard.format import column_format, params_format
from mmbench.leaderboard.load import load_caption_pairs, load_sample_scores
from mmbench.results import RunResult, TaskResult
from mmbench.leaderboard.stats import (align, bootstrap_mean_ci, bootstrap_statistic_ci, is_tie,
                                       paired_difference_ci, stable_key)

#: category breakdowns the board charts: ``<prefix>/<category>`` keys (VQA answer types, phrasings)
#: metrics whose "<metric>/<category>" keys are per-category breakdowns (VQA answer types, text-to-image
#: prompt categories), charted together
CATEGORY_PREFIXES = ("accuracy", "exact_match", "CLIPScore", "VQAScore", "PAC-S", "ITMScore")


# ------------------------------------------------------------------ fingerprint differences

def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        flat: dict[str, Any] = {}
        for k, v in obj.items():
            flat.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return flat
    return {prefix: obj}


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fingerprint_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable reasons why two task fingerprints differ, e.g. ``["prompt differs ('x' vs 'y')"]``.

    Derived hashes are only named when nothing explains them: ``rendered_prompt_hash``
    (the chat template) when the prompt is equal; ``definition_hash`` when no other part of
    the task definition differs; sample and reference hashes fold into "dataset".
    """
    fa = _flatten({k: v for k, v in a.items() if k != "hash"})
    fb = _flatten({k: v for k, v in b.items() if k != "hash"})
    paths = sorted(p for p in set(fa) | set(fb) if fa.get(p, "<absent>") != fb.get(p, "<absent>"))
    top = {p.split(".")[0] for p in paths}
    out: list[str] = []
    dataset_parts: list[str] = []
    for p in paths:
        head = p.split(".")[0]
        if head in ("dataset", "sample_ids_hash", "references_hash", "n_samples"):
            if head == "n_samples" or "limit" not in top:
                dataset_parts.append(p)
            continue
        if head == "rendered_prompt_hash" and "prompt" in top:
            continue
        if head == "definition_hash" and top & {"prompt", "generation", "metrics", "version", "dataset"}:
            continue
        label = {"rendered_prompt_hash": "rendered prompt (chat template)", "definition_hash": "task definition",
                 "version": "task version", "limit": "limit (subset)"}.get(p, p)
        va, vb = fa.get(p, "<absent>"), fb.get(p, "<absent>")
        detail = f" ({_short(va)} vs {_short(vb)})" if head in ("prompt", "generation", "version", "limit") else ""
        out.append(f"{label} differs{detail}")
    if dataset_parts:
        out.insert(0, f"dataset differs ({', '.join(dataset_parts)})")
    return out or ["fingerprint hash differs"]


# ------------------------------------------------------------------ the board

def _group_rows(runs: Iterable[RunResult]) -> dict[str, dict[str, list[tuple[RunResult, TaskResult]]]]:
    tasks: dict[str, dict[str, list[tuple[RunResult, TaskResult]]]] = {}
    for run in runs:
        for name, entry in run.tasks.items():
            tasks.setdefault(name, {}).setdefault(entry.fingerprint_hash, []).append((run, entry))
    return tasks


def _directions(members: list[tuple[RunResult, TaskResult]]) -> dict[str, bool | None]:
    """Each metric's direction as the results files record it (the metric's spec says it; the
    first run that has the metric wins: runs of one group share a fingerprint, so their metrics)."""
    out: dict[str, bool | None] = {}
    for _, entry in members:
        for m in entry.metrics:
            if m not in out or out[m] is None:
                out[m] = entry.higher_is_better(m)
    return out


def build_board(runs: list[RunResult], *, seed: int = 0, n_boot: int = 1000, level: float = 0.95,
                rejected: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """Group, score and rank ``runs``; see the module docstring for the shape."""
    board: dict[str, Any] = {"seed": seed, "n_boot": n_boot, "level": level,
                             "rejected": [{"path": p, "reason": r} for p, r in rejected], "tasks": []}
    grouped = _group_rows(runs)
    for task in sorted(grouped, key=lambda t: (next(iter(grouped[t].values()))[0][1].family, t)):
        groups = sorted(grouped[task].items(), key=lambda kv: -len(kv[1]))  # stable: first seen wins ties
        family = groups[0][1][0][1].family
        fps = [members[0][1].fingerprint for _, members in groups]
        out_groups = []
        for gi, (fp_hash, members) in enumerate(groups):
            out_groups.append(_build_group(task, family, gi, fp_hash, members, fps, seed=seed, n_boot=n_boot,
                                           level=level))
        primary = out_groups[0]["primary_metric"]
        board["tasks"].append({"task": task, "family": family, "primary_metric": primary, "groups": out_groups})
    return board


def _throughput(entry: TaskResult) -> tuple[str | None, list[str]]:
    """How the row's samples/s was measured, and flags saying so when the cache served samples."""
    cached, computed = entry.n_cached or 0, entry.n_computed
    if entry.samples_per_s is None:
        if cached:
            return "cached", [f"served from the cache ({cached:,} of {entry.n_samples:,} samples): no throughput "
                              "measured; the run that computed the predictions has it"]
        return None, []
    if cached:
        done = computed if computed is not None else entry.n_samples - cached
        return "partly cached", [f"partly cached: {cached:,} of {entry.n_samples:,} samples came from the cache, "
                                 f"samples/s is of the {done:,} computed"]
    return "measured", []


def _categories(metrics: list[str]) -> dict[str, list[str]]:
    """``prefix -> [prefix/category, ...]`` for the category breakdowns among ``metrics``."""
    out: dict[str, list[str]] = {}
    for m in metrics:
        prefix, sep, rest = m.partition("/")
        if sep and rest and prefix in CATEGORY_PREFIXES:
            out.setdefault(prefix, []).append(m)
    return out


def _interval(task: str, fp_hash: str, m: str, value: float, entry: TaskResult, per, exact: dict, *, seed: int,
              n_boot: int, level: float) -> dict[str, Any]:
    """A metric cell: its value and an interval of that value, or none and why.

    Corpus metrics (``metric_info.aggregation == "corpus"``) get an interval only from a method
    that resamples the corpus value itself (BLEU from summed n-gram counts); counts get none; a
    mean metric gets the cluster bootstrap of its per-sample scores when they average to the
    reported value (else none: the file's numbers disagree)."""
    cell: dict[str, Any] = {"value": value, "ci": None, "ci_of": None, "ci_note": None, "sample_mean": None}
    aggregation = (entry.metric_info.get(m) or {}).get("aggregation")
    if m in exact:
        cell.update(ci=list(exact[m]), ci_of="value")
        return cell
    if aggregation == "corpus":
        cell["ci_note"] = "corpus metric: no method resamples its corpus value, so no interval"
        return cell
    if aggregation == "count":
        cell["ci_note"] = "a count: no interval"
        return cell
    if per is None or np.all(np.isnan(per.scores[m])):
        cell["ci_note"] = "no per-sample scores: no interval"
        return cell
    mean = float(np.nanmean(per.scores[m]))
    cell["sample_mean"] = mean
    if not math.isclose(mean, value, rel_tol=1e-6, abs_tol=1e-9):
        cell["ci_note"] = f"the per-sample scores average to {mean:.6g}, not the reported value: no interval"
        return cell
    ci = bootstrap_mean_ci(per.scores[m], per.units, seed=seed, key=stable_key(task, fp_hash, m), n_boot=n_boot,
                           level=level)
    if ci is not None:
        cell.update(ci=list(ci), ci_of="value")
    return cell


def _build_group(task: str, family: str, gi: int, fp_hash: str, members: list[tuple[RunResult, TaskResult]],
                 fps: list[dict], *, seed: int, n_boot: int, level: float) -> dict[str, Any]:
    metrics: list[str] = []
    for _, entry in members:
        metrics += [m for m in entry.metrics if m not in metrics]
    directions = _directions(members)
    # the primary metric is what the results files say (the task's first metric's primary output)
    primary = next((e.primary_metric for _, e in members if e.primary_metric in metrics), None) or ""
    rows, samples = [], []
    for run, entry in members:
        predictions = run.predictions_path(task)
        per = load_sample_scores(predictions, entry.metrics)
        samples.append(per)
        exact = _exact_corpus_cis(task, fp_hash, family, entry, predictions, seed=seed, n_boot=n_boot,
                                  level=level)
        row_metrics = {m: _interval(task, fp_hash, m, value, entry, per, exact, seed=seed, n_boot=n_boot,
                                    level=level) for m, value in entry.metrics.items()}
        n_ok = max(entry.n_samples - entry.n_failed, 0)
        throughput, flags = _throughput(entry)
        if entry.n_failed:
            flags.insert(0, f"all {entry.n_samples:,} samples failed" if n_ok == 0 else
                         f"{entry.n_failed:,} of {entry.n_samples:,} samples failed (scored as wrong)")
        unranked = ("no successful samples" if n_ok == 0 else
                    f"no {primary} value" if primary not in row_metrics else
                    f"{primary} has no recorded direction" if directions.get(primary) is None else None)
        rows.append({"model": run.model_name, "run": run.run_id, "results": str(run.path), "n_samples": entry.n_samples,
                     "n_failed": entry.n_failed, "n_ok": n_ok, "n_cached": entry.n_cached,
                     "n_computed": entry.n_computed, "samples_per_s": entry.samples_per_s, "throughput": throughput,
                     "peak_rss_mb": entry.peak_rss_mb, "peak_gpu_mb": entry.peak_gpu_mb,
                     "n_parameters": run.n_parameters, "warnings": list(entry.warnings), "flags": flags,
                     "ranked": unranked is None, "unranked_reason": unranked, "metrics": row_metrics})
    sign = -1 if directions.get(primary) is False else 1
    order = sorted(range(len(rows)), key=lambda i: (not rows[i]["ranked"], primary not in rows[i]["metrics"],
                                                    -sign * rows[i]["metrics"].get(primary, {"value": 0})["value"]))
    rows, samples = [rows[i] for i in order], [samples[i] for i in order]
    _rank(rows, samples, primary, key=stable_key(task, fp_hash, primary), seed=seed, n_boot=n_boot, level=level)
    limit = members[0][1].limit
    notes = []
    if limit is not None:
        notes.append(f"Subset: evaluated with --limit {limit}. Corpus metrics such as CIDEr-D (document "
                     "frequencies from the evaluated set) are not comparable with other subsets or the full set.")
    for gj, other in enumerate(fps):
        if gj != gi:
            notes.append(f"Not comparable with group {gj + 1}: " + "; ".join(fingerprint_differences(fps[gi], other))
                         + ".")
    if any(s is None for s in samples):
        notes.append("Some runs have no predictions file: their intervals and ties are not computed.")
    unranked_rows = [r for r in rows if not r["ranked"]]
    if unranked_rows:
        notes.append("Not ranked: " + "; ".join(f"{r['model']} ({r['unranked_reason']})" for r in unranked_rows)
                     + ".")
    versions: dict[str, set[str]] = {}
    for run, _ in members:
        for lib, version in run.libraries:
            versions.setdefault(lib, set()).add(version)
    mixed = {lib: sorted(v) for lib, v in versions.items() if len(v) > 1}
    if mixed:
        notes.append("Rows were computed with different library versions ("
                     + "; ".join(f"{lib} {', '.join(v)}" for lib, v in sorted(mixed.items()))
                     + "): a model's outputs can change between versions, so check before reading a difference "
                       "as a model's.")
    return {"index": gi + 1, "fingerprint_hash": fp_hash, "subset_limit": limit, "primary_metric": primary,
            "metrics": metrics, "higher_is_better": directions, "categories": _categories(metrics),
            "has_gpu": any(r["peak_gpu_mb"] is not None for r in rows), "notes": notes,
            "rows": rows}


def _exact_corpus_cis(task: str, fp_hash: str, family: str, entry: TaskResult, predictions: Path | None, *,
                      seed: int, n_boot: int, level: float) -> dict[str, tuple[float, float]]:
    """Intervals of corpus BLEU-1..4 themselves: the bootstrap resamples images and recomputes
    corpus BLEU from their summed n-gram statistics (re-derived from the predictions file).
    Used only when the re-derived corpus values equal the reported ones; otherwise the
    metric keeps the per-sample-mean interval (marked)."""
    wanted = [m for m in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4") if m in entry.metrics]
    if family != "captioning" or not wanted:
        return {}
    pairs = load_caption_pairs(predictions)
    if pairs is None or not pairs[0]:
        return {}
    from mmbench.metrics.caption import bleu_from_statistics, caption_bleu_statistics

    _, units, preds, refs = pairs
    try:
        stats = caption_bleu_statistics(preds, refs)
    except ValueError:
        return {}
    corpus = bleu_from_statistics(stats.sum(axis=0))
    out = {}
    for m in wanted:
        k = int(m[-1]) - 1
        if not math.isclose(float(corpus[k]), entry.metrics[m], rel_tol=1e-9, abs_tol=1e-12):
            continue
        ci = bootstrap_statistic_ci(stats, units, lambda totals, k=k: bleu_from_statistics(totals)[..., k],
                                    seed=seed, key=stable_key(task, fp_hash, m), n_boot=n_boot, level=level)
        if ci is not None:
            out[m] = ci
    return out


def _rank(rows: list[dict], samples: list, primary: str, *, key: int, seed: int, n_boot: int, level: float) -> None:
    """Set rank (competition ranking: ties share the better rank), tie flags and labels in place.
    ``rows`` come ranked first, best first; unranked rows get rank None and the label ``-``."""
    for i, row in enumerate(rows):
        tie = None
        prev = rows[i - 1] if i > 0 else None
        if not row["ranked"]:
            row.update(tie_with_previous=None, rank=None)
            continue
        if prev is not None and prev["ranked"]:
            a, b = samples[i - 1], samples[i]
            if a is not None and b is not None:
                ia, ib = align(a.ids, b.ids)
                if len(ia):
                    diff = paired_difference_ci(a.scores[primary][ia], b.scores[primary][ib],
                                                [a.units[j] for j in ia], seed=seed, key=key, n_boot=n_boot,
                                                level=level)
                    tie = is_tie(diff)
            if row["metrics"][primary]["value"] == prev["metrics"][primary]["value"]:
                tie = True
        row["tie_with_previous"] = tie
        row["rank"] = prev["rank"] if tie else i + 1
    for i, row in enumerate(rows):
        if row["rank"] is None:
            row["rank_label"] = "-"
            continue
        tied = row["tie_with_previous"] or (i + 1 < len(rows) and rows[i + 1]["tie_with_previous"])
        row["rank_label"] = f"={row['rank']}" if tied else str(row["rank"])


# ------------------------------------------------------------------ formatting helpers

def fmt_value(v: float | None) -> str:
    """One value alone (notes, tooltips); table columns use :func:`columns` formats."""
    return column_format([v])(v)


def columns(group: dict[str, Any]) -> list[dict[str, Any]]:
    """The group's table columns, in order, each ``{"key", "label", "kind", "fmt", "first"}``.

    ``kind`` is "rank", "model", "metric" (``key`` is the metric) or "extra" (``key`` is a row
    field); ``fmt`` formats every value of the column alike; ``first`` is the order a first click
    sorts by ("desc" or "asc": best first, from the recorded direction).  The primary metric
    comes right after the model and the efficiency columns before the other metrics, so a
    wide table shows what it ranks by and what it costs without scrolling."""
    rows = group["rows"]
    primary = group["primary_metric"]

    def metric_col(m: str) -> dict[str, Any]:
        vals = [v for r in rows if m in r["metrics"] for v in [r["metrics"][m]["value"], *(r["metrics"][m]["ci"] or [])]]
        hib = group["higher_is_better"].get(m)
        return {"key": m, "label": m, "kind": "metric", "fmt": column_format(vals), "higher_is_better": hib,
                "first": "asc" if hib is False else "desc"}

    def extra(key: str, label: str, fmt, first: str) -> dict[str, Any]:
        return {"key": key, "label": label, "kind": "extra", "fmt": fmt, "higher_is_better": None, "first": first}

    cols = [{"key": "rank", "label": "rank", "kind": "rank", "fmt": str, "higher_is_better": None, "first": "asc"},
            {"key": "model", "label": "model", "kind": "model", "fmt": str, "higher_is_better": None, "first": "asc"}]
    if primary in group["metrics"]:
        cols.append(metric_col(primary))
    cols.append(extra("n_failed", "failed", column_format([0]), "asc"))
    cols.append(extra("samples_per_s", "samples/s", column_format([r["samples_per_s"] for r in rows], digits=1),
                      "desc"))
    cols.append(extra("peak_rss_mb", "peak RSS MB", column_format([], digits=0), "asc"))
    if group["has_gpu"]:
        cols.append(extra("peak_gpu_mb", "peak GPU MB", column_format([], digits=0), "asc"))
    cols.append(extra("n_parameters", "params", params_format([r["n_parameters"] for r in rows]), "asc"))
    cols.append(extra("n_samples", "n", column_format([0]), "desc"))
    cols += [metric_col(m) for m in group["metrics"] if m != primary]
    return cols


def model_label(group: dict[str, Any], row: dict[str, Any]) -> str:
    """The model's name, with the run id when two rows of the group share it."""
    names = [r["model"] for r in group["rows"]]
    return row["model"] if names.count(row["model"]) == 1 else f"{row['model']} ({row['run']})"


def extra_text(col: dict[str, Any], row: dict[str, Any]) -> str:
    v = row[col["key"]]
    if col["key"] == "samples_per_s" and v is None and row["throughput"] == "cached":
        return "cached"
    text = col["fmt"](v)
    return text + "*" if col["key"] == "samples_per_s" and row["throughput"] == "partly cached" else text


def best_values(group: dict[str, Any]) -> dict[str, float]:
    """Metric -> the best value among ranked rows (max, or min for lower-is-better metrics; none for
    counts and diagnostics, whose direction is null)."""
    best = {}
    for m in group["metrics"]:
        vals = [r["metrics"][m]["value"] for r in group["rows"] if m in r["metrics"] and r["ranked"]]
        direction = group["higher_is_better"].get(m)
        if vals and direction is not None:
            best[m] = max(vals) if direction else min(vals)
    return best


def table_cells(group: dict[str, Any]) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of ``(text, is_best)`` cells, shared by Markdown and the terminal.  Text is raw
    (unescaped): each renderer escapes for its own format.  Flags follow the model name."""
    cols = columns(group)
    best = best_values(group)
    out = []
    for r in group["rows"]:
        cells = []
        for col in cols:
            if col["kind"] == "rank":
                cells.append((r["rank_label"], False))
            elif col["kind"] == "model":
                flags = "".join(f" [{f}]" for f in r["flags"])
                cells.append((model_label(group, r) + flags, False))
            elif col["kind"] == "extra":
                cells.append((extra_text(col, r), False))
            else:
                cell = r["metrics"].get(col["key"])
                if cell is None:
                    cells.append(("-", False))
                    continue
                text = col["fmt"](cell["value"])
                if cell["ci"]:
                    text += f" [{col['fmt'](cell['ci'][0])}, {col['fmt'](cell['ci'][1])}]"
                cells.append((text, r["ranked"] and cell["value"] == best.get(col["key"])))
        out.append(cells)
    return [c["label"] for c in cols], out


def group_title(task: dict[str, Any], group: dict[str, Any]) -> str:
    n = len(task["groups"])
    title = f"{task['task']}" + (f" — group {group['index']} of {n}" if n > 1 else "")
    title += f" (fingerprint {group['fingerprint_hash']})"
    if group["subset_limit"] is not None:
        title += f" — subset: --limit {group['subset_limit']}"
    return title


# ------------------------------------------------------------------ Markdown

_MD_SPECIAL = set("\\`*_{}[]()#+!|~")


def md_escape(text: str) -> str:
    """Make ``text`` literal in a Markdown table cell: backslash-escape Markdown punctuation and ``|``,
    turn ``<``, ``>``, ``&`` into entities (no raw HTML), and newlines into spaces."""
    out = []
    for ch in str(text):
        if ch in _MD_SPECIAL:
            out.append("\\" + ch)
        elif ch in "<>&":
            out.append({"<": "&lt;", ">": "&gt;", "&": "&amp;"}[ch])
        elif ch in "\r\n\t":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def to_markdown(board: dict[str, Any]) -> str:
    lines = ["# Leaderboard", "",
             f"Generated by `mmbench leaderboard build`. Intervals: {int(board['level'] * 100)}% bootstrap over "
             f"images ({board['n_boot']} resamples, seed {board['seed']}). Best value per column in bold. "
             "`=` marks adjacent ranks whose difference is not significant (paired bootstrap); `-`: not "
             "ranked (no successful samples, or no direction). Corpus metrics without a corpus resampling "
             "method (METEOR, consistency) have no interval. `*` after samples/s: partly served from the cache. "
             "See docs/leaderboards.md.", ""]
    family = None
    for task in board["tasks"]:
        if task["family"] != family:
            family = task["family"]
            lines += [f"## {md_escape(family)}", ""]
        lines += [f"### {md_escape(task['task'])}", ""]
        for group in task["groups"]:
            header, rows = table_cells(group)
            lines += [f"**{md_escape(group_title(task, group))}** — ranked by {md_escape(group['primary_metric'])}",
                      ""]
            lines += [f"> {md_escape(note)}" for note in group["notes"]] + ([""] if group["notes"] else [])
            lines.append("| " + " | ".join(md_escape(h) for h in header) + " |")
            lines.append("|" + "|".join(":--" if i < 2 else "--:" for i in range(len(header))) + "|")
            for cells in rows:
                lines.append("| " + " | ".join(f"**{md_escape(t)}**" if best else md_escape(t) for t, best in cells)
                             + " |")
            lines.append("")
    if board["rejected"]:
        lines += ["## Rejected files", ""] + [f"- {md_escape(r['path'])}: {md_escape(r['reason'])}"
                                              for r in board["rejected"]] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------ CSV / JSON rows

def flat_rows(board: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per model x task, for CSV and JSON."""
    out = []
    for task in board["tasks"]:
        for group in task["groups"]:
            for r in group["rows"]:
                out.append({"task": task["task"], "family": task["family"],
                            "fingerprint_hash": group["fingerprint_hash"], "group": group["index"],
                            "subset_limit": group["subset_limit"], "primary_metric": group["primary_metric"],
                            "rank": r["rank"], "rank_label": r["rank_label"],
                            "tie_with_previous": r["tie_with_previous"], "ranked": r["ranked"],
                            "unranked_reason": r["unranked_reason"],
                            **{k: r[k] for k in ("model", "run", "results", "n_samples", "n_failed", "n_cached",
                                                 "samples_per_s", "throughput", "peak_rss_mb", "peak_gpu_mb",
                                                 "n_parameters")},
                            "flags": list(r["flags"]), "metrics": r["metrics"]})
    return out


_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    """Strings that a spreadsheet would run as a formula get a leading apostrophe (CSV injection)."""
    if isinstance(value, str) and value.startswith(_CSV_FORMULA):
        return "'" + value
    return value


def to_csv(board: dict[str, Any]) -> str:
    """One line per model x task.  ``rank`` is a number (empty when not ranked) and ``tied`` says
    whether it is shared with a neighbour, so no cell starts with ``=``; flags are joined by "; "."""
    rows = flat_rows(board)
    for r in rows:
        r["tied"] = r["rank_label"].startswith("=")
        r["flags"] = "; ".join(r["flags"])
    metrics: list[str] = []
    for r in rows:
        metrics += [m for m in r["metrics"] if m not in metrics]
    fixed = [k for k in (rows[0] if rows else {}) if k not in ("metrics", "rank_label")]
    header = fixed + [f"{m}{suffix}" for m in metrics for suffix in ("", "_ci_low", "_ci_high", "_ci_of")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_csv_safe(h) for h in header])  # metric names come from results files
    for r in rows:
        line = ["" if r[k] is None else r[k] for k in fixed]
        for m in metrics:
            cell = r["metrics"].get(m)
            ci = cell["ci"] if cell else None
            line += [cell["value"] if cell else "", ci[0] if ci else "", ci[1] if ci else "",
                     (cell["ci_of"] or "") if cell else ""]
        writer.writerow([_csv_safe(v) for v in line])
    return buf.getvalue()


def to_json_obj(board: dict[str, Any]) -> dict[str, Any]:
    groups = [{"task": t["task"], "family": t["family"],
               **{k: g[k] for k in ("index", "fingerprint_hash", "subset_limit", "primary_metric", "notes")}}
              for t in board["tasks"] for g in t["groups"]]
    return {"schema_version": 2, "seed": board["seed"], "n_boot": board["n_boot"], "level": board["level"],
            "rows": flat_rows(board), "groups": groups, "rejected": board["rejected"]}
