"""The results model: one typed :class:`RunResult` (``results.json``) of :class:`TaskResult` entries.

Every reader and writer of results files goes through these classes: the runner builds
and writes them (:meth:`RunResult.to_json`), the CLI prints them, and leaderboards and
comparisons read them back with :meth:`RunResult.load` / :meth:`RunResult.from_json`,
which check every field (types, finite numbers, sizes, prediction paths that stay inside
the run folder) and raise :class:`~mmbench.errors.DataError` naming the file and the
field.  Nothing is half-read.

``results.json`` (schema version 2)::

    {
      "schema_version": 2, "mmbench_version": "0.1.0", "created": "...",
      "config": {...the resolved EvalConfig...},
      "model": {"name", "fingerprint": {"adapter", "hash", "weights_sha256" | "revision",
                                        "quantization"?, "base_model"? (a LoRA's base), ...},
                "device", "dtype", "n_parameters", "sparsity"},
      "environment": {"python", "torch", "transformers", ...}, "seed": 0,
      "n_processes": 1, "torch_threads": 2, "timing": {"model_load_s", "wall_s"}, "cache": "...",
      "tasks": {
        "<task>": {"family", "fingerprint": {"hash", "version", "prompt", "generation", "dataset",
                   "sample_ids_hash", "metrics", "metric_versions", ...},
                   "n_samples", "n_failed", "n_scored", "n_requests", "n_computed", "n_cached",
                   "metrics": {"CIDEr-D": 0.93, ...}, "metrics_unavailable": {"SPICE": "reason"},
                   "metric_backends": {"CIDEr-D": {"tokenizer": "ptb-python", ...}},
                   "metric_info": {"CIDEr-D": {"metric": "coco-caption", "higher_is_better": true,
                                               "aggregation": "mean"}, ...},
                   "primary_metric": "CIDEr-D",
                   "warnings": [...], "failures": [{"id", "error"}], "batch_size", "batch_size_requested",
                   "timing": {"wall_s", "inference_s", "model_s", "data_wait_s", "score_s",
                              "samples_per_s", "requests_per_s"},
                   "memory": {"peak_rss_mb", "peak_rss_scope", "peak_gpu_mb"?},
                   "batch_invariance"?: {...}, "predictions": "predictions/<task>.jsonl",
                   "failures_file"?: "failures/<task>.jsonl", "artifacts"?: [...]}
      }
    }

Metric values are on their implementation's native scale (pycocoevalcap's 0-1 for
captioning, CIDEr-D 0-10).  Schema 1 files (before ``metric_info`` and
``primary_metric``) are still read: their directions come from the specs of the metrics
their fingerprint names (``fingerprint.metrics``), or of the built-in metrics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import DataError
from mmbench.types import MetricValues, SampleRecord

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
MAX_RESULTS_BYTES = 16 * 2**20  # a results.json is a few KB per task
MAX_NAME_CHARS = 500
MAX_TASKS = 1000
MAX_METRICS = 500


def record_to_json(record: SampleRecord) -> dict[str, Any]:
    """One predictions line: id, prompt hash, raw output, parsed prediction, references, scores, error."""
    return {
        "id": record.id,
        "prompt_hash": record.prompt_hash,
        "raw_output": record.raw_output,
        "prediction": record.prediction,
        "references": list(record.references),
        "scores": {k: float(v) for k, v in record.scores.items()},
        "error": record.error,
        **({"meta": dict(record.meta)} if record.meta else {}),
    }


# ------------------------------------------------------------------ strict JSON and field checks

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


def kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


class Checker:
    """Type checks that raise ``DataError(source=file, field=dotted.path)``."""

    def __init__(self, source: Any):
        self.source = str(source)

    def fail(self, where: str, message: str) -> None:
        raise DataError(message, source=self.source, field=where)

    def get(self, obj: dict, key: str, where: str, *, required: bool = True) -> Any:
        if key not in obj:
            if required:
                self.fail(f"{where}.{key}".lstrip("."), "missing")
            return None
        return obj[key]

    def dict_(self, value: Any, where: str, *, optional: bool = False) -> dict:
        if value is None and optional:
            return {}
        if not isinstance(value, dict):
            self.fail(where, f"expected an object, got {kind(value)}")
        return value

    def list_(self, value: Any, where: str, *, optional: bool = False) -> list:
        if value is None and optional:
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected a list, got {kind(value)}")
        return value

    def str_(self, value: Any, where: str, *, optional: bool = False, max_chars: int = MAX_NAME_CHARS) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            self.fail(where, f"expected a string, got {kind(value)}")
        if len(value) > max_chars:
            self.fail(where, f"string of {len(value)} characters, more than {max_chars}")
        return value

    def number(self, value: Any, where: str, *, optional: bool = False, minimum: float | None = None) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, f"expected a number, got {kind(value)}")
        if not math.isfinite(value):
            self.fail(where, "not a finite number")
        if minimum is not None and value < minimum:
            self.fail(where, f"must be at least {minimum}, got {value}")
        return float(value)

    def count(self, value: Any, where: str, *, optional: bool = False) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, f"expected a whole number >= 0, got {kind(value)} {str(value)[:40]}")
        return value


# ------------------------------------------------------------------ the model

@dataclass
class TaskResult:
    """The scored outcome of one task for one model (one entry of ``results.json``'s ``tasks``)."""

    family: str
    fingerprint: dict[str, Any]
    n_samples: int
    n_failed: int = 0
    n_scored: int | None = None
    n_requests: int | None = None
    n_computed: int | None = None
    n_cached: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_unavailable: dict[str, str] = field(default_factory=dict)
    metric_backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: corpus key -> {"metric", "higher_is_better" (True/False/None: never ranked), "aggregation"}
    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    primary_metric: str | None = None
    warnings: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    batch_size: int | None = None
    batch_size_requested: int | str | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    batch_invariance: dict[str, Any] | None = None
    predictions: str | None = None
    #: every failed sample with its error and, for code errors, the traceback (``failures/<task>.jsonl``)
    failures_file: str | None = None
    artifacts: list[str] = field(default_factory=list)

    # -- what readers use ------------------------------------------------------
    @property
    def fingerprint_hash(self) -> str:
        return str(self.fingerprint.get("hash", ""))

    @property
    def limit(self) -> int | None:
        return self.fingerprint.get("limit")

    @property
    def samples_per_s(self) -> float | None:
        return self.timing.get("samples_per_s")

    @property
    def peak_rss_mb(self) -> float | None:
        return self.memory.get("peak_rss_mb")

    @property
    def peak_gpu_mb(self) -> float | None:
        return self.memory.get("peak_gpu_mb")

    def higher_is_better(self, key: str) -> bool | None:
        """The recorded direction of a corpus key (None: a count or diagnostic, never ranked)."""
        return (self.metric_info.get(key) or {}).get("higher_is_better")

    # -- JSON ------------------------------------------------------------------
    _OPTIONAL_KEYS = ("batch_invariance", "artifacts", "failures_file")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self._OPTIONAL_KEYS and not value:
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, raw: Any, c: Checker, name: str, schema: int) -> "TaskResult":
        """Check one task entry (``c`` names the file); schema-1 entries get their metric
        directions from the metric specs."""
        w = f"tasks.{name}"
        t = c.dict_(raw, w)
        family = c.str_(c.get(t, "family", w), f"{w}.family")
        fp = c.dict_(c.get(t, "fingerprint", w), f"{w}.fingerprint")
        c.str_(c.get(fp, "hash", f"{w}.fingerprint"), f"{w}.fingerprint.hash", max_chars=128)
        c.count(fp.get("limit"), f"{w}.fingerprint.limit", optional=True)
        metrics_raw = c.dict_(c.get(t, "metrics", w), f"{w}.metrics")
        if len(metrics_raw) > MAX_METRICS:
            c.fail(f"{w}.metrics", f"{len(metrics_raw)} metrics, more than {MAX_METRICS}")
        metrics = {}
        for metric, value in metrics_raw.items():
            c.str_(metric, f"{w}.metrics")
            metrics[metric] = c.number(value, f"{w}.metrics.{metric}")
        counts = {k: c.count(t.get(k), f"{w}.{k}", optional=True)
                  for k in ("n_scored", "n_requests", "n_computed", "n_cached")}
        timing = c.dict_(t.get("timing"), f"{w}.timing", optional=True)
        for key in ("samples_per_s", "requests_per_s"):
            c.number(timing.get(key), f"{w}.timing.{key}", optional=True, minimum=0)
        memory = c.dict_(t.get("memory"), f"{w}.memory", optional=True)
        for key in ("peak_rss_mb", "peak_gpu_mb"):
            c.number(memory.get(key), f"{w}.memory.{key}", optional=True, minimum=0)
        warnings = c.list_(t.get("warnings"), f"{w}.warnings", optional=True)
        for i, item in enumerate(warnings):
            c.str_(item, f"{w}.warnings[{i}]", max_chars=10_000)
        unavailable = c.dict_(t.get("metrics_unavailable"), f"{w}.metrics_unavailable", optional=True)
        for key, reason in unavailable.items():
            c.str_(reason, f"{w}.metrics_unavailable.{key}", max_chars=10_000)
        failures = c.list_(t.get("failures"), f"{w}.failures", optional=True)
        for i, item in enumerate(failures):
            c.dict_(item, f"{w}.failures[{i}]")
        pred = c.str_(t.get("predictions"), f"{w}.predictions", optional=True, max_chars=1000)
        failures_file = c.str_(t.get("failures_file"), f"{w}.failures_file", optional=True, max_chars=1000)
        for key, rel in (("predictions", pred), ("failures_file", failures_file)):
            if rel is not None and (Path(rel).is_absolute() or ".." in Path(rel).parts):
                c.fail(f"{w}.{key}", "must be a path inside the run folder")
        info = c.dict_(t.get("metric_info"), f"{w}.metric_info", optional=True)
        for key, entry in info.items():
            entry = c.dict_(entry, f"{w}.metric_info.{key}")
            direction = entry.get("higher_is_better")
            if direction is not None and not isinstance(direction, bool):
                c.fail(f"{w}.metric_info.{key}.higher_is_better", f"expected true, false or null, got {kind(direction)}")
        primary = c.str_(t.get("primary_metric"), f"{w}.primary_metric", optional=True)
        if primary is not None and primary not in metrics:
            c.fail(f"{w}.primary_metric", f"{primary!r} is not one of the task's metrics")
        if schema == 1 and not info:
            info, primary = _schema1_metric_info(fp, family, list(metrics))
        return cls(family=family, fingerprint=fp, n_samples=c.count(c.get(t, "n_samples", w), f"{w}.n_samples"),
                   metrics=metrics, n_failed=c.count(t.get("n_failed", 0), f"{w}.n_failed"), **counts,
                   metrics_unavailable=dict(unavailable),
                   metric_backends=c.dict_(t.get("metric_backends"), f"{w}.metric_backends", optional=True),
                   metric_info=info, primary_metric=primary, warnings=list(warnings), failures=list(failures),
                   batch_size=c.count(t.get("batch_size"), f"{w}.batch_size", optional=True),
                   batch_size_requested=t.get("batch_size_requested"), timing=timing, memory=memory,
                   batch_invariance=t.get("batch_invariance"), predictions=pred, failures_file=failures_file,
                   artifacts=[c.str_(a, f"{w}.artifacts", max_chars=1000)
                              for a in c.list_(t.get("artifacts"), f"{w}.artifacts", optional=True)])

    @classmethod
    def from_values(cls, values: MetricValues, *, metrics: Sequence[str], family: str) -> "TaskResult":
        """The result of scoring files without a run (``mmbench score``): ``values`` as computed
        by the registered metrics named ``metrics``, whose specs give each corpus key's
        direction and the primary key (:func:`~mmbench.metrics.dispatch.describe_outputs`),
        with the outputs a task family adds itself (VQA's ``unanswered``) when ``family`` is a
        registered one.  No run, so no fingerprint; ``n_samples`` is the number of per-sample
        scores.  A key no spec declares is kept, never ranked, with a warning, as in a run.

        >>> r = TaskResult.from_values(MetricValues({"accuracy": 0.5, "unanswered": 1.0}),
        ...                            metrics=["vqa-accuracy"], family="vqa")
        >>> r.primary_metric, r.higher_is_better("unanswered")
        ('accuracy', False)
        """
        from mmbench.catalog import FAMILIES
        from mmbench.metrics.dispatch import describe_outputs
        from mmbench.metrics.registry import metric_spec

        extra = getattr(FAMILIES.get(family), "extra_outputs", ()) if family in FAMILIES else ()
        info, primary, notes = describe_outputs([metric_spec(n) for n in metrics], list(values.corpus), extra,
                                                owner=family)
        return cls(family=family, fingerprint={}, n_samples=len(values.per_sample), metrics=dict(values.corpus),
                   metrics_unavailable=dict(values.unavailable),
                   metric_backends={k: dict(v) for k, v in values.backend.items()}, metric_info=info,
                   primary_metric=primary, warnings=[*values.warnings, *notes])


def _schema1_metric_info(fingerprint: dict, family: str,
                         keys: list[str]) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Directions for a schema-1 task entry, from the specs of the metrics its fingerprint
    names (every schema-1 file mmbench wrote has ``fingerprint.metrics``), else of all
    built-in metrics (primary: the first key some built-in metric ranks by); the family's
    own outputs (VQA's ``unanswered``) from its task class."""
    from mmbench.catalog import FAMILIES
    from mmbench.metrics.dispatch import describe_outputs
    from mmbench.metrics.registry import METRICS, metric_spec

    names = fingerprint.get("metrics")
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n in METRICS for n in names)):
        names = [n for n in METRICS.names() if METRICS.entry(n).source == "builtin"]
    specs = [metric_spec(n) for n in names]
    extra = ()
    if family in FAMILIES:
        extra = getattr(FAMILIES.get(family), "extra_outputs", ())
    info, primary, _ = describe_outputs(specs, keys, extra, owner=family)
    if not isinstance(fingerprint.get("metrics"), list):
        # no metric list: the first key that some built-in metric ranks by
        primary = next((k for k in keys for spec in specs if spec.primary == k), primary)
    return info, primary


@dataclass
class RunResult:
    """One model's run: what ``results.json`` holds (``path``, where it was read from, is not written)."""

    model: dict[str, Any]
    tasks: dict[str, TaskResult]
    schema_version: int = SCHEMA_VERSION
    mmbench_version: str | None = None
    created: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    n_processes: int | None = None
    torch_threads: int | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    cache: str | None = None
    #: things a reader of this run must know (where an earlier run in the same folder was moved)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def n_parameters(self) -> int | None:
        return self.model.get("n_parameters")

    @property
    def sparsity(self) -> float | None:
        """Share of exactly-zero entries over the model's weight tensors (a pruned model's measure)."""
        return self.model.get("sparsity")

    @property
    def quantization(self) -> dict[str, Any] | None:
        """How the model was quantized (method, bits, library versions; ``source``: ``on-the-fly``
        for ``--quantize``, ``checkpoint`` for a pre-quantized one), or None."""
        return self.model.get("fingerprint", {}).get("quantization")

    @property
    def run_dir(self) -> Path | None:
        return None if self.path is None else self.path.resolve().parent

    @property
    def run_id(self) -> str:
        return self.run_dir.name if self.run_dir else self.model_name

    @property
    def libraries(self) -> tuple[tuple[str, str], ...]:
        """Library versions the run used (``environment.torch`` / ``.transformers``), where recorded."""
        return tuple((lib, self.environment[lib]) for lib in ("torch", "transformers")
                     if isinstance(self.environment.get(lib), str))

    def predictions_path(self, task: str) -> Path | None:
        """The absolute path of a task's predictions file (inside the run folder), or None."""
        rel = self.tasks[task].predictions
        if rel is None or self.run_dir is None:
            return None
        return (self.run_dir / rel).resolve()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": self.schema_version, "mmbench_version": self.mmbench_version,
                               "created": self.created, "config": self.config, "model": self.model,
                               "environment": self.environment, "seed": self.seed,
                               "n_processes": self.n_processes, "torch_threads": self.torch_threads,
                               "timing": self.timing, "tasks": {k: t.to_json() for k, t in self.tasks.items()},
                               "cache": self.cache}
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_json(cls, data: Any, path: str | Path | None = None) -> "RunResult":
        """Check every field and build the model; ``path`` (the file) is named in errors."""
        c = Checker(path if path is not None else "results")
        if not isinstance(data, dict):
            raise DataError(f"expected a JSON object at the top level, got {kind(data)}", source=c.source)
        version = c.get(data, "schema_version", "")
        if isinstance(version, bool) or version not in READABLE_SCHEMAS:
            c.fail("schema_version", f"unsupported schema version {str(version)[:40]!s} (this mmbench reads "
                                     f"versions {', '.join(map(str, READABLE_SCHEMAS))})")
        model = c.dict_(c.get(data, "model", ""), "model")
        name = c.str_(c.get(model, "name", "model"), "model.name")
        if not name.strip():
            c.fail("model.name", "empty")
        c.count(model.get("n_parameters"), "model.n_parameters", optional=True)
        sparsity = c.number(model.get("sparsity"), "model.sparsity", optional=True, minimum=0)
        if sparsity is not None and sparsity > 1:
            c.fail("model.sparsity", f"a share must be at most 1, got {sparsity}")
        c.dict_(c.dict_(model.get("fingerprint"), "model.fingerprint", optional=True).get("quantization"),
                "model.fingerprint.quantization", optional=True)
        created = c.str_(data.get("created"), "created", optional=True, max_chars=100)
        env = data.get("environment") if isinstance(data.get("environment"), dict) else {}
        for lib in ("torch", "transformers"):
            c.str_(env.get(lib), f"environment.{lib}", optional=True, max_chars=100)
        tasks_raw = c.dict_(c.get(data, "tasks", ""), "tasks")
        if not tasks_raw:
            c.fail("tasks", "no tasks")
        if len(tasks_raw) > MAX_TASKS:
            c.fail("tasks", f"{len(tasks_raw)} tasks, more than {MAX_TASKS}")
        tasks = {}
        for task_name, raw in tasks_raw.items():
            c.str_(task_name, "tasks")
            tasks[task_name] = TaskResult.from_json(raw, c, task_name, version)
        run = cls(model=model, tasks=tasks, schema_version=version,
                  mmbench_version=c.str_(data.get("mmbench_version"), "mmbench_version", optional=True),
                  created=created, config=c.dict_(data.get("config"), "config", optional=True), environment=env,
                  seed=c.count(data.get("seed"), "seed", optional=True),
                  n_processes=c.count(data.get("n_processes"), "n_processes", optional=True),
                  torch_threads=c.count(data.get("torch_threads"), "torch_threads", optional=True),
                  timing=c.dict_(data.get("timing"), "timing", optional=True),
                  cache=c.str_(data.get("cache"), "cache", optional=True, max_chars=4096),
                  notes=[c.str_(n, "notes", max_chars=10_000) for n in c.list_(data.get("notes"), "notes", optional=True)],
                  path=Path(path) if path is not None else None)
        if run.run_dir is not None:
            for task_name in tasks:
                target = run.predictions_path(task_name)
                if target is not None and not target.is_relative_to(run.run_dir):
                    c.fail(f"tasks.{task_name}.predictions", "must be a path inside the run folder")
        return run

    @classmethod
    def load(cls, path: str | Path) -> "RunResult":
        """Read and check one results file (or a run folder holding ``results.json``)."""
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
        return cls.from_json(data, path)


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
