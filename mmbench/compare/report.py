"""The comparison as text: the terminal (rich), ``compare.md`` and ``compare.json``.

Terminal and Markdown render the same cells (:func:`metric_cells`, :func:`cost_rows`); text
is raw here and each renderer escapes it for its format (rich markup, Markdown).
"""

from __future__ import annotations

import math
from typing import Any

# own formatting: the leaderboard's helpers belong to its page and change with it
_MD_SPECIAL = set("\\`*_{}[]()#+!|~<>&")

METRIC_HEADER = ["metric", "base", "candidate", "difference", "95% CI", "test", "p", "p (Holm)", "verdict"]
COST_HEADER = ["", "base", "candidate", "difference", "ratio"]
FLIP_HEADER = ["id", "question / prompt", "base", "candidate", "references", "category"]


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


def md_escape(text: str) -> str:
    """``text`` literal in Markdown: punctuation backslash-escaped, ``<>&`` as entities (no raw HTML),
    newlines as spaces."""
    out = []
    for ch in str(text):
        if ch in "<>&":
            out.append({"<": "&lt;", ">": "&gt;", "&": "&amp;"}[ch])
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        elif ch in "\r\n\t":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    if p == 0:
        return "<1e-300"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"


def fmt_diff(v: float | None) -> str:
    return "-" if v is None else ("+" if v > 0 else "") + fmt_value(v)


def metric_cells(name: str, row: dict[str, Any]) -> list[str]:
    ci = "-" if row["ci_low"] is None else f"[{fmt_diff(row['ci_low'])}, {fmt_diff(row['ci_high'])}]"
    test = row["test"] or "-"
    if row.get("n_resamples"):
        test += f" ({'all ' if row.get('exact_enumeration') else ''}{row['n_resamples']} resamples)"
    return [name, fmt_value(row["base"]), fmt_value(row["candidate"]), fmt_diff(row["difference"]), ci, test,
            fmt_p(row["p_value"]), fmt_p(row["p_value_holm"]), row["verdict"] or "-"]


def _fmt_cost(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if key == "n_parameters":
        return fmt_params(v)
    if key == "weights_bytes":
        return f"{v / 2**20:,.2f} MB"
    return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.1f}"


def cost_rows(cost: dict[str, Any]) -> list[list[str]]:
    """Rows of what differs in cost; a row is left out when neither run recorded it."""
    labels = {"model_load_s": "model load s", "wall_s": "wall s", "n_parameters": "parameters",
              "weights_bytes": "weights on disk", "samples_per_s": "samples/s", "peak_rss_mb": "peak RSS MB",
              "peak_gpu_mb": "peak GPU MB"}
    rows = []
    entries = [(labels[k], k, v) for k, v in cost["run"].items()]
    for task, per in cost["tasks"].items():
        entries += [(f"{task}: {labels[k]}", k, v) for k, v in per.items()]
    for label, key, v in entries:
        if v["base"] is None and v["candidate"] is None:
            continue
        diff = v["difference"]
        if diff is None:
            diff_text = "-"
        elif key == "n_parameters":
            diff_text = ("+" if diff > 0 else "-" if diff < 0 else "") + fmt_params(abs(diff))
        else:
            diff_text = ("+" if diff > 0 else "") + _fmt_cost(key, diff)
        ratio = "-" if v["ratio"] is None else f"{v['ratio']:.3f}x"
        rows.append([label, _fmt_cost(key, v["base"]), _fmt_cost(key, v["candidate"]), diff_text, ratio])
    for key, v in cost["model"].items():
        if v["base"] != v["candidate"] or key in ("quantization", "sparsity", "dtype"):
            rows.append([key, _short(v["base"]), _short(v["candidate"]), "", ""])
    return rows


def _short(v: Any, n: int = 60) -> str:
    text = "-" if v is None else str(v)
    return text if len(text) <= n else text[:n - 1] + "…"


def flip_summary(entry: dict[str, Any]) -> str:
    f = entry["flips"]
    if f["metric"] is None:
        return f"flips: {f['rule']}"
    text = f"flips ({f['rule']}): {f['to_correct']} wrong→right, {f['to_wrong']} right→wrong"
    for field, table in f["by_category"].items():
        parts = [f"{v} +{c['to_correct']}/−{c['to_wrong']}" for v, c in table.items()]
        text += f"; by {field}: " + ", ".join(parts)
    return text


def flip_cells(item: dict[str, Any]) -> list[str]:
    def said(side: dict[str, Any]) -> str:
        text = side["error"] and f"error: {side['error']}" or str(side["prediction"] if side["prediction"] is not None
                                                                   else side["raw_output"])
        return f"{_short(text)} ({fmt_value(side['score'])})"

    question = item["question"] if item["question"] is not None else f"(prompt {item['prompt_hash']})"
    category = ", ".join(f"{k}={v}" for k, v in item["meta"].items() if k != "image_id")
    return [item["id"], _short(question, 100), said(item["base"]), said(item["candidate"]),
            _short("; ".join(item["references"]), 100), category]


def title(result: dict[str, Any], label: str) -> str:
    b, c = result["base"], result["candidates"][label]["model"]
    return f"{c['name']} ({c['run']}) vs base {b['name']} ({b['run']})"


def legend(result: dict[str, Any]) -> str:
    s = result["settings"]
    return (f"Differences are candidate − base. {int(s['level'] * 100)}% intervals: paired bootstrap over images "
            f"({s['n_boot']} resamples, seed {s['seed']}). Tests: exact McNemar for 0/1 per-sample outcomes; paired "
            f"sign-flip permutation over images for graded scores; approximate randomization of corpus BLEU over "
            f"images; no test for counts, diagnostics and other corpus statistics. {s['multiple_testing']}; "
            f"verdict at Holm-adjusted p < {s['alpha']}, by each metric's recorded direction.")


# ------------------------------------------------------------------ Markdown

def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return lines + [""]


def to_markdown(result: dict[str, Any], *, max_flips: int = 20) -> str:
    lines = ["# Comparison", "", md_escape(legend(result)), ""]
    for label, entry in result["candidates"].items():
        lines += [f"## {md_escape(title(result, label))}", ""]
        if entry["relation"]:
            lines += [f"> {md_escape(entry['relation'])}", ""]
        for task, t in entry["tasks"].items():
            lines += [f"### {md_escape(task)} (n = {t['n']}, fingerprint {t['fingerprint_hash']})", ""]
            lines += [f"> {md_escape(n)}" for n in t["notes"]] + ([""] if t["notes"] else [])
            lines += _md_table(METRIC_HEADER, [metric_cells(m, r) for m, r in t["metrics"].items()])
            notes = [f"{m}: {n}" for m, r in t["metrics"].items() for n in r["notes"]]
            lines += [f"- {md_escape(n)}" for n in notes] + ([""] if notes else [])
            lines += [md_escape(flip_summary(t)), ""]
            for kind, heading in (("to_wrong", "Right → wrong"), ("to_correct", "Wrong → right")):
                items = t["flips"]["items"][kind]
                if items:
                    more = t["flips"][kind] - min(len(items), max_flips)
                    lines += [f"**{heading}**" + (f" (first {min(len(items), max_flips)}; {more} more in "
                                                  "compare.json / compare.html)" if more > 0 else ""), ""]
                    lines += _md_table(FLIP_HEADER, [flip_cells(it) for it in items[:max_flips]])
        if entry["refused"]:
            lines += ["### Not compared", ""]
            lines += [f"- {md_escape(task)}: {md_escape('; '.join(r['reasons']))}" for task, r in entry["refused"].items()]
            lines.append("")
        for key, what in (("only_in_base", "only in the base"), ("only_in_candidate", "only in the candidate")):
            if entry[key]:
                lines += [f"Tasks {what}: {md_escape(', '.join(entry[key]))}", ""]
        lines += ["### Cost", ""] + _md_table(COST_HEADER, cost_rows(entry["cost"]))
    return "\n".join(lines)


# ------------------------------------------------------------------ terminal

#: short test names for narrow terminals (Markdown, HTML and JSON keep the full ones)
_TERMINAL_TEST = {"mcnemar-exact": "McNemar", "sign-flip": "sign-flip", "randomization-bleu": "random.",
                  "none (count or diagnostic)": "- (count)", "none (corpus statistic)": "- (corpus)",
                  "none (no per-sample values)": "- (no data)"}


def print_terminal(result: dict[str, Any], console: Any) -> None:
    """Tables on ``console`` (a rich Console): per candidate, per task, metrics, flips, refusals, cost."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    for label, entry in result["candidates"].items():
        console.rule(escape(title(result, label)))
        if entry["relation"]:
            console.print(escape(entry["relation"]), style="cyan")
        for task, t in entry["tasks"].items():
            grid = Table(title=escape(f"{task} (n = {t['n']})"), title_justify="left", box=box.SIMPLE_HEAD,
                         pad_edge=False)
            for i, h in enumerate(METRIC_HEADER):
                grid.add_column(h, justify="left" if i in (0, 5, 8) else "right", no_wrap=i == 0)
            for m, r in t["metrics"].items():
                cells = [escape(c) for c in metric_cells(m, r)]
                cells[5] = escape(_TERMINAL_TEST.get(r["test"] or "", r["test"] or "-"))
                if r.get("n_resamples"):
                    cells[5] += f" ({r['n_resamples']})"
                style = {"better": "green", "worse": "red"}.get(r["verdict"] or "")
                if style:
                    cells[-1] = f"[{style}]{cells[-1]}[/]"
                grid.add_row(*cells)
            console.print(grid)
            for note in t["notes"] + [f"{m}: {n}" for m, r in t["metrics"].items() for n in r["notes"]]:
                console.print(f"  [dim]{escape(note)}[/]", highlight=False)
            console.print("  " + escape(flip_summary(t)), highlight=False)
        for task, r in entry["refused"].items():
            console.print(f"[yellow]not compared[/] {escape(task)}: {escape('; '.join(r['reasons']))}", highlight=False)
        cost = Table(title="cost", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for i, h in enumerate(COST_HEADER):
            cost.add_column(h, justify="left" if i == 0 else "right")
        for row in cost_rows(entry["cost"]):
            cost.add_row(*(escape(c) for c in row))
        console.print(cost)
    console.print(f"[dim]{escape(legend(result))}[/]", highlight=False)


def json_view(result: dict[str, Any]) -> dict[str, Any]:
    """What ``--json`` prints and ``compare.json`` holds: the result without the thumbnails."""
    return {k: v for k, v in result.items() if k != "thumbnails"}


def finite(obj: Any) -> Any:
    """``obj`` with non-finite floats as None (JSON has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj
