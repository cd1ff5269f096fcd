"""Answer consistency across rephrasings of one question (VQA).

A task groups questions that ask the same thing about the same image in different
words ("what color is the shape?", "which color is the shape?"); all members of a
group share one reference: a single answer (easy-VQA) or the 10 human answers of the
original question (VQA-Rephrasings).  Predictions are compared after the official VQA
answer normalisation (:func:`mmbench.metrics.vqa.normalize_answer`), so "Red" and
"red." agree.

A question is **correct** when it matches its single reference answer (exact match
after normalisation), or, with several human answers, when its official VQA accuracy
is above 0 (the criterion of the VQA-Rephrasings consensus score).

* ``consistency``: the fraction of groups whose members were all answered
  identically (right or wrong).
* ``group_majority_accuracy``: the mean over groups of the score of the group's
  majority answer (1/0 for a single reference answer; the official VQA accuracy with
  10 answers).  The majority must be strict: a tie between two answers (2 "red",
  2 "blue") has no majority and scores 0, so a model cannot gain from splitting its
  votes.
* ``consistent_and_correct``: the fraction of groups answered identically and correctly.
* ``CS(k)``, the consensus score of Shah et al. (CVPR 2019, VQA-Rephrasings): for each
  group, the fraction of its k-question subsets whose questions are all correct,
  averaged over groups; with ``c`` correct questions out of ``n`` that fraction is
  ``C(c, k) / C(n, k)``.  CS(k) averages over the groups with at least k questions and
  is reported for k = 1 .. 4 while some group is that large; CS(1) is per-question
  accuracy averaged per group.

With ``subsets`` (a label per question, e.g. easy-VQA's ``phrasing``: ``template`` for
wordings seen in training, ``novel`` for new ones) the result also has, per label,
``accuracy/<label>`` (the fraction of those questions that are correct) and
``consistency/<label>`` (the consistency of each group restricted to its questions with
that label, over groups with at least two of them).

Groups of one question are trivially consistent; they are counted and reported in
``warnings``.  An empty answer (a failed sample is scored as one) is an answer like
any other and breaks consistency with non-empty ones.

Example: groups ``g1 = ["red", "Red", "blue"]`` (reference red) and
``g2 = ["yes", "yes"]`` (reference no) give consistency 1/2 (g2), majority
accuracy 1/2 (g1's majority "red" is right, g2's "yes" is wrong),
consistent_and_correct 0, CS(1) = (2/3 + 0) / 2, CS(2) = (1/3 + 0) / 2 and CS(3) = 0
(over g1 alone, the only group of 3).
"""

from __future__ import annotations

from collections import Counter
from math import comb
from typing import Hashable, Sequence

from mmbench.metrics.vqa import normalize_answer, vqa_accuracy_one
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import MetricValues

__all__ = ["answer_consistency"]

#: largest k of the consensus score CS(k) (VQA-Rephrasings groups have 4 questions)
MAX_CONSENSUS_K = 4


def _reference(answer: str | Sequence[str], i: int) -> tuple[str, ...]:
    if isinstance(answer, str):
        return (answer,)
    refs = tuple(answer)
    if not refs or not all(isinstance(a, str) for a in refs):
        raise ValueError(f"question {i}: the reference must be a string or a non-empty list of strings")
    return refs


def _score(prediction: str, reference: tuple[str, ...]) -> float:
    """1/0 exact match against one answer; the official VQA accuracy against several."""
    if len(reference) == 1:
        return float(normalize_answer(prediction) == normalize_answer(reference[0]))
    return vqa_accuracy_one(prediction, reference)


def answer_consistency(predictions: Sequence[str], answers: Sequence[str | Sequence[str]], *,
                       groups: Sequence[Hashable | None],
                       subsets: Sequence[str | None] | None = None) -> MetricValues:
    """Consistency, majority accuracy and consensus scores over question groups (module docstring).

    Args:
        predictions: one answer per question.
        answers: the reference per question: one answer (a string or one-element list) or
            the human answers (a list); every question of a group must have the same one
            (compared after normalisation, as a multiset).
        groups: the group label of each question (None is an error: every question
            of a consistency task belongs to a group).
        subsets: optional label per question (None: in no subset) for the per-subset
            breakdown described in the module docstring.

    Returns:
        :class:`MetricValues` with corpus ``consistency``, ``group_majority_accuracy``,
        ``consistent_and_correct``, ``CS(1)`` .. ``CS(k)`` and ``n_groups``; ``per_sample``
        gives each question ``group_consistent`` (1.0/0.0, its group's value).
    """
    if not len(predictions) == len(answers) == len(groups):
        raise ValueError(f"predictions ({len(predictions)}), answers ({len(answers)}) and groups ({len(groups)}) "
                         "must have the same length")
    if not predictions:
        raise ValueError("no questions to score")
    if subsets is not None and len(subsets) != len(predictions):
        raise ValueError(f"subsets ({len(subsets)}) must have one label per question ({len(predictions)})")
    members: dict[Hashable, list[int]] = {}
    reference: dict[Hashable, tuple[str, ...]] = {}
    for i, (answer, group) in enumerate(zip(answers, groups)):
        if group is None:
            raise ValueError(f"question {i} has no group: every question of a consistency task needs one")
        ref = _reference(answer, i)
        key = tuple(sorted(normalize_answer(a) for a in ref))
        first = reference.setdefault(group, ref)
        if tuple(sorted(normalize_answer(a) for a in first)) != key:
            raise ValueError(f"group {group!r}: its questions have different reference answers "
                             f"({list(first)!r} and {list(ref)!r}); rephrasings must share one reference")
        members.setdefault(group, []).append(i)

    normalized = [normalize_answer(p if isinstance(p, str) else "") for p in predictions]
    correct = [_score(p if isinstance(p, str) else "", reference[g]) > 0 for p, g in zip(predictions, groups)]
    max_k = min(MAX_CONSENSUS_K, max(len(rows) for rows in members.values()))
    consistent = all_right = singletons = 0
    majority_score = 0.0
    consensus = [0.0] * max_k
    consensus_groups = [0] * max_k
    per_sample: list[dict[str, float]] = [{} for _ in predictions]
    for group, rows in members.items():
        votes = Counter(normalized[i] for i in rows)
        same = len(votes) == 1
        ranked = votes.most_common(2)
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:  # a strict majority
            winner = next(predictions[i] for i in rows if normalized[i] == ranked[0][0])
            majority_score += _score(winner if isinstance(winner, str) else "", reference[group])
        consistent += same
        all_right += same and all(correct[i] for i in rows)
        singletons += len(rows) == 1
        n_correct = sum(correct[i] for i in rows)
        for k in range(1, min(max_k, len(rows)) + 1):
            consensus[k - 1] += comb(n_correct, k) / comb(len(rows), k)
            consensus_groups[k - 1] += 1
        for i in rows:
            per_sample[i] = {"group_consistent": float(same)}
    n = len(members)
    corpus = {"consistency": consistent / n, "group_majority_accuracy": majority_score / n,
              "consistent_and_correct": all_right / n}
    corpus.update({f"CS({k})": consensus[k - 1] / consensus_groups[k - 1] for k in range(1, max_k + 1)})
    corpus["n_groups"] = float(n)
    if subsets is not None:
        for label in sorted({s for s in subsets if s is not None}):
            rows_in = [i for i, s in enumerate(subsets) if s == label]
            corpus[f"accuracy/{label}"] = sum(correct[i] for i in rows_in) / len(rows_in)
            restricted = [[normalized[i] for i in rows if subsets[i] == label] for rows in members.values()]
            restricted = [answers_ for answers_ in restricted if len(answers_) >= 2]
            if restricted:
                corpus[f"consistency/{label}"] = sum(len(set(a)) == 1 for a in restricted) / len(restricted)
    warnings: tuple[str, ...] = ()
    if singletons:
        warnings += (f"{singletons} of {n} groups have a single question (trivially consistent)",)
    if consensus_groups[-1] < n:
        warnings += (f"CS({max_k}) is over the {consensus_groups[-1]} of {n} groups with at least {max_k} "
                     "questions (CS(k) averages over groups with at least k)",)
    backend = {"implementation": "mmbench.metrics.consistency", "normalization": "official VQA answer normalisation",
               "majority": "strict (ties score 0)",
               "consensus": "CS(k) of Shah et al. 2019: correct = exact match, or VQA accuracy > 0"}
    return MetricValues(corpus=corpus, per_sample=tuple(per_sample), backend={k: dict(backend) for k in corpus},
                        warnings=warnings)


ANSWER_CONSISTENCY = MetricSpec(
    name="answer-consistency", fn=answer_consistency, version="1", primary="consistency",
    description="VQA answer consistency across rephrasings: fraction of groups answered identically, "
                "accuracy of each group's strict-majority answer",
    # statistics over groups of questions, not means over questions
    outputs=(Output("consistency", aggregation="corpus", per_sample=False),
             Output("group_majority_accuracy", aggregation="corpus", per_sample=False),
             Output("consistent_and_correct", aggregation="corpus", per_sample=False),
             Output("CS(*)", aggregation="corpus", per_sample=False),
             Output("n_groups", higher_is_better=None, aggregation="count", per_sample=False),
             Output("accuracy/*", per_sample=False),
             Output("consistency/*", aggregation="corpus", per_sample=False)),
    sample_fields={"groups": "group", "subsets": "phrasing"})
