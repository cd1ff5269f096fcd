"""Checks a run makes before its model loads: the cheap ones, from the task files alone.

:func:`preflight` reads no data and loads no model, so a typo in a task file fails in a
second, not after a multi-GB checkpoint has loaded.  The checks that need data (columns,
row errors, images) are ``mmbench validate``'s (:mod:`mmbench.validate`); unknown
``--model-arg`` keys are refused by :func:`mmbench.models.resolve.load_model` before any
weights are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from mmbench.errors import MMBenchError
from mmbench.tasks.base import Task
from mmbench.validate import prompt_problems

if TYPE_CHECKING:
    from mmbench.runner.config import EvalConfig


def preflight(tasks: Sequence[Task], cfg: EvalConfig) -> None:
    """Raise :class:`MMBenchError` if a task's prompt (its default or any per-model override)
    has a placeholder that no field of its family fills (``{questoin}``; a VQA prompt may use
    ``{question}`` and ``{options}``, a retrieval prompt ``{caption}``), or is not a valid
    template.  One line per problem, each naming the task file (and line) and the placeholder.

    ``cfg`` (the run's :class:`~mmbench.runner.config.EvalConfig`) is accepted for checks that
    depend on the run; the prompt checks do not.
    """
    problems = [line for task in tasks for line in prompt_problems(task)]
    if problems:
        raise MMBenchError("\n".join(problems))
