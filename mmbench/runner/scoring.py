"""Scoring and writing: a task's predictions file, its artifacts and its :class:`TaskResult`.

A task is run a chunk of samples at a time when it :attr:`~mmbench.tasks.base.Task.streams`
(its metrics all have a stream), else as one chunk: :class:`TaskRun` takes each chunk's plan
and outputs, scores them, yields the chunk's prediction lines, and keeps only counts, hashes
and failures between chunks, so a streamed task's memory does not grow with its size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

from mmbench.images import DEFAULT_MAX_PIXELS
from mmbench.io import atomic_write_jsonl
from mmbench.results import TaskResult, record_to_json
from mmbench.runner.config import EvalConfig
from mmbench.runner.inference import Inference
from mmbench.runner.plan import Plan
from mmbench.runner.provenance import peak_memory
from mmbench.tasks.base import Task, text_hash
from mmbench.tasks.data import SampleDigest
from mmbench.types import SampleRecord


class TaskRun:
    """What a task's run keeps from chunk to chunk: the scorer's state, the samples' digest (for
    the fingerprint), counts, failures and timings.  :meth:`add` takes one chunk's plan and
    outputs and yields its prediction lines (JSON-ready dicts); :meth:`result` makes the
    :class:`TaskResult` once every chunk is in."""

    def __init__(self, task: Task, model: Any, cfg: EvalConfig, run_options: dict[str, Any],
                 progress: Callable[[str, int], Callable[[int], None]] | None = None) -> None:
        self.task, self.model, self.cfg = task, model, cfg
        self.progress = progress or (lambda label, total: lambda n: None)
        self.scoring_bar: Callable[[int], None] | None = None  # "<task>: scoring", from the first chunk scored
        self.scorer = task.scorer(run_options)
        self.digest = SampleDigest()
        self.errors: dict[str, str] = {}
        self.tracebacks: dict[str, str] = {}
        self.rendered_prompt: str | None = None
        self.n_scored = self.n_requests = self.n_computed = self.n_cached = self.n_samples_computed = 0
        self.model_s = self.score_s = 0.0
        # shared by the chunks' inference: times add up, and an automatic batch size found once is kept
        self.timer: dict[str, Any] = {"data_wait_s": 0.0, "forward_s": 0.0, "batch_size": None}
        self.artifacts: list[str] = []

    def add(self, plan: Plan, inf: Inference, out_dir: Path) -> Iterator[dict[str, Any]]:
        """Count and score one chunk (its ``plan`` and ``inf``erence); yield its prediction lines.
        A whole-corpus task's one chunk also writes its artifacts."""
        task, samples, by_sample, raw, errors = self.task, plan.samples, plan.by_sample, inf.raw, inf.errors
        self.digest.update(samples)
        self.rendered_prompt = plan.rendered_prompt
        self.errors.update(errors)
        self.tracebacks.update(inf.tracebacks)
        self.n_scored += sum(1 for s in samples if s.error is None)
        self.n_requests += len(plan.requests)
        self.n_computed += len(inf.pending)
        self.n_cached += inf.n_cached
        # samples (not requests: a retrieval sample is 1 + n_captions requests) computed by this run
        self.n_samples_computed += len({plan.owner[r.id] for r in inf.pending})
        self.model_s += inf.model_s
        predictions = [
            task.collect(s, [raw[r.id] for r in by_sample[s.id]])
            if s.id in by_sample and s.id not in errors and all(r.id in raw for r in by_sample[s.id]) else None
            for s in samples]
        if self.scoring_bar is None:
            self.scoring_bar = self.progress(f"{task.name}: scoring", 1)
        t_score = time.perf_counter()
        per_sample = self.scorer.update(samples, predictions)
        self.score_s += time.perf_counter() - t_score
        # a pipeline's intermediate text per request (a Socratic describer's description), kept in meta
        model = self.model
        between = model.intermediate([r for rs in by_sample.values() for r in rs]) \
            if hasattr(model, "intermediate") else {}
        for s, pred, scores in zip(samples, predictions, per_sample):
            first = (by_sample.get(s.id) or [None])[0]
            text = raw.get(s.id)
            yield record_to_json(SampleRecord(
                id=s.id, prompt_hash=text_hash(getattr(first, "prompt", None)),
                raw_output=text if isinstance(text, str) else None, prediction=task.record_prediction(pred),
                references=s.references, scores=scores, error=errors.get(s.id),
                meta=dict(s.meta, **({"intermediate": between[first.id]}
                                     if first is not None and first.id in between else {}))))
        if not task.streams:
            self.artifacts = task.write_artifacts(out_dir, samples, predictions)

    def result(self, out_dir: Path, *, t_start: float, memory_window: bool,
               batch_invariance: dict[str, Any] | None = None) -> TaskResult:
        """Compute the corpus values, write the failures file and return the result."""
        task, cfg, errors = self.task, self.cfg, self.errors
        t_score = time.perf_counter()
        values = self.scorer.compute()
        score_s = self.score_s + time.perf_counter() - t_score
        if self.scoring_bar is not None:
            self.scoring_bar(1)
        info, primary, info_warnings = task.describe_outputs(list(values.corpus))
        failures_rel = f"failures/{task.name}.jsonl" if errors else None
        if failures_rel is not None:  # every failure, with its traceback where code raised it
            atomic_write_jsonl(out_dir / failures_rel, ({"id": sid, "error": error,
                                                         "traceback": self.tracebacks.get(sid)}
                                                        for sid, error in errors.items()))
        warnings = list(values.warnings) + info_warnings
        if cfg.limit is not None:
            warnings.append(f"--limit {cfg.limit}: scored on a subset; corpus metrics (CIDEr-D document "
                            "frequencies, retrieval galleries) are not comparable with full-set results")
        model_s, timer = self.model_s, self.timer
        wall = time.perf_counter() - t_start
        return TaskResult(
            family=task.family,
            fingerprint=task.fingerprint(self.digest, model_name=self.model.name,
                                         rendered_prompt=self.rendered_prompt,
                                         scoring={k: v for k, v in values.backend.items()}, limit=cfg.limit,
                                         extra={"max_image_pixels": cfg.max_image_pixels}
                                         if cfg.max_image_pixels not in (None, DEFAULT_MAX_PIXELS) else None),
            n_samples=self.digest.n,
            n_failed=len(errors),
            n_scored=self.n_scored,
            n_requests=self.n_requests,
            n_computed=self.n_computed,
            n_cached=self.n_cached,
            metrics=dict(values.corpus),
            metrics_unavailable=dict(values.unavailable),
            metric_backends={k: dict(v) for k, v in values.backend.items()},
            metric_info=info,
            primary_metric=primary,
            warnings=warnings,
            failures=[{"id": k, "error": v} for k, v in list(errors.items())[:20]],
            batch_size=timer["batch_size"],
            batch_size_requested=cfg.batch_size,
            timing={"wall_s": round(wall, 3), "inference_s": round(model_s, 3),
                    "model_s": round(timer["forward_s"], 3), "data_wait_s": round(timer["data_wait_s"], 3),
                    "score_s": round(score_s, 3),
                    "samples_per_s": round(self.n_samples_computed / model_s, 3)
                    if self.n_computed and model_s > 0 else None,
                    "requests_per_s": round(self.n_computed / model_s, 3)
                    if self.n_computed and model_s > 0 else None},
            memory=peak_memory(memory_window),
            batch_invariance=batch_invariance,
            predictions=f"predictions/{task.name}.jsonl",
            failures_file=failures_rel,
            artifacts=self.artifacts,
        )
