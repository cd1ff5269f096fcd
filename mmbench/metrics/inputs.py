"""Input checks shared by the short-answer metrics (GQA accuracy, relaxed accuracy): one place
that says what a malformed call looks like, so every metric reports it in the same words."""

from __future__ import annotations

from collections.abc import Sequence


def check_short_answers(predictions: Sequence[object], answers: Sequence[object], *,
                        labels: tuple[str, Sequence[object] | None] | None = None, start: int = 0) -> None:
    """Raise ValueError unless ``predictions`` are strings and ``answers`` non-empty lists of
    strings, one per prediction; ``labels`` = ``(name, per-item labels or None)`` must match too
    (its count is named in the message when ``name`` is non-empty).  Items are numbered from
    ``start`` (a stream's chunk is numbered in the whole corpus)."""
    name, items = labels if labels is not None else ("", None)
    if len(predictions) != len(answers) or (items is not None and len(items) != len(answers)):
        raise ValueError(f"length mismatch: {len(predictions)} predictions, {len(answers)} reference lists"
                         + (f", {len(items)} {name}" if items is not None and name else ""))
    for i, (p, refs) in enumerate(zip(predictions, answers), start):
        if not isinstance(p, str):
            raise ValueError(f"item {i}: prediction is {type(p).__name__}, not str")
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"item {i}: references must be a non-empty list of str, got {refs!r}")
