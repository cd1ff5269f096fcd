"""POPE (object hallucination): yes/no answers scored as the official evaluation does.

:func:`pope_answer` is the parsing of POPE's ``evaluate.py`` (RUCAIBox/POPE@3df3ba1b):

1. keep the text before the first ``"."`` (the first sentence; a text without ``"."`` is kept whole);
2. delete every ``","``;
3. split on single spaces (``" "``; newlines and tabs do not split);
4. the answer is "no" if one of the pieces is exactly ``"No"``, ``"no"`` or ``"not"``,
   and "yes" otherwise - including an empty, off-topic or unparseable answer.

Whole pieces only, so ``"notice"`` or ``"nothing"`` do not mean no (the pitfall of
VLMEvalKit#73); ``"NO"``, ``"No!"`` and ``"No\\n"`` are not pieces the rule knows, so they
mean yes, and ``"Yes, there is not"`` means no.

Scores, with "yes" the positive class: ``accuracy`` = (TP + TN) / N, ``precision`` =
TP / (TP + FP), ``recall`` = TP / (TP + FN), ``f1`` = 2PR / (P + R), ``yes_ratio`` = share of
answers parsed as yes.  A label is ``"yes"`` or ``"no"`` (upper case and surrounding spaces
allowed).  With a ``split`` per sample (random, popular, adversarial) each is also reported
as ``<metric>/<split>``, and ``f1_mean`` is the mean of the splits' F1, as POPE papers
report.  A ratio whose denominator is 0 (no yes answer: precision) is unavailable with the
reason; the official script stops with ZeroDivisionError there.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.metrics.streams import Labels, whole
from mmbench.types import MetricValues

_NO_WORDS = frozenset({"No", "not", "no"})


def pope_answer(text: str) -> str:
    """``"yes"`` or ``"no"``, by the official rule (module docstring).

    >>> pope_answer("No, there is no dog."), pope_answer("I notice a dog."), pope_answer("")
    ('no', 'yes', 'yes')
    """
    if not isinstance(text, str):
        raise ValueError(f"answer must be a str, got {type(text).__name__}")
    first = text.split(".")[0].replace(",", "")
    return "no" if _NO_WORDS.intersection(first.split(" ")) else "yes"


def _label(refs: Sequence[str], where: str) -> bool:
    if isinstance(refs, str) or not refs or not isinstance(refs[0], str) \
            or refs[0].strip().lower() not in ("yes", "no"):
        raise ValueError(f"{where}: the label must be [\"yes\"] or [\"no\"], got {refs!r}")
    return refs[0].strip().lower() == "yes"


def _ratio(num: int, den: int, what: str, unavailable: dict[str, str], key: str) -> float | None:
    if den == 0:
        unavailable[key] = f"{what} is 0"
        return None
    return num / den


def _scores(said: Sequence[bool], truth: Sequence[bool], suffix: str, corpus: dict[str, float],
            unavailable: dict[str, str]) -> None:
    tp = sum(s and t for s, t in zip(said, truth))
    fp = sum(s and not t for s, t in zip(said, truth))
    fn = sum(t and not s for s, t in zip(said, truth))
    n = len(said)
    corpus[f"accuracy{suffix}"] = (n - fp - fn) / n
    precision = _ratio(tp, tp + fp, "TP + FP (no answer was yes)", unavailable, f"precision{suffix}")
    recall = _ratio(tp, tp + fn, "TP + FN (no label is yes)", unavailable, f"recall{suffix}")
    for key, value in (("precision", precision), ("recall", recall)):
        if value is not None:
            corpus[f"{key}{suffix}"] = value
    if precision is None or recall is None:
        unavailable[f"f1{suffix}"] = "precision or recall is unavailable"
    elif precision + recall == 0:
        unavailable[f"f1{suffix}"] = "precision + recall is 0 (no true positive)"
    else:
        corpus[f"f1{suffix}"] = 2 * precision * recall / (precision + recall)
    corpus[f"yes_ratio{suffix}"] = sum(said) / n


class PopeScores:
    """:func:`score_pope` as a stream (:class:`~mmbench.metrics.spec.MetricStream`): per item, the
    answer (yes or not), the label and a split code kept between chunks."""

    def __init__(self) -> None:
        self.said, self.truth, self.splits = bytearray(), bytearray(), Labels()

    def update(self, predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
               splits: Sequence[str | None] | None = None) -> tuple[dict[str, float], ...]:
        if len(predictions) != len(answers) or (splits is not None and len(splits) != len(answers)):
            raise ValueError(f"length mismatch: {len(predictions)} predictions, {len(answers)} labels"
                             + (f", {len(splits)} splits" if splits is not None else ""))
        said = [pope_answer(p) == "yes" for p in predictions]
        truth = [_label(r, f"item {i}") for i, r in enumerate(answers, len(self.said))]
        self.said.extend(said)
        self.truth.extend(truth)
        self.splits.extend(splits, len(said))
        return tuple({"accuracy": float(s == t), "yes_ratio": float(s)} for s, t in zip(said, truth))

    def compute(self) -> MetricValues:
        backend = {"accuracy": {"implementation": "mmbench.metrics.pope (POPE evaluate.py rules, "
                                                  "RUCAIBox/POPE@3df3ba1b)"}}
        if not self.said:
            return MetricValues(corpus={}, unavailable={"accuracy": "no items to score"}, backend=backend)
        said, truth, splits = [b == 1 for b in self.said], [b == 1 for b in self.truth], self.splits.values()
        corpus: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        _scores(said, truth, "", corpus, unavailable)
        names = list(dict.fromkeys(str(s) for s in splits if s is not None))
        for name in names:
            rows = [i for i, s in enumerate(splits) if s is not None and str(s) == name]
            _scores([said[i] for i in rows], [truth[i] for i in rows], f"/{name}", corpus, unavailable)
        if names:
            f1s = [corpus.get(f"f1/{name}") for name in names]
            if None in f1s:
                unavailable["f1_mean"] = "a split's f1 is unavailable"
            else:
                corpus["f1_mean"] = sum(f1s) / len(f1s)
        return MetricValues(corpus=corpus, unavailable=unavailable, backend=backend)


def score_pope(predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
               splits: Sequence[str | None] | None = None) -> MetricValues:
    """POPE scores of raw answers against ``["yes"]``/``["no"]`` labels (module docstring;
    :class:`PopeScores` in one update).

    ``corpus``: ``accuracy``, ``precision``, ``recall``, ``f1``, ``yes_ratio``, and with
    ``splits`` each as ``<metric>/<split>`` plus ``f1_mean``.  ``per_sample``:
    ``{"accuracy": 0/1, "yes_ratio": 1 if the answer was yes}``.

    >>> score_pope(["Yes", "No.", "There is a dog"], [["yes"], ["yes"], ["no"]]).corpus["accuracy"]
    0.3333333333333333
    """
    return whole(PopeScores(), predictions, answers, splits=splits)


POPE = MetricSpec(
    name="pope", fn=score_pope, version="1", primary="f1",
    description="POPE yes/no scores (official evaluate.py parsing: 'no'/'No'/'not' as a word of the first sentence "
                "means no): accuracy, precision, recall, F1, yes ratio, per split and their mean F1",
    outputs=(Output("accuracy"), Output("accuracy/*", per_sample=False),
             Output("precision", aggregation="corpus", per_sample=False),
             Output("precision/*", aggregation="corpus", per_sample=False),
             Output("recall", aggregation="corpus", per_sample=False),
             Output("recall/*", aggregation="corpus", per_sample=False),
             Output("f1", aggregation="corpus", per_sample=False),
             Output("f1/*", aggregation="corpus", per_sample=False),
             Output("f1_mean", aggregation="corpus", per_sample=False),
             Output("yes_ratio", higher_is_better=None),
             Output("yes_ratio/*", higher_is_better=None, per_sample=False)),
    sample_fields={"splits": "split"}, stream=PopeScores)
