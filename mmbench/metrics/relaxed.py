"""ChartQA's relaxed accuracy, as the reference scorer computes it.

ChartQA's authors define it (Masry et al. 2022, §5.1) and publish no scorer; the scorer
everyone reproduces is ``relaxed_correctness(target, prediction)`` in pix2struct's
``pix2struct/metrics.py`` (google-research/pix2struct@945f27e9), which
``tests/data/relaxed_accuracy`` ran unmodified.  For one reference ``target``:

* each side is read as a number by Python's ``float()`` (surrounding whitespace, ``"1e3"``,
  ``"1_000"``, ``"nan"``, ``"inf"``, non-ASCII digits accepted; ``"1,000"``, ``"$5"``,
  ``"5 kg"`` not); a text ending in ``"%"`` is that number / 100 (``"45%"`` is 0.45, so it
  does *not* match the target ``"45"``);
* if the prediction is a number and the target a *non-zero* number: right when
  ``|prediction - target| / |target| <= 0.05``.  Years are numbers too: ``"2016"`` is right
  for ``"2015"`` (0.05%);
* otherwise (either is not a number, or the target is 0): right when the lower-cased strings
  are equal.  A target of ``"0"`` therefore needs the string ``"0"`` (``"0.0"`` is wrong).

The target is the reference: the tolerance is relative to it.  Swapping the arguments (as
VLMEvalKit did until its #584 fix) changes results: the prediction ``"95.1"`` is right for
the target ``"100"`` (4.9%), but ``"100"`` is wrong for ``"95.1"`` (5.15%).  The prediction is not stripped
(VLMEvalKit strips it; mmbench's tasks strip the answer line before scoring).

With several references the best counts (pix2struct's ``max`` over targets).
``relaxed_accuracy`` is the mean over questions, and ``relaxed_accuracy/<split>`` per split
(ChartQA: human / augmented).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from mmbench.metrics.inputs import check_short_answers
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.metrics.streams import Labels, group_means, whole
from mmbench.types import MetricValues


def _to_float(text: str) -> float | None:
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correct(target: str, prediction: str, max_relative_change: float = 0.05) -> bool:
    """Whether ``prediction`` is right for the reference ``target`` (module docstring).

    >>> relaxed_correct("100", "104.9"), relaxed_correct("45", "45%"), relaxed_correct("Yes", "yes")
    (True, False, True)
    """
    pred, want = _to_float(prediction), _to_float(target)
    if pred is not None and want:
        return abs(pred - want) / abs(want) <= max_relative_change
    return prediction.lower() == target.lower()


class RelaxedAccuracy:
    """:func:`score_relaxed_accuracy` as a stream (:class:`~mmbench.metrics.spec.MetricStream`): a
    score and a split code per question kept between chunks."""

    def __init__(self) -> None:
        self.scores, self.splits = array("d"), Labels()

    def update(self, predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
               splits: Sequence[str | None] | None = None,
               max_relative_change: float = 0.05) -> tuple[dict[str, float], ...]:
        check_short_answers(predictions, answers, labels=("splits", splits), start=len(self.scores))
        scores = [float(any(relaxed_correct(r, p, max_relative_change) for r in refs))
                  for p, refs in zip(predictions, answers)]
        self.scores.extend(scores)
        self.splits.extend(splits, len(scores))
        return tuple({"relaxed_accuracy": s} for s in scores)

    def compute(self) -> MetricValues:
        backend = {"relaxed_accuracy": {"implementation": "mmbench.metrics.relaxed (pix2struct relaxed_correctness, "
                                                          "google-research/pix2struct@945f27e9)"}}
        if not self.scores:
            return MetricValues(corpus={}, unavailable={"relaxed_accuracy": "no questions to score"}, backend=backend)
        corpus = {"relaxed_accuracy": sum(self.scores) / len(self.scores)}
        corpus.update({f"relaxed_accuracy/{k}": v
                       for k, v in group_means(self.scores, self.splits.values(), str).items()})
        return MetricValues(corpus=corpus, backend=backend)


def score_relaxed_accuracy(predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
                           splits: Sequence[str | None] | None = None,
                           max_relative_change: float = 0.05) -> MetricValues:
    """Relaxed accuracy, best over each question's references (:class:`RelaxedAccuracy` in one update).

    ``corpus``: ``relaxed_accuracy`` and ``relaxed_accuracy/<split>``; ``per_sample``:
    ``{"relaxed_accuracy": 0/1}``.
    """
    return whole(RelaxedAccuracy(), predictions, answers, splits=splits, max_relative_change=max_relative_change)


RELAXED_ACCURACY = MetricSpec(
    name="relaxed-accuracy", fn=score_relaxed_accuracy, version="1", primary="relaxed_accuracy",
    description="ChartQA relaxed accuracy (numbers within 5% of the reference, exact match otherwise; "
                "pix2struct relaxed_correctness), per split",
    outputs=(Output("relaxed_accuracy"), Output("relaxed_accuracy/*", per_sample=False)),
    sample_fields={"splits": "split"}, stream=RelaxedAccuracy)
