"""Scoring and writing: a task's predictions file, its artifacts and its :class:`TaskResult`."""

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
from mmbench.types import SampleRecord

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def score_and_write(task: Task, plan: Plan, inf: Inference, model: Any, cfg: EvalConfig, out_dir: Path, *,
                    progress: ProgressFactory, run_options: dict[str, Any], t_start: float,
                    memory_window: bool, write: bool = True,
                    batch_invariance: dict[str, Any] | None = None) -> TaskResult:
    """Collect each sample's prediction from its outputs, score the task, write
    ``predictions/<task>.jsonl`` (and the task's artifacts) when ``write``, and return the
    task's result."""
    samples, by_sample, raw, errors = plan.samples, plan.by_sample, inf.raw, inf.errors
    predictions = [
        task.collect(s, [raw[r.id] for r in by_sample[s.id]])
        if s.id in by_sample and s.id not in errors and all(r.id in raw for r in by_sample[s.id]) else None
        for s in samples]
    t_score = time.perf_counter()
    advance_scoring = progress(f"{task.name}: scoring", 1)
    values = task.score(samples, predictions, run_options)
    advance_scoring(1)
    score_s = time.perf_counter() - t_score
    info, primary, info_warnings = task.describe_outputs(list(values.corpus))
    # a pipeline's intermediate text per request (a Socratic describer's description), kept in meta
    between = (model.intermediate([r for rs in by_sample.values() for r in rs])
               if write and hasattr(model, "intermediate") else {})

    def records() -> Iterator[SampleRecord]:  # made as they are written: no list of every record at once
        for s, pred, scores in zip(samples, predictions, values.per_sample or [{}] * len(samples)):
            first = (by_sample.get(s.id) or [None])[0]
            prompt = getattr(first, "prompt", None)
            text = raw.get(s.id)
            yield SampleRecord(
                id=s.id, prompt_hash=text_hash(prompt), raw_output=text if isinstance(text, str) else None,
                prediction=task.record_prediction(pred), references=s.references, scores=scores,
                error=errors.get(s.id), meta=dict(s.meta, **({"intermediate": between[first.id]}
                                                             if first is not None and first.id in between else {})))
    pred_rel = f"predictions/{task.name}.jsonl"
    failures_rel = f"failures/{task.name}.jsonl" if errors else None
    artifacts: list[str] = []
    if write:
        atomic_write_jsonl(out_dir / pred_rel, (record_to_json(r) for r in records()))
        artifacts = task.write_artifacts(out_dir, samples, predictions)
        if failures_rel is not None:  # every failure, with its traceback where code raised it
            atomic_write_jsonl(out_dir / failures_rel, ({"id": sid, "error": error,
                                                         "traceback": inf.tracebacks.get(sid)}
                                                        for sid, error in errors.items()))
    warnings = list(values.warnings) + info_warnings
    if cfg.limit is not None:
        warnings.append(f"--limit {cfg.limit}: scored on a subset; corpus metrics (CIDEr-D document frequencies, "
                        "retrieval galleries) are not comparable with full-set results")
    pending, owner, model_s = inf.pending, plan.owner, inf.model_s
    wall = time.perf_counter() - t_start
    return TaskResult(
        family=task.family,
        fingerprint=task.fingerprint(samples, model_name=model.name, rendered_prompt=plan.rendered_prompt,
                                     scoring={k: v for k, v in values.backend.items()}, limit=cfg.limit,
                                     extra={"max_image_pixels": cfg.max_image_pixels}
                                     if cfg.max_image_pixels not in (None, DEFAULT_MAX_PIXELS) else None),
        n_samples=len(samples),
        n_failed=len(errors),
        n_scored=sum(1 for s in samples if s.error is None),
        n_requests=len(plan.requests),
        n_computed=len(pending),
        n_cached=inf.n_cached,
        metrics=dict(values.corpus),
        metrics_unavailable=dict(values.unavailable),
        metric_backends={k: dict(v) for k, v in values.backend.items()},
        metric_info=info,
        primary_metric=primary,
        warnings=warnings,
        failures=[{"id": k, "error": v} for k, v in list(errors.items())[:20]],
        batch_size=inf.timer["batch_size"],
        batch_size_requested=cfg.batch_size,
        timing={"wall_s": round(wall, 3), "inference_s": round(model_s, 3),
                "model_s": round(inf.timer["forward_s"], 3), "data_wait_s": round(inf.timer["data_wait_s"], 3),
                "score_s": round(score_s, 3),
                # samples (not requests: a retrieval sample is 1 + n_captions requests) per second
                "samples_per_s": round(len({owner[r.id] for r in pending}) / model_s, 3)
                if pending and model_s > 0 else None,
                "requests_per_s": round(len(pending) / model_s, 3) if pending and model_s > 0 else None},
        memory=peak_memory(memory_window),
        batch_invariance=batch_invariance,
        predictions=pred_rel,
        failures_file=failures_rel if write else None,
        artifacts=artifacts,
    )
