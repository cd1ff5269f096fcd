"""Answer consistency across rephrasings of one question (VQA).

A task groups questions that ask the same thing about the same image in different
words ("what color is the shape?", "which color is the shape?"); all members of a
group share one correct answer.  Answers are compared after the official VQA
answer normalisation (:func:`mmbench.metrics.vqa.normalize_answer`), so "Red" and
"red." agree.

* ``consistency``: the fraction of groups whose members were all answered
  identically (right or wrong).
* ``group_majority_accuracy``: the fraction of groups whose majority answer is
  correct.  The majority must be strict: a tie between two answers (2 "red",
  2 "blue") has no majority and counts as wrong, so a model cannot gain from
  splitting its votes.
* ``consistent_and_correct``: the fraction of groups answered correctly every time.

With ``subsets`` (a label per question, e.g. easy-VQA's ``phrasing``: ``template`` for
wordings seen in training, ``novel`` for new ones) the result also has, per label,
``accuracy/<label>`` (exact match of those questions) and ``consistency/<label>`` (the
consistency of each group restricted to its questions with that label, over groups with at
least two of them).

Groups of one question are trivially consistent; they are counted and reported in
``warnings``.  An empty answer (a failed sample is scored as one) is an answer like
any other and breaks consistency with non-empty ones.

Example: groups ``g1 = ["red", "Red", "blue"]`` (reference red) and
``g2 = ["yes", "yes"]`` (reference no) give consistency 1/2 (g2), majority
accuracy 1/2 (g1's majority "red" is right, g2's "yes" is wrong) and
consistent_and_correct 0.
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence

from mmbench.metrics.vqa import normalize_answer
from mmbench.types import MetricValues

__all__ = ["answer_consistency"]


def answer_consistency(predictions: Sequence[str], answers: Sequence[str | Sequence[str]], *,
                       groups: Sequence[Hashable | None],
                       subsets: Sequence[str | None] | None = None) -> MetricValues:
    """Consistency and majority accuracy over question groups (see the module docstring).

    Args:
        predictions: one answer per question.
        answers: the correct answer per question (a string, or a one-element list);
            every question of a group must have the same one.
        groups: the group label of each question (None is an error: every question
            of a consistency task belongs to a group).
        subsets: optional label per question (None: in no subset) for the per-subset
            breakdown described in the module docstring.

    Returns:
        :class:`MetricValues` with corpus ``consistency``, ``group_majority_accuracy``,
        ``consistent_and_correct`` and ``n_groups``; ``per_sample`` gives each question
        ``group_consistent`` (1.0/0.0, its group's value).
    """
    if not len(predictions) == len(answers) == len(groups):
        raise ValueError(f"predictions ({len(predictions)}), answers ({len(answers)}) and groups ({len(groups)}) "
                         "must have the same length")
    if not predictions:
        raise ValueError("no questions to score")
    members: dict[Hashable, list[int]] = {}
    reference: dict[Hashable, str] = {}
    for i, (answer, group) in enumerate(zip(answers, groups)):
        if group is None:
            raise ValueError(f"question {i} has no group: every question of a consistency task needs one")
        if not isinstance(answer, str):
            if len(answer) != 1:
                raise ValueError(f"question {i}: expected one reference answer, got {len(answer)}")
            answer = answer[0]
        ref = normalize_answer(answer)
        if reference.setdefault(group, ref) != ref:
            raise ValueError(f"group {group!r}: its questions have different reference answers "
                             f"({reference[group]!r} and {ref!r}); rephrasings must share one answer")
        members.setdefault(group, []).append(i)

    normalized = [normalize_answer(p if isinstance(p, str) else "") for p in predictions]
    consistent = majority_right = all_right = singletons = 0
    per_sample: list[dict[str, float]] = [{} for _ in predictions]
    for group, rows in members.items():
        votes = Counter(normalized[i] for i in rows)
        same = len(votes) == 1
        ranked = votes.most_common(2)
        strict = len(ranked) == 1 or ranked[0][1] > ranked[1][1]
        consistent += same
        majority_right += strict and ranked[0][0] == reference[group]
        all_right += same and ranked[0][0] == reference[group]
        singletons += len(rows) == 1
        for i in rows:
            per_sample[i] = {"group_consistent": float(same)}
    n = len(members)
    corpus = {"consistency": consistent / n, "group_majority_accuracy": majority_right / n,
              "consistent_and_correct": all_right / n, "n_groups": float(n)}
    if subsets is not None:
        if len(subsets) != len(predictions):
            raise ValueError(f"subsets ({len(subsets)}) must have one label per question ({len(predictions)})")
        for label in sorted({s for s in subsets if s is not None}):
            rows_in = [i for i, s in enumerate(subsets) if s == label]
            corpus[f"accuracy/{label}"] = sum(normalized[i] == reference[groups[i]] for i in rows_in) / len(rows_in)
            restricted = [[normalized[i] for i in rows if subsets[i] == label] for rows in members.values()]
            restricted = [answers_ for answers_ in restricted if len(answers_) >= 2]
            if restricted:
                corpus[f"consistency/{label}"] = sum(len(set(a)) == 1 for a in restricted) / len(restricted)
    warnings = ()
    if singletons:
        warnings = (f"{singletons} of {n} groups have a single question (trivially consistent)",)
    backend = {"implementation": "mmbench.metrics.consistency", "normalization": "official VQA answer normalisation",
               "majority": "strict (ties count as wrong)"}
    return MetricValues(corpus=corpus, per_sample=tuple(per_sample), backend={k: dict(backend) for k in corpus},
                        warnings=warnings)
