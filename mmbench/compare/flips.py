"""The samples whose outcome flipped between base and candidate, and their counts per category.

A sample is **right** by the task's *flip metric*: its primary metric when the lines carry it
per sample and higher is better, else the first per-sample key the task ranks higher-is-better.

* binary flip metric (every value 0 or 1: exact match, recall at k): right when the value is 1;
* graded (VQA accuracy, CIDEr-D, CLIPScore): right when the value is greater than
  ``threshold`` (default 0: any credit counts as right; VQA accuracy 0.3 is "one annotator
  agreed").

``to_wrong``: right for the base, not for the candidate; ``to_correct``: the reverse.
Samples without a value in either run are left out.  Categories are the string meta fields
with few distinct values (``answer_type``, ``question_type``, ``phrasing``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.compare.metrics import Pairing
from mmbench.compare.stats import is_binary
from mmbench.results import TaskResult

MAX_CATEGORY_VALUES = 30  # a meta field with more distinct values is an identifier, not a category
NOT_CATEGORIES = {"image_id", "group", "id"}


def flip_metric(base: TaskResult, pair: Pairing) -> str | None:
    """The per-sample key that decides right and wrong (see the module docstring), or None."""
    candidates = [base.primary_metric] + list(base.metrics)
    for key in candidates:
        if key and base.higher_is_better(key) is True and key in pair.base.scores and key in pair.cand.scores \
                and not np.all(np.isnan(pair.base.scores[key])):
            return key
    return None


def find_flips(base: TaskResult, pair: Pairing, *, threshold: float = 0.0, max_items: int = 200) -> dict[str, Any]:
    """``{"metric", "rule", "to_correct", "to_wrong" (counts), "items": {"to_correct": [...],
    "to_wrong": [...]} (at most ``max_items`` each, in the base's order), "truncated", "by_category":
    {field: {value: {"n", "to_correct", "to_wrong"}}}}``; ``metric`` None when no key qualifies."""
    metric = flip_metric(base, pair)
    out: dict[str, Any] = {"metric": metric, "rule": None, "to_correct": 0, "to_wrong": 0,
                           "items": {"to_correct": [], "to_wrong": []}, "truncated": False, "by_category": {}}
    if metric is None:
        out["rule"] = "no per-sample score where higher is better: no flips computed"
        return out
    a, b = pair.base.column(metric, pair.ib), pair.cand.column(metric, pair.ic)
    ok = ~np.isnan(a) & ~np.isnan(b)
    if is_binary(a[ok], b[ok]):
        right_a, right_b = a == 1, b == 1
        out["rule"] = f"right: {metric} = 1"
    else:
        right_a, right_b = a > threshold, b > threshold
        out["rule"] = f"right: {metric} > {threshold:g}"
    to_correct = ok & ~right_a & right_b
    to_wrong = ok & right_a & ~right_b
    out["to_correct"], out["to_wrong"] = int(to_correct.sum()), int(to_wrong.sum())
    for name, mask in (("to_correct", to_correct), ("to_wrong", to_wrong)):
        rows = np.flatnonzero(mask)
        out["truncated"] |= len(rows) > max_items
        out["items"][name] = [_item(pair, int(j), metric, a[j], b[j]) for j in rows[:max_items]]
    out["by_category"] = _by_category(pair, ok, to_correct, to_wrong)
    return out


def _item(pair: Pairing, j: int, metric: str, score_a: float, score_b: float) -> dict[str, Any]:
    la, lb = pair.base.lines[pair.ib[j]], pair.cand.lines[pair.ic[j]]
    return {"id": pair.ids[j], "unit": pair.units[j], "question": None, "prompt_hash": la["prompt_hash"],
            "base": {"prediction": la["prediction"], "raw_output": la["raw_output"], "error": la["error"],
                     "score": float(score_a)},
            "candidate": {"prediction": lb["prediction"], "raw_output": lb["raw_output"], "error": lb["error"],
                          "score": float(score_b)},
            "references": la["references"], "meta": la["meta"]}


def _by_category(pair: Pairing, ok: np.ndarray, to_correct: np.ndarray, to_wrong: np.ndarray) -> dict[str, Any]:
    metas = [pair.base.lines[i]["meta"] for i in pair.ib]
    fields = sorted({f for m in metas for f, v in m.items() if isinstance(v, str) and f not in NOT_CATEGORIES})
    out: dict[str, Any] = {}
    for f in fields:
        values = [m.get(f) if isinstance(m.get(f), str) else "(none)" for m in metas]
        distinct = sorted(set(values))
        if len(distinct) > MAX_CATEGORY_VALUES:
            continue
        table = {}
        for v in distinct:
            sel = np.fromiter((x == v for x in values), dtype=bool, count=len(values)) & ok
            table[v] = {"n": int(sel.sum()), "to_correct": int((sel & to_correct).sum()),
                        "to_wrong": int((sel & to_wrong).sum())}
        out[f] = table
    return out
