"""Building blocks of metric streams (:class:`~mmbench.metrics.spec.MetricStream`): what a stream
keeps between chunks, compactly, and the whole-corpus call made of one update.

A streamed metric's function is written as :func:`whole` of its stream, so the function and the
stream give the same floats by construction; tests check the function against the official
implementation and the stream over random splits against the function.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mmbench.types import MetricValues


class Labels:
    """A column of optional per-sample labels (answer types, question types, splits: a few distinct
    ones over many samples) kept as one 4-byte code per sample; :meth:`values` gives them back."""

    def __init__(self) -> None:
        self.codes = array("i")
        self.names: list[Any] = [None]
        self.index: dict[Any, int] = {None: 0}

    def extend(self, labels: Sequence[Any] | None, n: int) -> None:
        """Add ``labels`` (one per sample), or ``n`` missing labels when ``labels`` is None."""
        if labels is None:
            self.codes.extend([0] * n)
            return
        index, names = self.index, self.names
        for label in labels:
            code = index.get(label)
            if code is None:
                code = index[label] = len(names)
                names.append(label)
            self.codes.append(code)

    def values(self) -> list[Any]:
        names = self.names
        return [names[c] for c in self.codes]


def group_means(scores: Sequence[float], labels: Sequence[Any], key: Any = None) -> dict[Any, float]:
    """The mean score per label (``key(label)`` when given), labels in order of first appearance; a
    None label counts in no group.  Each group's scores are summed in sample order."""
    buckets: dict[Any, list[float]] = {}
    for s, label in zip(scores, labels):
        if label is not None:
            buckets.setdefault(label if key is None else key(label), []).append(s)
    return {g: sum(v) / len(v) for g, v in buckets.items()}


def whole(stream: Any, predictions: Sequence[Any], references: Sequence[Any], **kwargs: Any) -> MetricValues:
    """A whole-corpus result from one update of ``stream``: its per-sample scores and its corpus values
    (no per-sample scores when nothing was scored)."""
    per_sample = stream.update(predictions, references, **kwargs)
    values = stream.compute()
    return replace(values, per_sample=tuple(per_sample)) if values.corpus else values
