"""Read and validate results files (``results.json``) and their per-sample scores.

A leaderboard reads files written by other people's runs, so every field it uses is
checked before anything is built: ``load_run(path)`` either returns a complete
:class:`Run` or raises :class:`~mmbench.errors.DataError` naming the file and the field.
Nothing is half-read: NaN/Infinity tokens, numbers that overflow to ``inf``, wrong types,
oversized files and prediction paths that leave the run folder are all rejected.

``path`` may be a ``results.json`` file, a run folder that contains one, or a folder of
run folders (each ``*/results.json`` one level down).
"""

from __future__ import annotations

import gzip

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Any, Iterable

from mmbench.errors import DataError

SUPPORTED_SCHEMA = 1
MAX_RESULTS_BYTES = 16 * 2**20       # a results.json is a few KB per task
MAX_PREDICTIONS_BYTES = 2 * 2**30    # VQAv2 val (214k questions) is a few hundred MB
MAX_NAME_CHARS = 500
MAX_TASKS = 1000
MAX_METRICS = 500


@dataclass(frozen=True)
class TaskEntry:
    """One task of one run: the fields a leaderboard uses, already type-checked."""

    task: str
    family: str
    fingerprint: dict[str, Any]
    fingerprint_hash: str
    limit: int | None
    metrics: dict[str, float]
    n_samples: int
    n_failed: int
    samples_per_s: float | None
    peak_rss_mb: float | None
    peak_gpu_mb: float | None
    warnings: tuple[str, ...]
    predictions: Path | None  # absolute path inside the run folder, or None when not recorded


@dataclass(frozen=True)
class Run:
    """One validated results file."""

    path: Path           # the results.json
    run_id: str          # the run folder's name
    model: str
    n_parameters: int | None
    created: str | None
    tasks: dict[str, TaskEntry] = field(default_factory=dict)
    #: library versions the run used (``environment.torch`` / ``.transformers``), where recorded
    libraries: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SampleScores:
    """Per-sample scores of one task: ``ids[i]`` belongs to unit (image) ``units[i]``;
    ``scores[metric][i]`` is NaN where the line has no value for that metric."""

    ids: list[str]
    units: list[str]
    scores: dict[str, Any]  # metric -> numpy float array, aligned with ids


# ------------------------------------------------------------------ JSON parsing

def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not allowed (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows to infinity")
    return value


def parse_json_strict(text: str) -> Any:
    """``json.loads`` that rejects NaN, Infinity and numbers overflowing to inf."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _read_limited(path: Path, limit: int) -> str:
    size = path.stat().st_size
    if size > limit:
        raise DataError(f"file is {size / 2**20:.1f} MB, more than the {limit / 2**20:.0f} MB allowed",
                        source=str(path))
    with path.open("rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:  # grew while reading
        raise DataError("file is larger than allowed", source=str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None


# ------------------------------------------------------------------ field checks

class _Checker:
    """Type checks that raise ``DataError(source=file, field=dotted.path)``."""

    def __init__(self, source: Path):
        self.source = str(source)

    def fail(self, where: str, message: str) -> None:
        raise DataError(message, source=self.source, field=where)

    def get(self, obj: dict, key: str, where: str, *, required: bool = True) -> Any:
        if key not in obj:
            if required:
                self.fail(f"{where}.{key}".lstrip("."), "missing")
            return None
        return obj[key]

    def dict_(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected an object, got {_kind(value)}")
        return value

    def str_(self, value: Any, where: str, *, optional: bool = False, max_chars: int = MAX_NAME_CHARS) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            self.fail(where, f"expected a string, got {_kind(value)}")
        if len(value) > max_chars:
            self.fail(where, f"string of {len(value)} characters, more than {max_chars}")
        return value

    def number(self, value: Any, where: str, *, optional: bool = False, minimum: float | None = None) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):
            self.fail(where, "not a finite number")
        if minimum is not None and value < minimum:
            self.fail(where, f"must be at least {minimum}, got {value}")
        return float(value)

    def count(self, value: Any, where: str, *, optional: bool = False) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, f"expected a whole number >= 0, got {_kind(value)} {str(value)[:40]}")
        return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


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


def load_run(path: str | Path) -> Run:
    """Read and validate one results file (or a run folder holding ``results.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    text = _read_limited(path, MAX_RESULTS_BYTES)
    try:
        data = parse_json_strict(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                        source=str(path)) from None
    except (ValueError, RecursionError) as exc:
        raise DataError(f"not valid JSON ({str(exc)[:200]})", source=str(path)) from None
    return validate_results(data, path)


def validate_results(data: Any, path: Path) -> Run:
    """Check every field the leaderboard uses; return a :class:`Run`."""
    c = _Checker(path)
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object at the top level, got {_kind(data)}", source=str(path))
    version = c.get(data, "schema_version", "")
    if isinstance(version, bool) or version != SUPPORTED_SCHEMA:
        c.fail("schema_version", f"unsupported schema version {str(version)[:40]!s} (this mmbench reads "
                                 f"version {SUPPORTED_SCHEMA})")
    model = c.dict_(c.get(data, "model", ""), "model")
    name = c.str_(c.get(model, "name", "model"), "model.name")
    if not name.strip():
        c.fail("model.name", "empty")
    n_params = c.count(model.get("n_parameters"), "model.n_parameters", optional=True)
    created = c.str_(data.get("created"), "created", optional=True, max_chars=100)
    env = data.get("environment") if isinstance(data.get("environment"), dict) else {}
    libraries = tuple((lib, c.str_(env.get(lib), f"environment.{lib}", max_chars=100))
                      for lib in ("torch", "transformers") if env.get(lib) is not None)
    tasks_raw = c.dict_(c.get(data, "tasks", ""), "tasks")
    if not tasks_raw:
        c.fail("tasks", "no tasks")
    if len(tasks_raw) > MAX_TASKS:
        c.fail("tasks", f"{len(tasks_raw)} tasks, more than {MAX_TASKS}")
    run_dir = path.resolve().parent
    tasks = {}
    for task_name, raw in tasks_raw.items():
        c.str_(task_name, "tasks")
        tasks[task_name] = _validate_task(c, task_name, raw, run_dir)
    return Run(path=path, run_id=run_dir.name, model=name, n_parameters=n_params, created=created, tasks=tasks,
               libraries=libraries)


def _validate_task(c: _Checker, name: str, raw: Any, run_dir: Path) -> TaskEntry:
    w = f"tasks.{name}"
    t = c.dict_(raw, w)
    family = c.str_(c.get(t, "family", w), f"{w}.family")
    fp = c.dict_(c.get(t, "fingerprint", w), f"{w}.fingerprint")
    fp_hash = c.str_(c.get(fp, "hash", f"{w}.fingerprint"), f"{w}.fingerprint.hash", max_chars=128)
    limit = c.count(fp.get("limit"), f"{w}.fingerprint.limit", optional=True)
    metrics_raw = c.dict_(c.get(t, "metrics", w), f"{w}.metrics")
    if len(metrics_raw) > MAX_METRICS:
        c.fail(f"{w}.metrics", f"{len(metrics_raw)} metrics, more than {MAX_METRICS}")
    metrics = {}
    for metric, value in metrics_raw.items():
        c.str_(metric, f"{w}.metrics")
        metrics[metric] = c.number(value, f"{w}.metrics.{metric}")
    n_samples = c.count(c.get(t, "n_samples", w), f"{w}.n_samples")
    n_failed = c.count(t.get("n_failed", 0), f"{w}.n_failed")
    timing = c.dict_(t.get("timing", {}), f"{w}.timing")
    sps = c.number(timing.get("samples_per_s"), f"{w}.timing.samples_per_s", optional=True, minimum=0)
    memory = c.dict_(t.get("memory", {}) or {}, f"{w}.memory")
    rss = c.number(memory.get("peak_rss_mb"), f"{w}.memory.peak_rss_mb", optional=True, minimum=0)
    gpu = c.number(memory.get("peak_gpu_mb"), f"{w}.memory.peak_gpu_mb", optional=True, minimum=0)
    warnings = t.get("warnings", [])
    if not isinstance(warnings, list):
        c.fail(f"{w}.warnings", f"expected a list, got {_kind(warnings)}")
    for i, item in enumerate(warnings):
        c.str_(item, f"{w}.warnings[{i}]", max_chars=10_000)
    pred = c.str_(t.get("predictions"), f"{w}.predictions", optional=True, max_chars=1000)
    pred_path = None
    if pred is not None:
        pred_path = (run_dir / pred).resolve()
        if Path(pred).is_absolute() or not pred_path.is_relative_to(run_dir):
            c.fail(f"{w}.predictions", "must be a path inside the run folder")
    return TaskEntry(task=name, family=family, fingerprint=fp, fingerprint_hash=fp_hash, limit=limit,
                     metrics=metrics, n_samples=n_samples, n_failed=n_failed, samples_per_s=sps, peak_rss_mb=rss,
                     peak_gpu_mb=gpu, warnings=tuple(warnings), predictions=pred_path)


def load_runs(paths: Iterable[str | Path], *, skip_invalid: bool = False) -> tuple[list[Run], list[tuple[str, str]]]:
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


def _predictions_path(entry: TaskEntry) -> Path | None:
    """The task's predictions file, or its gzipped form (published boards keep those), or None."""
    if entry.predictions is None:
        return None
    if entry.predictions.is_file():
        return entry.predictions
    gz = entry.predictions.with_name(entry.predictions.name + ".gz")
    return gz if gz.is_file() else None


def _prediction_lines(path: Path) -> Iterator[tuple[str, dict]]:
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


def _unit_of(obj: dict, sid: str) -> str:
    meta = obj.get("meta") or {}
    unit = meta.get("image_id") if isinstance(meta, dict) else None
    return str(unit) if isinstance(unit, (str, int)) and not isinstance(unit, bool) else sid


def _line_id(obj: dict, where: str) -> str:
    sid = obj.get("id")
    if not isinstance(sid, (str, int)) or isinstance(sid, bool):
        raise DataError("missing or non-string id", source=where, field="id")
    return str(sid)


def load_caption_pairs(entry: TaskEntry) -> tuple[list[str], list[str], list[str], list[list[str]]] | None:
    """``(ids, units, predictions, references)`` of the scored lines of a captioning predictions
    file (a recorded failure counts as an empty caption, as when it was scored; lines without
    references were not scored and are skipped), or None without a file or with a line that
    lacks the fields."""
    path = _predictions_path(entry)
    if path is None:
        return None
    ids: list[str] = []
    units: list[str] = []
    preds: list[str] = []
    refs: list[list[str]] = []
    for where, obj in _prediction_lines(path):
        sid = _line_id(obj, where)
        references = obj.get("references")
        if not references:
            continue
        prediction = obj.get("prediction")
        if not isinstance(references, list) or not all(isinstance(r, str) for r in references) \
                or not (prediction is None or isinstance(prediction, str)):
            return None
        ids.append(sid)
        units.append(_unit_of(obj, sid))
        preds.append(prediction or "")
        refs.append(references)
    return ids, units, preds, refs


def load_sample_scores(entry: TaskEntry, metrics: Iterable[str]) -> SampleScores | None:
    """Per-sample scores of ``metrics`` from the task's predictions file, or None if it is absent.

    The resampling unit is ``meta.image_id`` when the line has it (several questions on
    one image move together), else the sample id.  A malformed line raises ``DataError``
    naming file and line.
    """
    import numpy as np

    path = _predictions_path(entry)
    if path is None:
        return None
    wanted = list(metrics)
    ids: list[str] = []
    units: list[str] = []
    columns: dict[str, list[float]] = {m: [] for m in wanted}
    for where, obj in _prediction_lines(path):
        sid = _line_id(obj, where)
        scores = obj.get("scores") or {}
        if not isinstance(scores, dict):
            raise DataError(f"expected an object, got {_kind(scores)}", source=where, field="scores")
        ids.append(sid)
        units.append(_unit_of(obj, sid))
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
