"""How a run scores a task: a chunk of samples at a time (:class:`StreamedScorer`, for a task that
:attr:`~mmbench.tasks.base.Task.streams`) or all at once (:class:`WholeScorer`).  Both give the
same numbers for a streamed task (its metrics' stream contract); :meth:`Task.scorer` picks one."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from mmbench.metrics.dispatch import StreamedMetrics
from mmbench.types import MetricValues, Sample

if TYPE_CHECKING:
    from mmbench.tasks.base import Task


class Scorer:
    """Scores a task's samples as a run hands them over: :meth:`update` per chunk returns the chunk's
    per-sample score dicts (one per sample, empty where not scored); :meth:`compute` the task's
    :class:`MetricValues` (``per_sample`` empty)."""

    def __init__(self, task: Task, options: Mapping[str, Any]) -> None:
        self.task, self.options = task, options

    def update(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> Sequence[Mapping[str, float]]:
        raise NotImplementedError  # pragma: no cover - abstract

    def compute(self) -> MetricValues:
        raise NotImplementedError  # pragma: no cover - abstract


class WholeScorer(Scorer):
    """:meth:`Task.score` on the whole task, handed over as one chunk."""

    values: MetricValues | None = None

    def update(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> Sequence[Mapping[str, float]]:
        if self.values is not None:
            raise RuntimeError(f"task {self.task.name} is scored on all its samples at once, not a chunk at a time")
        self.values = self.task.score(samples, predictions, self.options)
        return self.values.per_sample or [{}] * len(samples)

    def compute(self) -> MetricValues:
        assert self.values is not None, "compute() before update()"
        return replace(self.values, per_sample=())


class StreamedScorer(Scorer):
    """The task's metric streams fed a chunk at a time, and the family's counts summed."""

    def __init__(self, task: Task, options: Mapping[str, Any]) -> None:
        super().__init__(task, options)
        self.metrics = StreamedMetrics(task.metrics, options)
        self.counts: dict[str, float] = {}

    def update(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> Sequence[Mapping[str, float]]:
        per_sample = self.metrics.update(samples, predictions)
        for key, n in self.task.count_outputs(samples, predictions).items():
            self.counts[key] = self.counts.get(key, 0.0) + n
        return per_sample

    def compute(self) -> MetricValues:
        values = self.metrics.compute()
        return replace(values, corpus={**values.corpus, **self.counts}) if self.counts else values
