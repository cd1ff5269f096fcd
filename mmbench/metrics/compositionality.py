"""Compositionality: Winoground's text/image/group scores and caption-choice accuracy
(SugarCrepe, ARO), each with its official tie rule.

**Winoground** (Thrush et al. 2022; the scoring functions of the ``facebook/winoground``
dataset card).  A sample has two images and two captions and four scores ``c{j}_i{k}``
(caption j with image k; higher = better match):

* text score: ``c0_i0 > c1_i0 and c1_i1 > c0_i1`` (each image prefers its own caption);
* image score: ``c0_i0 > c0_i1 and c1_i1 > c1_i0`` (each caption prefers its own image);
* group score: both.

The inequalities are strict: a tie is a failure (a constant model scores 0).

**Caption choice** (one image, several captions, one correct): the prediction is the
``argmax`` of the scores *in the official option order*, the first option winning a tie, as
the official code's ``np.argmax``; a sample is right when that is the correct option.  So
ties depend on where the official order puts the correct caption:

* SugarCrepe (``caption`` vs ``negative_caption``, official ``pos_score > neg_score``) and
  ARO VG-Relation / VG-Attribution (options ``[false, true]``, correct when ``argmax == 1``):
  the correct caption must score strictly higher; a tie is a failure.
* ARO COCO-Order / Flickr30k-Order (options ``[true, 4 shuffles]``, correct when
  ``argmax == 0``): a tie with the true caption counts as **right**, as in the official code.
  ``n_ties`` reports how many samples had a tie at the top, so a constant model's perfect
  order score is visible for what it is.

Aggregates: ``accuracy`` over all samples; ``accuracy/<split>`` per split (SugarCrepe's seven,
reported apart: the paper reports only these);
``macro_accuracy``: the mean over groups (ARO's relations or attribute pairs) of each group's
accuracy, leaving out groups with fewer than ``min_group_count`` samples (VG-Attribution: 25)
and groups in ``exclude_groups`` (VG-Relation: the symmetric relations of the official
notebook), as the ARO paper reports.  A failed sample counts as wrong everywhere.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import MetricValues

__all__ = ["winoground_correct", "score_winoground", "caption_choice_correct", "score_caption_choice",
           "WINOGROUND", "CAPTION_CHOICE"]

WINOGROUND_KEYS = ("c0_i0", "c0_i1", "c1_i0", "c1_i1")


def winoground_correct(s: Mapping[str, float]) -> tuple[bool, bool, bool]:
    """``(text, image, group)`` correctness of one sample's four scores (strict inequalities).

    >>> winoground_correct({"c0_i0": 0.9, "c0_i1": 0.2, "c1_i0": 0.3, "c1_i1": 0.8})
    (True, True, True)
    >>> winoground_correct({"c0_i0": 0.5, "c0_i1": 0.5, "c1_i0": 0.1, "c1_i1": 0.8})
    (True, False, False)
    """
    text = s["c0_i0"] > s["c1_i0"] and s["c1_i1"] > s["c0_i1"]
    image = s["c0_i0"] > s["c0_i1"] and s["c1_i1"] > s["c1_i0"]
    return bool(text), bool(image), bool(text and image)


def score_winoground(predictions: Sequence[Any], references: Sequence[Any] = (), *,
                     tags: Sequence[Any] | None = None) -> MetricValues:
    """``text_score``, ``image_score``, ``group_score`` (fractions) over samples; ``predictions[i]`` is
    ``{"c0_i0", "c0_i1", "c1_i0", "c1_i1"}`` or None (failed: wrong in all three).  With ``tags``
    (Winoground's ``collapsed_tag``: Object, Relation, Both), also ``<score>/<tag>``."""
    rows = []
    for i, p in enumerate(predictions):
        if p is None:
            rows.append((False, False, False))
            continue
        missing = [k for k in WINOGROUND_KEYS if k not in p]
        if missing:
            raise ValueError(f"sample {i}: missing score(s) {missing}")
        values = {k: float(p[k]) for k in WINOGROUND_KEYS}
        if not all(np.isfinite(v) for v in values.values()):
            raise ValueError(f"sample {i}: scores must be finite numbers, got {values}")
        rows.append(winoground_correct(values))
    if not rows:
        raise ValueError("no samples to score")
    hits = np.array(rows, dtype=float)
    names = ("text_score", "image_score", "group_score")
    corpus = {name: float(hits[:, j].mean()) for j, name in enumerate(names)}
    if tags is not None:
        labels = np.array(["" if t is None else str(t) for t in tags])
        for tag in sorted(set(labels) - {""}):
            for j, name in enumerate(names):
                corpus[f"{name}/{tag}"] = float(hits[labels == tag, j].mean())
    failed = sum(p is None for p in predictions)
    backend = {"implementation": "mmbench.metrics.compositionality", "convention": "Winoground dataset card",
               "ties": "strict inequalities: a tie fails"}
    return MetricValues(corpus=corpus, per_sample=tuple(dict(zip(names, map(float, r))) for r in rows),
                        backend={k: dict(backend) for k in corpus},
                        warnings=(f"{failed} samples failed: wrong in every score",) if failed else ())


def caption_choice_correct(scores: Sequence[float], correct: int) -> tuple[bool, bool]:
    """``(right, tied_at_top)``: right when the first-listed best option (``np.argmax``) is ``correct``.

    >>> caption_choice_correct([0.5, 0.5], 1), caption_choice_correct([0.5, 0.5, 0.1], 0)
    ((False, True), (True, True))
    """
    row = np.asarray(scores, dtype=np.float64)
    best = row.max()
    return int(np.argmax(row)) == int(correct), int(np.count_nonzero(row == best)) > 1


def score_caption_choice(predictions: Sequence[Any], references: Sequence[Any] = (), *,
                         correct: Sequence[Any] | None = None, groups: Sequence[Any] | None = None,
                         splits: Sequence[Any] | None = None, min_group_count: int = 0,
                         exclude_groups: Sequence[str] = ()) -> MetricValues:
    """Caption-choice accuracy (see the module docstring).

    ``predictions[i]``: the scores of sample i's captions in the official option order, or None
    (failed: wrong).  ``correct[i]``: the index of the right caption (default 0).  ``groups`` /
    ``splits``: per-sample labels for ``macro_accuracy`` and ``accuracy/<split>``.
    """
    n = len(predictions)
    if n == 0:
        raise ValueError("no samples to score")
    right = np.zeros(n)
    ties = 0
    for i, p in enumerate(predictions):
        if p is None:
            continue
        if len(p) < 2 or not np.all(np.isfinite(np.asarray(p, dtype=np.float64))):
            raise ValueError(f"sample {i}: expected finite scores for at least 2 captions, got {p!r}")
        index = 0 if correct is None or correct[i] is None else int(correct[i])
        if not 0 <= index < len(p):
            raise ValueError(f"sample {i}: correct caption {index} is not one of its {len(p)} captions")
        hit, tied = caption_choice_correct(p, index)
        right[i], ties = float(hit), ties + tied
    corpus: dict[str, float] = {}
    if splits is not None and any(s is not None for s in splits):
        labels = np.array(["" if s is None else str(s) for s in splits])
        per_split = {s: float(right[labels == s].mean()) for s in sorted(set(labels) - {""})}
        corpus.update({f"accuracy/{s}": v for s, v in per_split.items()})
    corpus["accuracy"] = float(right.mean())
    if groups is not None and any(g is not None for g in groups):
        labels = np.array(["" if g is None else str(g) for g in groups])
        excluded = set(exclude_groups)
        kept = [float(right[labels == g].mean()) for g in sorted(set(labels) - {""})
                if g not in excluded and np.count_nonzero(labels == g) >= min_group_count]
        if kept:
            corpus["macro_accuracy"] = float(np.mean(kept))
            corpus["n_groups"] = float(len(kept))
    corpus["n_ties"] = float(ties)
    failed = sum(p is None for p in predictions)
    backend = {"implementation": "mmbench.metrics.compositionality",
               "ties": "np.argmax in the official option order (first listed wins)"}
    return MetricValues(corpus=corpus, per_sample=tuple({"accuracy": float(r)} for r in right),
                        backend={k: dict(backend) for k in corpus},
                        warnings=(f"{failed} samples failed: counted wrong",) if failed else ())


WINOGROUND = MetricSpec(
    name="winoground", fn=score_winoground, version="1", primary="group_score",
    description="Winoground text, image and group scores (strict inequalities: a tie fails), overall and per tag",
    outputs=(Output("text_score"), Output("image_score"), Output("group_score"),
             Output("*_score/*", per_sample=False)),
    sample_fields={"tags": "tag"}, failed_prediction=None)

CAPTION_CHOICE = MetricSpec(
    name="caption-choice", fn=score_caption_choice, version="1", primary="accuracy",
    description="image + captions, one correct: accuracy by argmax in the official option order (SugarCrepe, "
                "ARO), per split, macro over groups, and the number of ties",
    outputs=(Output("accuracy"), Output("accuracy/*", per_sample=False),
             Output("macro_accuracy", aggregation="corpus", per_sample=False),
             Output("n_groups", higher_is_better=None, aggregation="count", per_sample=False),
             Output("n_ties", higher_is_better=None, aggregation="count", per_sample=False)),
    sample_fields={"correct": "correct", "groups": "group", "splits": "split"}, failed_prediction=None)
