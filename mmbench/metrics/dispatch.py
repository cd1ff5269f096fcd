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
    empty: dict[str, float] = {}  # shared by the samples no metric scored; never written to
    per_sample: list[dict[str, float]] = [empty] * len(samples)
    for spec, options in metrics:
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
        try:
            values = spec.fn(preds, refs, **kwargs)
        except DataError:
            raise
        except ValueError as exc:  # the metric's own input checks
            raise MMBenchError(f"metric {spec.name!r}: {exc}") from None
        corpus.update(values.corpus)
        unavailable.update(values.unavailable)
        backend.update({k: dict(v) for k, v in values.backend.items()})
        warnings.extend(values.warnings)
        for j, scores in zip(keep, values.per_sample):  # the first metric's dict is kept, not copied
            if per_sample[j] is empty:
                per_sample[j] = scores if type(scores) is dict else dict(scores)
            else:
                per_sample[j] = {**per_sample[j], **scores}
    return MetricValues(corpus=corpus, per_sample=tuple(per_sample), unavailable=unavailable, backend=backend,
                        warnings=tuple(warnings))


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
