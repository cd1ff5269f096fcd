"""``mmbench score winoground`` and ``mmbench score caption-choice``: compositionality scores from
saved per-sample scores (a run's ``predictions/<task>.scores.jsonl``, or your own)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mmbench.errors import DataError
from mmbench.scoring.readers import _rows
from mmbench.types import MetricValues

WINOGROUND_JSON_KEYS = ("text_score", "image_score", "group_score")


def _number(obj: dict, key: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{key} must be a finite number, got {value!r}", source=where, field=key)
    return float(value)


def _unique_id(obj: dict, where: str, seen: dict[str, str]) -> str:
    value = obj.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"id must be a string or integer, got {value!r}", source=where, field="id")
    sid = str(value)
    if sid in seen:
        raise DataError(f"duplicate id {sid!r} (also at {seen[sid]})", source=where, field="id")
    seen[sid] = where
    return sid


def score_winoground_files(scores: str | Path) -> MetricValues:
    """Winoground text/image/group scores from JSON lines ``{"id", "c0_i0", "c0_i1", "c1_i0", "c1_i1"[, "tag"]}``
    (caption j with image k; higher = better match; strict inequalities, so a tie fails)."""
    from mmbench.metrics.compositionality import WINOGROUND_KEYS, score_winoground

    rows = _rows(scores, "Winoground scores")
    if not rows:
        raise DataError("no lines", source=str(scores))
    seen: dict[str, str] = {}
    preds, tags = [], []
    for where, obj in rows:
        _unique_id(obj, where, seen)
        preds.append({k: _number(obj, k, where) for k in WINOGROUND_KEYS})
        tags.append(obj.get("tag"))
    return score_winoground(preds, tags=tags if any(t is not None for t in tags) else None)


def score_caption_choice_files(scores: str | Path, *, min_group_count: int = 0,
                               exclude_groups: tuple[str, ...] = ()) -> MetricValues:
    """Caption-choice accuracy from JSON lines ``{"id", "scores": [...], "correct"?, "group"?, "split"?}``
    (scores in the official option order; ``correct`` the right caption's index, default 0)."""
    from mmbench.metrics.compositionality import score_caption_choice

    rows = _rows(scores, "caption-choice scores")
    if not rows:
        raise DataError("no lines", source=str(scores))
    seen: dict[str, str] = {}
    preds: list[list[float]] = []
    correct: list[Any] = []
    groups: list[Any] = []
    splits: list[Any] = []
    for where, obj in rows:
        _unique_id(obj, where, seen)
        values = obj.get("scores")
        if not isinstance(values, list) or len(values) < 2:
            raise DataError(f"scores must be a list of at least 2 numbers, got {values!r}", source=where,
                            field="scores")
        preds.append([_number({"scores": v}, "scores", where) for v in values])
        index = obj.get("correct", 0)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(values):
            raise DataError(f"correct must be an index into scores (0..{len(values) - 1}), got {index!r}",
                            source=where, field="correct")
        correct.append(index)
        groups.append(obj.get("group"))
        splits.append(obj.get("split"))
    return score_caption_choice(preds, correct=correct, groups=groups if any(g is not None for g in groups) else None,
                                splits=splits if any(s is not None for s in splits) else None,
                                min_group_count=min_group_count, exclude_groups=exclude_groups)
