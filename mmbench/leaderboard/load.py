"""Read and validate results files (``results.json``) and their per-sample scores.

A leaderboard reads files written by other people's runs, so every field it uses is
checked before anything is built: ``load_run(path)`` either returns a complete
:class:`~mmbench.results.RunResult` (the one results model, checked by its ``from_json``)
or raises :class:`~mmbench.errors.DataError` naming the file and the field.  Nothing is
half-read: NaN/Infinity tokens, numbers that overflow to ``inf``, wrong types, oversized
files and prediction paths that leave the run folder are all rejected.  Predictions files
are read line by line with every line bounded.

``path`` may be a ``results.json`` file, a run folder that contains one, or a folder of
run folders (each ``*/results.json`` one level down).
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from mmbench.errors import DataError
from mmbench.results import RunResult, kind as _kind, parse_json_strict

MAX_PREDICTIONS_BYTES = 2 * 2**30    # VQAv2 val (214k questions) is a few hundred MB

@dataclass(frozen=True)
class SampleScores:
    """Per-sample scores of one task: ``ids[i]`` belongs to unit (image) ``units[i]``;
    ``scores[metric][i]`` is NaN where the line has no value for that metric."""

    ids: list[str]
    units: list[str]
    scores: dict[str, Any]  # metric -> numpy float array, aligned with ids


# ------------------------------------------------------------------ loading

def resolve_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Expand arguments into results files: a file, a run folder, or a folder of run folders."""
    found: list[Path] = []
    for arg in paths:
        p = Path(arg)
        if p.is_file():
            found.append(p)
        elif (p / "results.json").is_file():
            found.append(p / "results.json")
        elif p.is_dir():
            inner = sorted(p.glob("*/results.json"))
            if not inner:
                raise DataError("no results.json in this folder or its sub-folders", source=str(p))
            found.extend(inner)
        else:
            raise DataError("no such file or folder", source=str(p))
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def load_run(path: str | Path) -> RunResult:
    """Read and validate one results file (or a run folder holding ``results.json``)."""
    return RunResult.load(path)


def load_runs(paths: Iterable[str | Path], *, skip_invalid: bool = False) -> tuple[list[RunResult], list[tuple[str, str]]]:
    """Load every results file under ``paths``.

    Returns ``(runs, rejected)``; ``rejected`` lists ``(path, reason)``.  Without
    ``skip_invalid`` the first invalid file raises ``DataError`` instead.
    """
    runs, rejected = [], []
    for path in resolve_paths(paths):
        try:
            runs.append(load_run(path))
        except DataError as exc:
            if not skip_invalid:
                raise
            rejected.append((str(path), str(exc)))
    return runs, rejected


def predictions_path(predictions: Path | None) -> Path | None:
    """The task's predictions file, or its gzipped form (published boards keep those), or None."""
    if predictions is None:
        return None
    if predictions.is_file():
        return predictions
    gz = predictions.with_name(predictions.name + ".gz")
    return gz if gz.is_file() else None


def prediction_lines(path: Path) -> Iterator[tuple[str, dict]]:
    """``(where, object)`` per non-blank line; size-bounded (also what a .gz may expand to), and
    so is each line, while it is read (``MAX_LINE_CHARS``); a malformed line raises ``DataError``
    naming file and line."""
    from mmbench.io import MAX_LINE_CHARS, bounded_lines

    size = path.stat().st_size
    if size > MAX_PREDICTIONS_BYTES:
        raise DataError(f"file is {size / 2**20:.0f} MB, more than allowed", source=str(path))
    opened = (gzip.open(path, "rt", encoding="utf-8", errors="strict") if path.suffix == ".gz"
              else path.open(encoding="utf-8", errors="strict"))
    read = 0
    with opened as fh:
        for lineno, line in bounded_lines(fh, str(path), MAX_LINE_CHARS):
            read += len(line)
            if read > MAX_PREDICTIONS_BYTES:
                raise DataError(f"more than {MAX_PREDICTIONS_BYTES // 2**20} MB of predictions", source=str(path))
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = parse_json_strict(line)
            except (ValueError, RecursionError) as exc:
                raise DataError(f"invalid JSON ({str(exc)[:200]})", source=where) from None
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object, got {_kind(obj)}", source=where)
            yield where, obj


def unit_of(obj: dict, sid: str) -> str:
    meta = obj.get("meta") or {}
    unit = meta.get("image_id") if isinstance(meta, dict) else None
    return str(unit) if isinstance(unit, (str, int)) and not isinstance(unit, bool) else sid


def line_id(obj: dict, where: str) -> str:
    sid = obj.get("id")
    if not isinstance(sid, (str, int)) or isinstance(sid, bool):
        raise DataError("missing or non-string id", source=where, field="id")
    return str(sid)


def load_caption_pairs(predictions: Path | None) -> tuple[list[str], list[str], list[str], list[list[str]]] | None:
    """``(ids, units, predictions, references)`` of the scored lines of a captioning predictions
    file (a recorded failure counts as an empty caption, as when it was scored; lines without
    references were not scored and are skipped), or None without a file or with a line that
    lacks the fields."""
    path = predictions_path(predictions)
    if path is None:
        return None
    ids: list[str] = []
    units: list[str] = []
    preds: list[str] = []
    refs: list[list[str]] = []
    for where, obj in prediction_lines(path):
        sid = line_id(obj, where)
        references = obj.get("references")
        if not references:
            continue
        prediction = obj.get("prediction")
        if not isinstance(references, list) or not all(isinstance(r, str) for r in references) \
                or not (prediction is None or isinstance(prediction, str)):
            return None
        ids.append(sid)
        units.append(unit_of(obj, sid))
        preds.append(prediction or "")
        refs.append(references)
    return ids, units, preds, refs


def load_sample_scores(predictions: Path | None, metrics: Iterable[str]) -> SampleScores | None:
    """Per-sample scores of ``metrics`` from the task's predictions file, or None if it is absent.

    The resampling unit is ``meta.image_id`` when the line has it (several questions on
    one image move together), else the sample id.  A malformed line raises ``DataError``
    naming file and line.
    """
    import numpy as np

    path = predictions_path(predictions)
    if path is None:
        return None
    wanted = list(metrics)
    ids: list[str] = []
    units: list[str] = []
    columns: dict[str, list[float]] = {m: [] for m in wanted}
    for where, obj in prediction_lines(path):
        sid = line_id(obj, where)
        scores = obj.get("scores") or {}
        if not isinstance(scores, dict):
            raise DataError(f"expected an object, got {_kind(scores)}", source=where, field="scores")
        ids.append(sid)
        units.append(unit_of(obj, sid))
        for m in wanted:
            v = scores.get(m)
            if v is None:
                columns[m].append(math.nan)
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise DataError(f"expected a number, got {_kind(v)}", source=where, field=f"scores.{m}")
            else:
                columns[m].append(float(v))
    if len(set(ids)) != len(ids):
        raise DataError("duplicate sample ids", source=str(path))
    return SampleScores(ids=ids, units=units, scores={m: np.asarray(v, dtype=float) for m, v in columns.items()})
