"""Checks a run makes before its model loads: the cheap ones, from the task files and the
model's configuration, never its weights or the tasks' data.

Where each pre-flight check lives:

* prompt placeholders that no field fills (``{questoin}``) and ``columns:`` keys a family
  never reads: the task itself, when it is built (``build_task``, before any model);
* a model that cannot serve a task (a captioner given a retrieval task), ``--model-arg``
  keys the adapter does not take, and a quantization that cannot run here (bitsandbytes
  without CUDA, a library missing): :func:`preflight`, here, from the model resolved without
  its weights (:func:`mmbench.models.resolve.resolve_model`; ``load_model`` checks the
  arguments again, so a direct Python caller is covered too);
* columns, row errors and images, which need the data: ``mmbench validate``
  (:mod:`mmbench.validate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from mmbench.errors import MMBenchError
from mmbench.tasks.base import Task
from mmbench.validate import capability_problem

if TYPE_CHECKING:
    from mmbench.runner.config import EvalConfig


def preflight(tasks: Sequence[Task], cfg: EvalConfig) -> None:
    """Raise :class:`MMBenchError` (one line per problem) if ``cfg.model`` cannot serve one of
    ``tasks`` or does not take one of ``cfg.model_args``; reads the model's config files only.

    Call it after the tasks are built and before ``load_model``."""
    from mmbench.models.resolve import check_model_args, check_quantize, resolve_model

    resolved = resolve_model(cfg.model, adapter=cfg.adapter, revision=cfg.revision,
                             trust_remote_code=cfg.trust_remote_code)
    check_model_args(resolved, {**({"compile": True} if cfg.compile else {}), **cfg.model_args})
    check_quantize(resolved, cfg.quantize, cfg.device)  # CUDA-only methods on a CPU, missing libraries
    problems = [line for task in tasks if (line := capability_problem(task, resolved, cfg.model))]
    if problems:
        raise MMBenchError("\n".join(problems))
