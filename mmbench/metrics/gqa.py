"""GQA accuracy, as GQA's official ``eval.py`` computes it.

The official evaluation (``eval.py`` from the GQA download page, gqadataset.org; the copy
run for ``tests/data/gqa`` is described there) gives a question 1 point when
``predicted == gold``: the raw strings, with **no normalisation at all** - no lower-casing,
no stripping, no punctuation or article rules (``"Yes"``, ``"yes."`` and ``" yes"`` are all
wrong for ``"yes"``).  Accuracy is the mean over the (balanced) questions; the official also
reports it per structural and semantic type.  Pipelines that score chat models first clean
the prediction themselves (LLaVA's ``convert_gqa_for_eval.py`` strips a trailing period and
lower-cases); mmbench's VQA tasks keep the first non-empty line of the output, stripped.

``gqa-accuracy`` reports ``accuracy`` and, with a ``question_type`` per sample,
``accuracy/<question type>``.  A sample with several references is right when it equals
one (GQA has one answer per question).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from mmbench.metrics.inputs import check_short_answers
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.metrics.streams import Labels, group_means, whole
from mmbench.types import MetricValues


class GQAAccuracy:
    """:func:`score_gqa_accuracy` as a stream (:class:`~mmbench.metrics.spec.MetricStream`): a score
    and a question-type code per question kept between chunks."""

    def __init__(self) -> None:
        self.scores, self.types = array("d"), Labels()

    def update(self, predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
               question_types: Sequence[str | None] | None = None) -> tuple[dict[str, float], ...]:
        check_short_answers(predictions, answers, labels=("", question_types), start=len(self.scores))
        scores = [float(p in refs) for p, refs in zip(predictions, answers)]
        self.scores.extend(scores)
        self.types.extend(question_types, len(scores))
        return tuple({"accuracy": s} for s in scores)

    def compute(self) -> MetricValues:
        if not self.scores:
            return MetricValues(corpus={}, unavailable={"accuracy": "no questions to score"})
        corpus = {"accuracy": sum(self.scores) / len(self.scores)}
        corpus.update({f"accuracy/{k}": v for k, v in group_means(self.scores, self.types.values(), str).items()})
        return MetricValues(corpus=corpus,
                            backend={"accuracy": {"implementation": "mmbench.metrics.gqa (GQA eval.py: exact match)"}})


def score_gqa_accuracy(predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
                       question_types: Sequence[str | None] | None = None) -> MetricValues:
    """GQA accuracy: exact string equality with the gold answer (:class:`GQAAccuracy` in one update).

    ``corpus``: ``accuracy`` and ``accuracy/<question type>``; ``per_sample``: ``{"accuracy": 0/1}``.

    >>> score_gqa_accuracy(["yes", "Yes"], [["yes"], ["yes"]]).corpus
    {'accuracy': 0.5}
    """
    return whole(GQAAccuracy(), predictions, answers, question_types=question_types)


GQA_ACCURACY = MetricSpec(
    name="gqa-accuracy", fn=score_gqa_accuracy, version="1", primary="accuracy",
    description="GQA accuracy (official eval.py: the prediction must equal the answer exactly), per question type",
    outputs=(Output("accuracy"), Output("accuracy/*", per_sample=False)),
    sample_fields={"question_types": "question_type"}, stream=GQAAccuracy)
