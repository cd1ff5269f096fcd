"""What determines a run: :class:`EvalConfig`, validated before anything is loaded."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from mmbench.catalog import DEFAULT_MODEL, DEFAULT_TASKS
from mmbench.errors import MMBenchError

TOKENIZERS = ("ptb", "ptb-java")


@dataclass
class EvalConfig:
    """Everything that determines a run (stored in results.json as ``config``)."""

    model: str = DEFAULT_MODEL
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    adapter: str | None = None
    batch_size: int | str = 8  # or "auto"
    device: str = "auto"
    dtype: str = "auto"
    limit: int | None = None
    seed: int = 0
    output: str | None = None
    include: list[str] = field(default_factory=list)
    on_error: str = "continue"
    tokenizer: str = "ptb"
    meteor: bool | None = None
    cache: bool = True
    cache_dir: str | None = None
    check_batch_invariance: bool = False
    compile: bool = False
    trust_remote_code: bool = False
    revision: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    #: quantize the model while it loads (``mmbench.models.quantize.METHODS``: int8, int4, bnb-int8, bnb-nf4)
    quantize: str | None = None
    #: torch CPU threads (None: torch's default, one per core).  Never changes a score, only speed.
    threads: int | None = None
    #: images above this many pixels are decoded reduced (JPEG) or refused (None: images.DEFAULT_MAX_PIXELS)
    max_image_pixels: int | None = None

    def with_overrides(self, **overrides: Any) -> "EvalConfig":
        """A copy with ``overrides`` applied (the original is never changed)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}")
        return replace(self, **overrides)

    def validated(self) -> "EvalConfig":
        """A normalised copy (``batch_size`` as an int or "auto"), or a one-line
        :class:`MMBenchError` naming the option, raised before any data or model is loaded."""
        if self.on_error not in ("continue", "fail"):
            raise MMBenchError(f"--on-error must be 'continue' or 'fail', not {self.on_error!r}")
        batch_size: int | str = self.batch_size
        if batch_size != "auto":
            try:
                batch_size = int(batch_size)
            except (TypeError, ValueError):
                raise MMBenchError(f"--batch-size must be a whole number or 'auto', not {self.batch_size!r}") from None
            if batch_size < 1:
                raise MMBenchError("--batch-size must be at least 1")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise MMBenchError(f"--limit must be a whole number of at least 1, not {self.limit!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise MMBenchError(f"--threads must be a whole number of at least 1, not {self.threads!r}")
        if self.max_image_pixels is not None and (isinstance(self.max_image_pixels, bool)
                                                  or not isinstance(self.max_image_pixels, int)
                                                  or self.max_image_pixels < 1):
            raise MMBenchError(f"--max-image-pixels must be a whole number of at least 1, not "
                               f"{self.max_image_pixels!r}")
        if self.quantize is not None:
            from mmbench.models.quantize import quant_method

            quant_method(self.quantize)  # unknown: one line listing the methods
        if self.tokenizer not in TOKENIZERS:
            raise MMBenchError(f"--tokenizer must be one of {', '.join(TOKENIZERS)}, not {self.tokenizer!r}")
        tasks = task_names(self.tasks)
        if not tasks:
            given = self.tasks if isinstance(self.tasks, str) else ",".join(self.tasks)
            raise MMBenchError(f"--tasks {given!r} names no task: give one or more comma-separated task "
                               "names (`mmbench list tasks`)")
        if len(set(tasks)) != len(tasks):
            dup = next(t for t in tasks if tasks.count(t) > 1)
            raise MMBenchError(f"--tasks names {dup!r} twice")
        for option, value in (("--output", self.output), ("--cache-dir", self.cache_dir if self.cache else None)):
            if value is not None:
                _check_folder(option, Path(value))
        return replace(self, batch_size=batch_size, tasks=tasks)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_folder(option: str, path: Path) -> None:
    """``path`` is, or can become, a writable folder."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if path.exists() and not path.is_dir():
        raise MMBenchError(f"{option} {path} is a file, not a folder")
    if existing.exists() and not existing.is_dir():
        raise MMBenchError(f"{option} {path}: {existing} is a file, not a folder")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise MMBenchError(f"{option} {path}: {existing} is not writable")


def default_output_dir(model: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.rstrip("/").split("/")[-1])
    return str(Path("runs") / f"{stamp}-{safe}")


def task_names(tasks: Sequence[str] | str) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (blanks dropped)."""
    if isinstance(tasks, str):
        tasks = [tasks]
    return [t.strip() for item in tasks for t in item.split(",") if t.strip()]
