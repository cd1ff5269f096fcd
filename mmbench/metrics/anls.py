"""ANLS (Average Normalized Levenshtein Similarity), as the DocVQA / InfographicVQA evaluation.

The official evaluation is the Robust Reading Competition's script (distributed on
docvqa.org and rrc.cvc.uab.es; the copy run for ``tests/data/anls`` is
``eval_mm/infographicsvqa_eval.py`` at QwenLM/Qwen-VL@aa00ed04, unmodified).  Per question,
for each reference answer ``a`` and the prediction ``p``:

* both are stripped, lower-cased (``str.lower``) and their whitespace runs collapsed to one
  space: ``a'``, ``p'``;
* ``nl = levenshtein(a', p') / max(len(a.upper()), len(p.upper()))`` - the length is that
  of the *raw* strings upper-cased (so surrounding spaces count, and ``"ß"`` counts 2);
  ``nl = 0`` when both are empty;
* the question scores ``s = 1 - min(nl)`` over its answers, and 0 if ``s < τ`` (τ = 0.5).

So ``nl`` of exactly 0.5 scores 0.5 (the paper's ``NL < τ`` would score 0 there, and so does
pix2struct's ``anls_metric``, which also does not strip or collapse spaces).  ``anls`` is the
mean over questions.  The distance is unit-cost Levenshtein over code points
(``rapidfuzz.distance.Levenshtein``, equal to the official's dynamic programme).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.metrics.streams import whole
from mmbench.types import MetricValues


def _normalized_distance(answer: str, prediction: str) -> float:
    length = max(len(answer.upper()), len(prediction.upper()))
    if length == 0:
        return 0.0
    a = " ".join(answer.strip().lower().split())
    p = " ".join(prediction.strip().lower().split())
    return Levenshtein.distance(a, p) / length


def anls_one(prediction: str, answers: Sequence[str], threshold: float = 0.5) -> float:
    """The official per-question ANLS of ``prediction`` against its reference ``answers``.

    >>> anls_one("Hello Wrld", ["hello world"])
    0.9090909090909091
    >>> anls_one("ab", ["ax"])  # nl = 0.5 is kept
    0.5
    """
    if not isinstance(prediction, str):
        raise ValueError(f"prediction must be a str, got {type(prediction).__name__}")
    if isinstance(answers, str) or not answers or not all(isinstance(a, str) for a in answers):
        raise ValueError(f"answers must be a non-empty list of str, got {answers!r}")
    score = 1 - min(_normalized_distance(a, prediction) for a in answers)
    return 0.0 if score < threshold else score


class ANLSScores:
    """:func:`score_anls` as a stream (:class:`~mmbench.metrics.spec.MetricStream`): a score per
    question kept between chunks."""

    def __init__(self) -> None:
        self.scores = array("d")
        self.threshold = 0.5

    def update(self, predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
               threshold: float = 0.5) -> tuple[dict[str, float], ...]:
        if len(predictions) != len(answers):
            raise ValueError(f"length mismatch: {len(predictions)} predictions, {len(answers)} reference lists")
        start, self.threshold = len(self.scores), threshold
        scores = []
        for i, (p, refs) in enumerate(zip(predictions, answers), start):
            try:
                scores.append(anls_one(p, refs, threshold))
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
        self.scores.extend(scores)
        return tuple({"anls": s} for s in scores)

    def compute(self) -> MetricValues:
        backend = {"anls": {"implementation": "mmbench.metrics.anls (RRC DocVQA/InfographicVQA rules, "
                                              f"tau={self.threshold})"}}
        if not self.scores:
            return MetricValues(corpus={}, unavailable={"anls": "no questions to score"}, backend=backend)
        return MetricValues(corpus={"anls": sum(self.scores) / len(self.scores)}, backend=backend)


def score_anls(predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
               threshold: float = 0.5) -> MetricValues:
    """Mean official ANLS over questions (:class:`ANLSScores` in one update).  ``corpus``: ``{"anls"}``;
    ``per_sample``: ``{"anls"}``."""
    return whole(ANLSScores(), predictions, answers, threshold=threshold)


ANLS = MetricSpec(
    name="anls", fn=score_anls, version="1", primary="anls",
    description="ANLS, tau 0.5 (DocVQA/InfographicVQA official evaluation: lower-cased, spaces collapsed, "
                "best over the reference answers)",
    outputs=(Output("anls"),), stream=ANLSScores)
