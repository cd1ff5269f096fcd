"""Run a task's metrics over its samples, driven by their specs; describe the outputs.

:func:`compute_metrics` is the one place where a metric is called during a run: it hands
each metric the scorable samples' predictions and references, plus what its
:class:`~mmbench.metrics.spec.MetricSpec` asks for (per-sample meta fields, images, run
options).  :func:`describe_outputs` turns the specs into what ``results.json`` records
about each corpus key (direction, aggregation, which metric) and the task's primary key.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import MetricValues, Sample


def compute_metrics(metrics: Sequence[tuple[MetricSpec, Mapping[str, Any]]], samples: Sequence[Sample],
                    predictions: Sequence[Any], run_options: Mapping[str, Any]) -> MetricValues:
    """Score ``predictions`` (one per sample, None where the sample failed) with each metric.

    A sample with a row error has nothing to score against and is left out; a failed
    sample's prediction becomes the spec's ``failed_prediction`` ("" by default: an empty
    answer, scored wrong), so the scored set never depends on what failed.  Each metric is
    called as ``fn(predictions, references, **options, **asked_for)``; ``per_sample`` of the
    result has one dict per sample (empty for samples that were not scored).
    """
    keep = [i for i, s in enumerate(samples) if s.error is None]
    refs = [samples[i].references for i in keep]  # tuples as the samples hold them: no copy per sample
    corpus: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    backend: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    per_sample = _unscored(len(samples))
    for spec, options in metrics:
        preds, kwargs = _inputs(spec, options, samples, predictions, keep, run_options)
        values = _call(spec, spec.fn, preds, refs, kwargs)
        _add(values, corpus, unavailable, backend, warnings)
        _merge(per_sample, keep, values.per_sample)
    return MetricValues(corpus=corpus, per_sample=tuple(per_sample), unavailable=unavailable, backend=backend,
                        warnings=tuple(warnings))


class StreamedMetrics:
    """:func:`compute_metrics` a chunk of samples at a time, for metrics that all have a stream
    (:class:`~mmbench.metrics.spec.MetricStream`): :meth:`update` returns the chunk's per-sample
    dicts, :meth:`compute` the corpus values.  Over any split of the samples the result equals
    :func:`compute_metrics` on all of them (each stream's contract)."""

    def __init__(self, metrics: Sequence[tuple[MetricSpec, Mapping[str, Any]]], run_options: Mapping[str, Any]):
        missing = [spec.name for spec, _ in metrics if spec.stream is None]
        if missing:
            raise ValueError(f"metric(s) {missing} need the whole corpus at once (no stream)")
        self.metrics = [(spec, options, spec.stream()) for spec, options in metrics]
        self.run_options = run_options

    def update(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> tuple[dict[str, float], ...]:
        keep = [i for i, s in enumerate(samples) if s.error is None]
        refs = [samples[i].references for i in keep]
        per_sample = _unscored(len(samples))
        for spec, options, stream in self.metrics:
            preds, kwargs = _inputs(spec, options, samples, predictions, keep, self.run_options)
            _merge(per_sample, keep, _call(spec, stream.update, preds, refs, kwargs))
        return tuple(per_sample)

    def compute(self) -> MetricValues:
        corpus: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        backend: dict[str, dict[str, str]] = {}
        warnings: list[str] = []
        for _, _, stream in self.metrics:
            _add(stream.compute(), corpus, unavailable, backend, warnings)
        return MetricValues(corpus=corpus, unavailable=unavailable, backend=backend, warnings=tuple(warnings))


_EMPTY: dict[str, float] = {}  # shared by the samples no metric scored; never written to


def _unscored(n: int) -> list[dict[str, float]]:
    return [_EMPTY] * n


def _inputs(spec: MetricSpec, options: Mapping[str, Any], samples: Sequence[Sample], predictions: Sequence[Any],
            keep: Sequence[int], run_options: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The predictions of the scored samples (a failed one's as the spec says) and the keyword
    arguments the spec asks for: its options, per-sample meta fields, images, run options."""
    preds = [spec.failed_prediction if predictions[i] is None else predictions[i] for i in keep]
    kwargs = dict(options)
    for kwarg, meta_key in spec.sample_fields.items():
        kwargs[kwarg] = [samples[i].meta.get(meta_key) for i in keep]
    if spec.needs_images:
        kwargs["images"] = [samples[i].images[0] if samples[i].images else None for i in keep]
        kwargs["sample_ids"] = [samples[i].id for i in keep]
    for key in spec.run_options:
        if run_options.get(key) is not None:
            kwargs[key] = run_options[key]
    return preds, kwargs


def _call(spec: MetricSpec, fn: Any, preds: list[Any], refs: list[Any], kwargs: dict[str, Any]) -> Any:
    try:
        return fn(preds, refs, **kwargs)
    except DataError:
        raise
    except ValueError as exc:  # the metric's own input checks
        raise MMBenchError(f"metric {spec.name!r}: {exc}") from None


def _add(values: MetricValues, corpus: dict, unavailable: dict, backend: dict, warnings: list) -> None:
    corpus.update(values.corpus)
    unavailable.update(values.unavailable)
    backend.update({k: dict(v) for k, v in values.backend.items()})
    warnings.extend(values.warnings)


def _merge(per_sample: list[dict[str, float]], keep: Sequence[int], scores: Sequence[Mapping[str, float]]) -> None:
    for j, item in zip(keep, scores):  # the first metric's dict is kept, not copied
        if per_sample[j] is _EMPTY:
            per_sample[j] = item if type(item) is dict else dict(item)
        else:
            per_sample[j] = {**per_sample[j], **item}


def describe_outputs(specs: Sequence[MetricSpec], keys: Sequence[str], extra: Sequence[Output] = (),
                     owner: str = "task") -> tuple[dict[str, dict[str, Any]], str | None, list[str]]:
    """``(info, primary, warnings)`` for the corpus ``keys`` of a task scored by ``specs``.

    ``info[key]`` is ``{"metric", "higher_is_better", "aggregation"}`` from the first spec
    (in the task's order) that declares the key, else from ``extra`` (outputs the task family
    adds itself, such as VQA's ``unanswered``, recorded under ``owner``).  A key no spec
    declares is recorded with ``higher_is_better: null`` (never ranked) and a warning.  The
    primary key is the first metric's primary output (a pattern takes the first matching key),
    else the first key with a direction, else None (nothing to rank by).
    """
    info: dict[str, dict[str, Any]] = {}
    warnings = []
    for key in keys:
        found = next(((s.name, o) for s in specs for o in [s.output(key)] if o is not None), None)
        if found is None:
            found = next(((owner, o) for o in extra if o.matches(key)), None)
        if found is None:
            info[key] = {"metric": None, "higher_is_better": None, "aggregation": None}
            warnings.append(f"output {key!r} is declared by none of the task's metrics: it is reported, never ranked")
            continue
        info[key] = found[1].info(found[0])
    ranked = [k for k in keys if info[k]["higher_is_better"] is not None]
    primary = None
    if specs:
        primary = next((k for k in ranked if Output(specs[0].primary).matches(k)), None)
    if primary is None and ranked:  # the first metric produced no rankable primary (unavailable, say)
        primary = ranked[0]
    return info, primary, warnings
