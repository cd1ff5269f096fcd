"""Check task files and their data before a model is loaded: ``mmbench validate``.

:func:`validate_tasks` builds each task and loads its first ``n`` rows
(``load_samples(limit=n)``), reporting each problem in one line that names the file
(and line), the sample and the field to fix.  What the task package itself refuses is
reported as it says it:

* a prompt placeholder that no field fills (``{questoin}``: a VQA prompt is filled with
  ``{question}`` and ``{options}``, a retrieval prompt with ``{caption}``) and a
  ``columns:`` key the family never reads - when the task is built;
* a ``columns:`` mapping to a column the data lacks (with the columns it has) - when
  its data loads;

and this module adds, on the first ``n`` samples:

* rows that cannot become samples (the first few errors, the rest counted);
* images that do not decode (:func:`mmbench.images.load_image`);
* with ``model=``: a task the model cannot serve (a captioner given a retrieval task).

It also renders the exact prompts of the first samples.  With ``model=`` the prompt is
the model's own rendering when that needs no weights (an adapter that sends prompts as
they are, or an HF chat VLM's processor and chat template); otherwise the task's prompt
for that model name is shown and the report says the rendering happens at run time.

Example::

    >>> (report,) = validate_tasks("easyvqa_vqa", n=2)
    >>> report.ok, report.n_checked, report.prompts[0][0]
    (True, 2, 'test-0')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mmbench.errors import MMBenchError
from mmbench.images import load_image
from mmbench.types import EmbedRequest

#: row errors shown per task (the rest are counted)
MAX_ROW_ERRORS = 5
#: samples whose prompts are printed
PROMPT_SAMPLES = 3


@dataclass
class TaskReport:
    """What :func:`validate_tasks` found for one task.  ``problems`` are one-line errors;
    ``prompts`` are ``(request id, exact text)`` pairs; ``notes`` say how prompts were rendered."""

    task: str
    source: str = ""
    data_source: str = ""
    n_checked: int = 0
    n_images: int = 0
    problems: list[str] = field(default_factory=list)
    prompts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ------------------------------------------------------------------ data

def describe_data_source(task: Any) -> str:
    """Where the task's rows come from, in words (loader, local files, or hub id and revision)."""
    config = getattr(task, "config", None)
    if config is None:
        return f"{type(task).__name__}.load_samples"
    ds = config.dataset
    if ds.loader:
        return f"loader {ds.loader} (split {ds.split})"
    if ds.data_files is not None:
        files = ds.data_files
        if ds.base_dir and isinstance(files, str) and not Path(files).is_absolute():
            files = os.path.normpath(Path(ds.base_dir) / files)
        return f"{ds.path} {files} (split {ds.split})"
    return f"hub {ds.path}@{ds.revision or '?'} (split {ds.split})"


def data_location(task: Any) -> str:
    """The file (one local data file), loader or hub id that row numbers refer to."""
    config = getattr(task, "config", None)
    if config is None:
        return f"task {task.name}"
    ds = config.dataset
    if ds.loader:
        return ds.loader
    files = ds.data_files
    if isinstance(files, list) and len(files) == 1:
        files = files[0]
    if isinstance(files, str):
        return os.path.normpath(Path(ds.base_dir) / files) if ds.base_dir and not Path(files).is_absolute() else files
    return f"{ds.path}@{ds.revision}" if ds.revision else str(ds.path)


# ------------------------------------------------------------------ the check

def validate_tasks(tasks: Sequence[str] | str, *, include: Sequence[str] = (), n: int = 3,
                   model: str | None = None, adapter: str | None = None) -> list[TaskReport]:
    """Check each named task (``"a,b"`` or a list) on its first ``n`` samples; never loads model
    weights.  Tasks from ``include`` folders win over built-ins of the same name, as in ``eval``.

    Raises :class:`MMBenchError` only for what stops every check (a bad ``--include`` folder,
    a ``model`` that cannot be resolved); a task's own problems go into its report."""
    from mmbench.catalog import build_task, include_tasks
    from mmbench.runner.config import task_names

    if n < 1:
        raise MMBenchError(f"--n must be at least 1, not {n}")
    names = task_names(tasks)
    if not names:
        raise MMBenchError("--tasks names no task: give one or more comma-separated task names (`mmbench list tasks`)")
    for path in include:
        include_tasks(path)
    resolved, renderer, note = _resolve(model, adapter)
    reports = []
    for name in names:
        report = TaskReport(task=name)
        try:
            task = build_task(name)
        except MMBenchError as exc:
            report.problems.append(str(exc))
            reports.append(report)
            continue
        report.notes.extend([note] if note else [])
        _check_task(task, report, n=n, model=model, resolved=resolved, renderer=renderer)
        reports.append(report)
    return reports


def _resolve(model: str | None, adapter: str | None) -> tuple[Any, Callable[..., Any] | None, str | None]:
    """``(resolved model, its prompt renderer or None, a note on how prompts are shown)``."""
    if model is None:
        return None, None, None
    from mmbench.models.base import ModelAdapter
    from mmbench.models.resolve import prompt_renderer, resolve_model

    resolved = resolve_model(model, adapter=adapter)
    renderer = prompt_renderer(resolved)
    name, family = resolved.kwargs.get("name", model), _adapter_family(resolved)
    if renderer is None:
        note = (f"prompts as the task writes them for {name}; the {family} adapter renders them (chat template) "
                "at run time, with the loaded model")
    elif getattr(resolved.cls, "render_prompt", None) is ModelAdapter.render_prompt:
        note = f"{name} ({family}) applies no chat template: prompts shown as the task renders them"
    else:
        note = f"prompts rendered as {name} sees them (its processor's chat template; no weights loaded)"
    return resolved, renderer, note


def _check_task(task: Any, report: TaskReport, *, n: int, model: str | None, resolved: Any,
                renderer: Callable[..., Any] | None) -> None:
    config = getattr(task, "config", None)
    report.source = config.source if config is not None else "entry point"
    report.data_source = describe_data_source(task)
    model_name = resolved.kwargs.get("name", model) if resolved is not None else None
    if resolved is not None:
        report.problems.extend(filter(None, [capability_problem(task, resolved, model)]))
    try:
        samples = task.load_samples(limit=n)
    except MMBenchError as exc:  # a mapped column the data lacks, unreadable data, a duplicate id
        message = str(exc)
        named = config is not None and Path(config.source).name in message
        report.problems.append(message if named else f"{report.source}: task {task.name}: {message}")
        return
    report.n_checked = len(samples)
    where = data_location(task)
    row_errors = [(i, s) for i, s in enumerate(samples) if s.error is not None]
    for index, sample in row_errors[:MAX_ROW_ERRORS]:
        report.problems.append(f"{where}, row {index}: task {task.name}: {sample.error}")
    if len(row_errors) > MAX_ROW_ERRORS:
        report.problems.append(f"{where}: task {task.name}: ... and {len(row_errors) - MAX_ROW_ERRORS} more row "
                               f"errors in the first {len(samples)} rows")
    good = [s for s in samples if s.error is None]
    for sample in good:
        for ref in sample.images:
            try:
                load_image(ref)
                report.n_images += 1
            except MMBenchError as exc:
                report.problems.append(f"task {task.name}: sample {sample.id!r}: {exc}")
    for sample in good[:PROMPT_SAMPLES]:
        try:
            requests = task.build_requests(sample, model_name)
        except (MMBenchError, KeyError, IndexError, ValueError) as exc:
            report.problems.append(f"task {task.name}: sample {sample.id!r}: cannot build its prompt: "
                                   f"{exc.__class__.__name__}: {exc}")
            break
        for request in requests:
            text = _request_text(request, renderer)
            if text is not None:
                report.prompts.append((request.id, text))


def capability_problem(task: Any, resolved: Any, model: str) -> str | None:
    """A line saying the model (resolved, not loaded) cannot serve the task, or None."""
    capabilities = getattr(resolved.cls, "capabilities", None)
    if capabilities is None or task.needs in capabilities:
        return None
    return (f"task {task.name} ({task.family}) needs a model that can {task.needs}; {model} "
            f"({_adapter_family(resolved)}) serves: {', '.join(sorted(capabilities))}")


def _adapter_family(resolved: Any) -> str:
    family = getattr(resolved.cls, "adapter", None)
    return family if isinstance(family, str) else resolved.adapter


def _request_text(request: Any, renderer: Callable[..., Any] | None) -> str | None:
    """The text the model is sent for ``request`` (an image embedding request has none)."""
    if isinstance(request, EmbedRequest):
        return request.text
    prompt = getattr(request, "prompt", None)
    return renderer(prompt, len(request.images)) if renderer is not None else prompt
