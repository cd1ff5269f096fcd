"""Exceptions with enough context to find the bad input."""

from __future__ import annotations


class MMBenchError(Exception):
    """Base class: an error the user can act on (shown without a traceback by the CLI)."""


class UnknownNameError(MMBenchError, KeyError):
    """A model, task or metric name that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataError(MMBenchError, ValueError):
    """Bad input data.  The message names the file/line or sample id and the field."""

    def __init__(self, message: str, *, source: str | None = None, sample_id: str | None = None,
                 field: str | None = None):
        parts = []
        if source:
            parts.append(source)
        if sample_id is not None:
            parts.append(f"sample {sample_id!r}")
        if field:
            parts.append(f"field {field!r}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source, self.sample_id, self.field = source, sample_id, field


class ModelLoadError(MMBenchError):
    """A model could not be resolved or loaded."""
