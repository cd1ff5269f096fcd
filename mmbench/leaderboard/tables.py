"""Group runs into comparable tables, rank them, and write Markdown, CSV and JSON.

``build_board(runs)`` is the one computation; every output (README, CSV, JSON, HTML,
the terminal) renders the same board, a plain JSON-able dict::

    {"seed", "n_boot", "level", "rejected": [{"path", "reason"}],
     "tasks": [{"task", "family", "primary_metric",
                "groups": [{"index", "fingerprint_hash", "subset_limit", "notes": [...],
                            "metrics": [...], "higher_is_better": {metric: bool | None}, "has_gpu": bool,
                            "rows": [{"rank", "rank_label", "tie_with_previous", "model", "run",
                                      "results", "n_samples", "n_failed", "samples_per_s",
                                      "peak_rss_mb", "peak_gpu_mb", "n_parameters", "warnings",
                                      "metrics": {m: {"value", "ci", "ci_of", "sample_mean"}}}]}]}]}

Rows of one task are grouped by ``fingerprint.hash``; rows of different groups are never
ranked together, and each group's notes say what differs from the task's other groups.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mmbench.leaderboard.load import load_caption_pairs, load_sample_scores
from mmbench.results import RunResult, TaskResult
from mmbench.leaderboard.stats import (align, bootstrap_mean_ci, bootstrap_statistic_ci, is_tie,
                                       paired_difference_ci, stable_key)

CI_MARK = "†"  # the interval is of the mean of per-sample scores, not of the corpus value


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
        row_metrics = {}
        for m, value in entry.metrics.items():
            cell: dict[str, Any] = {"value": value, "ci": None, "ci_of": None, "sample_mean": None}
            if m in exact:
                cell.update(ci=list(exact[m]), ci_of="value")
            elif per is not None and not np.all(np.isnan(per.scores[m])):
                ci = bootstrap_mean_ci(per.scores[m], per.units, seed=seed, key=stable_key(task, fp_hash, m),
                                       n_boot=n_boot, level=level)
                mean = float(np.nanmean(per.scores[m]))
                same = math.isclose(mean, value, rel_tol=1e-6, abs_tol=1e-9)
                cell.update(ci=list(ci) if ci else None, ci_of="value" if same else "per-sample mean",
                            sample_mean=mean)
            row_metrics[m] = cell
        rows.append({"model": run.model_name, "run": run.run_id, "results": str(run.path), "n_samples": entry.n_samples,
                     "n_failed": entry.n_failed, "samples_per_s": entry.samples_per_s,
                     "peak_rss_mb": entry.peak_rss_mb, "peak_gpu_mb": entry.peak_gpu_mb,
                     "n_parameters": run.n_parameters, "warnings": list(entry.warnings), "metrics": row_metrics})
    sign = -1 if directions.get(primary) is False else 1
    order = sorted(range(len(rows)), key=lambda i: (primary not in rows[i]["metrics"],
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
            "metrics": metrics, "higher_is_better": directions,
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
    """Set rank (competition ranking: ties share the better rank), tie flags and labels in place."""
    for i, row in enumerate(rows):
        tie = None
        if i > 0 and primary in row["metrics"] and primary in rows[i - 1]["metrics"]:
            a, b = samples[i - 1], samples[i]
            if a is not None and b is not None:
                ia, ib = align(a.ids, b.ids)
                if len(ia):
                    diff = paired_difference_ci(a.scores[primary][ia], b.scores[primary][ib],
                                                [a.units[j] for j in ia], seed=seed, key=key, n_boot=n_boot,
                                                level=level)
                    tie = is_tie(diff)
            if row["metrics"][primary]["value"] == rows[i - 1]["metrics"][primary]["value"]:
                tie = True
        row["tie_with_previous"] = tie
        row["rank"] = rows[i - 1]["rank"] if tie else i + 1
    for i, row in enumerate(rows):
        tied = row["tie_with_previous"] or (i + 1 < len(rows) and rows[i + 1]["tie_with_previous"])
        row["rank_label"] = f"={row['rank']}" if tied else str(row["rank"])


# ------------------------------------------------------------------ formatting helpers

def fmt_value(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"


def fmt_params(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def fmt_num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def best_values(group: dict[str, Any]) -> dict[str, float]:
    """Metric -> the best value in the group (max, or min for lower-is-better metrics; none for
    counts and diagnostics, whose direction is null)."""
    best = {}
    for m in group["metrics"]:
        vals = [r["metrics"][m]["value"] for r in group["rows"] if m in r["metrics"]]
        direction = group["higher_is_better"].get(m)
        if vals and direction is not None:
            best[m] = max(vals) if direction else min(vals)
    return best


def table_cells(group: dict[str, Any]) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of ``(text, is_best)`` cells, shared by Markdown and the terminal.  Text is raw
    (unescaped): each renderer escapes for its own format."""
    header = ["rank", "model", *group["metrics"], "n", "failed", "samples/s", "peak RSS MB"]
    header += ["peak GPU MB"] if group["has_gpu"] else []
    header += ["params"]
    best = best_values(group)
    names = [r["model"] for r in group["rows"]]
    out = []
    for r in group["rows"]:
        model = r["model"] if names.count(r["model"]) == 1 else f"{r['model']} ({r['run']})"
        cells = [(r["rank_label"], False), (model, False)]
        for m in group["metrics"]:
            cell = r["metrics"].get(m)
            if cell is None:
                cells.append(("-", False))
                continue
            text = fmt_value(cell["value"])
            if cell["ci"]:
                mark = CI_MARK if cell["ci_of"] == "per-sample mean" else ""
                text += f" [{fmt_value(cell['ci'][0])}, {fmt_value(cell['ci'][1])}]{mark}"
            cells.append((text, cell["value"] == best.get(m)))
        cells += [(str(r["n_samples"]), False), (str(r["n_failed"]), False), (fmt_num(r["samples_per_s"], 2), False),
                  (fmt_num(r["peak_rss_mb"]), False)]
        cells += [(fmt_num(r["peak_gpu_mb"]), False)] if group["has_gpu"] else []
        cells += [(fmt_params(r["n_parameters"]), False)]
        out.append(cells)
    return header, out


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
             f"`=` marks adjacent ranks whose difference is not significant (paired bootstrap). "
             f"{CI_MARK}: interval of the mean of per-sample scores (the corpus value is not such a mean). "
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
                            "tie_with_previous": r["tie_with_previous"],
                            **{k: r[k] for k in ("model", "run", "results", "n_samples", "n_failed", "samples_per_s",
                                                 "peak_rss_mb", "peak_gpu_mb", "n_parameters")},
                            "metrics": r["metrics"]})
    return out


_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    """Strings that a spreadsheet would run as a formula get a leading apostrophe (CSV injection)."""
    if isinstance(value, str) and value.startswith(_CSV_FORMULA):
        return "'" + value
    return value


def to_csv(board: dict[str, Any]) -> str:
    rows = flat_rows(board)
    metrics: list[str] = []
    for r in rows:
        metrics += [m for m in r["metrics"] if m not in metrics]
    fixed = [k for k in (rows[0] if rows else {}) if k != "metrics"]
    header = fixed + [f"{m}{suffix}" for m in metrics for suffix in ("", "_ci_low", "_ci_high", "_ci_of")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_csv_safe(h) for h in header])  # metric names come from results files
    for r in rows:
        line = [r[k] for k in fixed]
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
    return {"schema_version": 1, "seed": board["seed"], "n_boot": board["n_boot"], "level": board["level"],
            "rows": flat_rows(board), "groups": groups, "rejected": board["rejected"]}
