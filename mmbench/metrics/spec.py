"""What a metric is: one frozen :class:`MetricSpec` next to its function.

A spec says everything the rest of mmbench needs to know about a metric, so that adding
one is a spec plus its function (``docs/adding-a-metric.md``):

* ``fn``: ``fn(predictions, references, **kwargs) -> MetricValues``;
* what it needs besides predictions and references: per-sample meta fields
  (``sample_fields={"kwarg": "meta_key"}``), the samples' images (``needs_images``),
  run options (``run_options``: ``tokenizer``, ``meteor``, ``device``, ``load_embedder``);
* its outputs (:class:`Output`): for each corpus key, or family of keys as an
  ``fnmatch`` pattern (``"accuracy/*"``), whether higher is better and how the corpus
  value aggregates (the mean of per-sample values, or a corpus statistic such as BLEU);
* which output is primary (what a leaderboard ranks by when this metric is a task's first);
* optionally a stream (:class:`MetricStream`): the same metric fed a chunk at a time, for a
  run too large to hold every prediction (the runner streams a task whose metrics all have one);
* its version, which enters the task fingerprint: a change to what the metric computes
  bumps it, so old and new numbers never share a leaderboard group.

The runner writes each output's direction and the task's primary metric into
``results.json``; leaderboards and comparisons read them from there.  Nothing guesses a
direction from a metric's name.

Example::

    >>> spec = MetricSpec(name="length", fn=lambda p, r: None, version="1",
    ...                   outputs=(Output("mean_length", higher_is_better=None),), primary="mean_length")
    >>> spec.output("mean_length").higher_is_better is None
    True
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from mmbench.types import MetricValues

#: how a corpus value relates to the per-sample values
AGGREGATIONS = ("mean", "corpus", "count")


@dataclass(frozen=True)
class Output:
    """One corpus key of a metric (``key`` may be an ``fnmatch`` pattern such as ``"accuracy/*"``).

    ``higher_is_better``: True or False for a score; None for a count or diagnostic that is
    reported but never ranked.  ``aggregation``: ``"mean"`` (the corpus value is the mean
    of per-sample values, over all samples or a subset), ``"corpus"`` (a statistic of the
    whole corpus: corpus BLEU, METEOR's aggregate, a median rank, a share of groups) or
    ``"count"``.  ``per_sample``: the per-sample lines carry this key.
    """

    key: str
    higher_is_better: bool | None = True
    aggregation: str = "mean"
    per_sample: bool = True

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"output {self.key!r}: aggregation must be one of {AGGREGATIONS}, "
                             f"not {self.aggregation!r}")

    def matches(self, key: str) -> bool:
        return key == self.key or (any(c in self.key for c in "*?[") and fnmatch.fnmatchcase(key, self.key))

    def info(self, metric: str) -> dict[str, Any]:
        """What ``results.json`` records about a key produced by this output."""
        return {"metric": metric, "higher_is_better": self.higher_is_better, "aggregation": self.aggregation}


@dataclass(frozen=True)
class MetricSpec:
    """A metric: its function and everything the runner, leaderboard and comparisons need to know."""

    name: str
    fn: Callable[..., MetricValues]
    version: str
    outputs: tuple[Output, ...]
    primary: str
    description: str = ""
    #: keyword argument -> per-sample meta key; the metric gets one value per scored sample
    sample_fields: Mapping[str, str] = field(default_factory=dict)
    #: the metric gets ``images=`` (one ImageRef or None per scored sample) and ``sample_ids=``
    needs_images: bool = False
    #: run options passed through when set: tokenizer, meteor, device, load_embedder
    run_options: tuple[str, ...] = ()
    #: what a failed sample's prediction becomes: "" scores it as an empty answer (wrong);
    #: None hands the metric None to handle (retrieval counts it as a miss)
    failed_prediction: Any = ""
    #: a class whose instances score the corpus a chunk at a time (:class:`MetricStream`), so a
    #: run need not hold every prediction until the end; None: the metric needs the whole corpus
    #: at once (document frequencies, a retrieval gallery)
    stream: Callable[[], "MetricStream"] | None = None

    def __post_init__(self) -> None:
        if not any(o.matches(self.primary) for o in self.outputs):
            raise ValueError(f"metric {self.name!r}: primary output {self.primary!r} is not among its outputs")

    def output(self, key: str) -> Output | None:
        """The declared output that ``key`` falls under, or None."""
        return next((o for o in self.outputs if o.matches(key)), None)

    def option_names(self) -> set[str] | None:
        """Keyword arguments a task may set in ``metric_options`` (None: the function takes ``**kwargs``)."""
        params = inspect.signature(self.fn).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return None
        injected = set(self.sample_fields) | set(self.run_options)
        if self.needs_images:
            injected |= {"images", "sample_ids"}
        positional = list(params)[:2]  # predictions, references
        return {name for name, p in params.items()
                if name not in injected and name not in positional
                and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}

    def check_options(self, options: Mapping[str, Any], where: str) -> None:
        """Raise ValueError naming ``where`` for an option the function does not take."""
        known = self.option_names()
        if known is None:
            return
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {unknown} for metric {self.name!r} "
                             f"(it takes: {', '.join(sorted(known)) or 'none'})")


class MetricStream(Protocol):
    """A metric computed a chunk of samples at a time.

    ``update(predictions, references, **kwargs)`` takes one chunk with the keyword arguments the
    spec's ``fn`` takes and returns the chunk's per-sample dicts; ``compute()`` returns the corpus
    values, unavailable keys, backend and warnings (``per_sample`` empty).  The contract, tested
    for every streamed metric: updates over any split of a corpus, then ``compute()``, give
    exactly what ``fn`` gives on the whole corpus (the same floats, not merely close ones), and
    errors name a sample by its index in the whole corpus.
    """

    def update(self, predictions: Sequence[Any], references: Sequence[Any],
               **kwargs: Any) -> Sequence[Mapping[str, float]]: ...

    def compute(self) -> MetricValues: ...


def plain_function_spec(name: str, fn: Callable[..., MetricValues], source: str) -> MetricSpec:
    """A spec for a plugin that registered a bare function: its outputs have no declared
    direction (reported, never ranked) until the plugin publishes a :class:`MetricSpec`."""
    return MetricSpec(name=name, fn=fn, version="unversioned", primary="*",
                      outputs=(Output("*", higher_is_better=None),),
                      description=(inspect.getdoc(fn) or "").split("\n")[0] or f"from {source}")
