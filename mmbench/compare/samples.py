"""Read a task's predictions file into aligned per-sample arrays for a comparison.

A predictions line (``predictions/<task>.jsonl``, gzipped on published boards) is
``{"id", "prompt_hash", "raw_output", "prediction", "references", "scores": {metric: value},
"error", "meta": {"image_id", "answer_type", ...}}``.  :func:`read_predictions` keeps, per
line, everything a flipped-item report shows, and every per-sample score as a column.
Reading is bounded as the leaderboard's is (file size, line length); a malformed line
raises :class:`~mmbench.errors.DataError` naming file and line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import DataError
from mmbench.leaderboard.load import line_id, prediction_lines, predictions_path, unit_of
from mmbench.results import kind

MAX_SHOWN_CHARS = 2000  # one prediction or reference as kept for a report


@dataclass
class TaskSamples:
    """One run's lines of one task: ``ids[i]`` on unit ``units[i]`` (``meta.image_id``, else the id);
    ``scores[key][i]`` is NaN where line ``i`` has no value for ``key``; ``lines[i]`` the rest."""

    path: Path
    ids: list[str]
    units: list[str]
    scores: dict[str, np.ndarray]
    lines: list[dict[str, Any]] = field(repr=False)

    def column(self, key: str, index: np.ndarray) -> np.ndarray | None:
        col = self.scores.get(key)
        return None if col is None else col[index]


def predictions_file(path: Path | None) -> Path | None:
    """``path`` or its ``.gz`` form, whichever exists, or None (the leaderboard's rule)."""
    return predictions_path(path)


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        return value[:MAX_SHOWN_CHARS] + "…"
    return value


def read_predictions(path: Path | None) -> TaskSamples | None:
    """The task's lines, or None when the file (and its ``.gz``) is absent."""
    found = predictions_file(path)
    if found is None:
        return None
    ids: list[str] = []
    units: list[str] = []
    columns: dict[str, list[float]] = {}
    lines: list[dict[str, Any]] = []
    # one bounded, line-numbered reader for every predictions file (mmbench.leaderboard.load)
    for where, obj in prediction_lines(found):
        sid = line_id(obj, where)
        meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
        scores = obj.get("scores") or {}
        if not isinstance(scores, dict):
            raise DataError(f"expected an object, got {kind(scores)}", source=where, field="scores")
        row = len(ids)
        for key, value in scores.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise DataError(f"expected a number, got {kind(value)}", source=where, field=f"scores.{key}")
            col = columns.setdefault(str(key), [math.nan] * row)
            col.append(math.nan if value is None else float(value))
        for col in columns.values():
            if len(col) == row:
                col.append(math.nan)
        ids.append(sid)
        units.append(unit_of(obj, sid))
        refs = obj.get("references")
        lines.append({"prompt_hash": obj.get("prompt_hash"), "raw_output": _short(obj.get("raw_output")),
                      "prediction": _short(obj.get("prediction")), "error": _short(obj.get("error")),
                      "references": [_short(r) for r in refs[:20]] if isinstance(refs, list) else [],
                      "n_references": len(refs) if isinstance(refs, list) else 0,
                      "meta": {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}})
    if len(set(ids)) != len(ids):
        raise DataError("duplicate sample ids", source=str(found))
    return TaskSamples(path=found, ids=ids, units=units, lines=lines,
                       scores={k: np.asarray(v, dtype=float) for k, v in columns.items()})


def subset_rows(samples: TaskSamples, key: str, reported: float) -> tuple[str, np.ndarray] | None:
    """Per-sample values behind a per-category corpus key such as ``exact_match/shape`` (the mean of
    ``exact_match`` over the samples whose meta field is ``shape``), found by matching the
    reported value: ``(per-sample key, boolean mask)``, or None when no meta field explains it.

    Categories are a metric's own breakdown (VQA's answer and question types); the lines carry
    the field the metric grouped by, but not its name, so each string meta field is tried.
    """
    for cut in range(len(key) - 1, 0, -1):  # longest per-sample prefix first: "a/b/c" -> "a/b" + "c"
        if key[cut] != "/" or key[:cut] not in samples.scores:
            continue
        base_key, category = key[:cut], key[cut + 1:]
        values = samples.scores[base_key]
        fields = {f for line in samples.lines for f, v in line["meta"].items() if isinstance(v, str)}
        for f in sorted(fields):
            mask = np.fromiter((line["meta"].get(f) == category for line in samples.lines), dtype=bool,
                               count=len(samples.lines))
            picked = values[mask]
            picked = picked[~np.isnan(picked)]
            if picked.size and math.isclose(float(picked.mean()), reported, rel_tol=1e-9, abs_tol=1e-12):
                return base_key, mask
    return None
