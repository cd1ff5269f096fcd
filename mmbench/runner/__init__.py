"""Run tasks against a model and write the run folder.

``evaluate(model=..., tasks=[...])`` is what ``mmbench eval`` calls.  Per task:
plan the requests (:mod:`.plan`) -> inference with the prediction cache, sharding and
overlapped batches (:mod:`.inference`, :mod:`.batching`) -> score and write
``predictions/<task>.jsonl`` (:mod:`.scoring`); then ``results.json`` for the whole run
(:class:`mmbench.results.RunResult`).  :mod:`.config` holds the validated
:class:`EvalConfig`, :mod:`.provenance` what a run records about where it ran.  Scoring
reads only predictions and references, so ``mmbench score`` re-scores a run without the model.
"""

from mmbench.runner.config import EvalConfig, default_output_dir, task_names
from mmbench.runner.evaluate import evaluate, evaluate_default_suite, lock_output, run_task
from mmbench.runner.inference import EMBEDDING_TOLERANCE, cache_task_key, check_batch_invariance

__all__ = ["EvalConfig", "evaluate", "evaluate_default_suite", "run_task", "task_names", "default_output_dir",
           "cache_task_key", "check_batch_invariance", "lock_output", "EMBEDDING_TOLERANCE"]
