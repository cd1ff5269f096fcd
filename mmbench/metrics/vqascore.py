"""Consistency scorers that ask a model with the "score" capability (:class:`~mmbench.types.ScoreRequest`):
VQAScore (Lin et al., ECCV 2024) and the image-text-matching probability of an ITM head.

This module never runs a model: the runner (or ``mmbench score consistency``) passes
``load_scorer(spec, device)``, which returns an adapter with ``score(list[ScoreRequest])``.

* **VQAScore**: the scorer is a generative VLM; the question
  :data:`VQASCORE_QUESTION` (``'Does this figure show "{}"? Please answer yes or no.'``, the
  template of linzhiqiu/t2v_metrics, ``default_question_template``) is the user turn and
  :data:`VQASCORE_ANSWER` (``"Yes"``, ``default_answer_template``) the continuation; the score is
  ``exp(mean token log-probability of the answer)``, as t2v_metrics computes it
  (``exp(-loss)`` with the answer's mean cross-entropy): P("Yes") when "Yes" is one token.
  In [0, 1], higher is better.  The corpus value is the mean over captions.
* **ITM**: the scorer is an image-text-matching head (BLIP ``BlipForImageTextRetrieval``, the
  ``hf-itm`` adapter), which answers ``log P(match)`` for the text; the score is ``P(match)``.

The scorer's name, its fingerprint hash and the templates go into the metric backend, so into
the task fingerprint: runs scored by different models or templates never share a group.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import ImageRef, MetricValues, ScoreRequest

__all__ = ["VQASCORE_QUESTION", "VQASCORE_ANSWER", "vqascore_metric", "itm_metric", "score_texts"]

#: t2v_metrics' default_question_template ({} is the caption or prompt)
VQASCORE_QUESTION = 'Does this figure show "{}"? Please answer yes or no.'
#: t2v_metrics' default_answer_template
VQASCORE_ANSWER = "Yes"


def score_texts(model: Any, requests: list[ScoreRequest], batch_size: int, what: str) -> list[tuple[float, int]]:
    """The first continuation's ``(sum, n)`` of each request, scored in batches; a failed request is
    a :class:`DataError` naming its sample (a consistency score is never silently partial)."""
    out: list[tuple[float, int]] = []
    for start in range(0, len(requests), batch_size):
        for result in model.score(requests[start:start + batch_size]):
            if not result.ok:
                raise DataError(f"the {what} scorer could not score this sample: {result.error}", sample_id=result.id)
            out.append(result.scores[0])
    return out


def _load(load_scorer: Callable[[str, str], Any], scorer: str, device: str, metric: str, keys: Sequence[str],
          required: bool) -> tuple[Any, MetricValues | None]:
    try:
        return load_scorer(scorer, device), None
    except MMBenchError as exc:
        if required:
            raise
        reason = f"the {metric} scorer {scorer!r} could not be loaded: {exc}"
        return None, MetricValues(corpus={}, unavailable={k: reason for k in keys}, warnings=(reason,))


def _check(predictions: Sequence[str], images: Sequence[ImageRef | None], ids: Sequence[str]) -> None:
    if not len(predictions) == len(images) == len(ids):
        raise ValueError(f"predictions ({len(predictions)}), images ({len(images)}) and sample_ids ({len(ids)}) "
                         "must have the same length")
    for sid, ref in zip(ids, images):
        if ref is None:
            raise DataError("a consistency score needs the sample's image, and it has none", sample_id=sid,
                            field="image")


def vqascore_metric(predictions: Sequence[str], references: Sequence[Sequence[str]] | None = None, *,
                    images: Sequence[ImageRef | None], load_scorer: Callable[[str, str], Any],
                    scorer: str, sample_ids: Sequence[str] | None = None, device: str = "auto",
                    question: str = VQASCORE_QUESTION, answer: str = VQASCORE_ANSWER, batch_size: int = 16,
                    required: bool = False) -> MetricValues:
    """VQAScore of each caption (or prompt) against its image (module docstring).  ``references``
    are not used (VQAScore is reference-free).  A scorer that cannot be loaded makes the metric
    unavailable with the reason (``required=True`` raises instead)."""
    ids = list(sample_ids) if sample_ids is not None else [str(i) for i in range(len(predictions))]
    _check(predictions, images, ids)
    if "{}" not in question:
        raise ValueError(f"the VQAScore question template {question!r} has no {{}} for the text")
    if not predictions:
        return MetricValues(corpus={}, unavailable={"VQAScore": "no texts to score"})
    model, failed = _load(load_scorer, scorer, device, "VQAScore", ["VQAScore"], required)
    if failed is not None:
        return failed
    requests = [ScoreRequest(id=sid, images=(image,), prompt=question.format(text), continuations=(answer,))
                for sid, image, text in zip(ids, images, predictions)]
    rows = score_texts(model, requests, batch_size, "VQAScore")
    per = [math.exp(total / n) if n else float("nan") for total, n in rows]
    if any(n == 0 for _, n in rows):
        raise MMBenchError(f"the VQAScore answer {answer!r} has no tokens for scorer {scorer!r}")
    backend = {"implementation": "mmbench.metrics.vqascore (exp of the answer's mean token log-prob)",
               "reference": "linzhiqiu/t2v_metrics", "question_template": question, "answer": answer,
               "scorer": scorer, "scorer_hash": model.fingerprint()["hash"]}
    return MetricValues(corpus={"VQAScore": sum(per) / len(per)}, per_sample=tuple({"VQAScore": v} for v in per),
                        backend={"VQAScore": backend})


def itm_metric(predictions: Sequence[str], references: Sequence[Sequence[str]] | None = None, *,
               images: Sequence[ImageRef | None], load_scorer: Callable[[str, str], Any], scorer: str,
               sample_ids: Sequence[str] | None = None, device: str = "auto", batch_size: int = 16,
               required: bool = False) -> MetricValues:
    """P(match) of each caption (or prompt) with its image from an image-text-matching head."""
    ids = list(sample_ids) if sample_ids is not None else [str(i) for i in range(len(predictions))]
    _check(predictions, images, ids)
    if not predictions:
        return MetricValues(corpus={}, unavailable={"ITMScore": "no texts to score"})
    model, failed = _load(load_scorer, scorer, device, "ITM", ["ITMScore"], required)
    if failed is not None:
        return failed
    if getattr(model, "adapter", None) != "hf-itm":
        raise MMBenchError(f"the ITM scorer {scorer!r} ({getattr(model, 'adapter', '?')}) is not an image-text "
                           "matching head; use a BLIP ITM checkpoint (BlipForImageTextRetrieval)")
    requests = [ScoreRequest(id=sid, images=(image,), continuations=(text,))
                for sid, image, text in zip(ids, images, predictions)]
    per = [math.exp(total) for total, _ in score_texts(model, requests, batch_size, "ITM")]
    backend = {"implementation": "mmbench.metrics.vqascore (softmax of the ITM head, match class)",
               "scorer": scorer, "scorer_hash": model.fingerprint()["hash"]}
    return MetricValues(corpus={"ITMScore": sum(per) / len(per)}, per_sample=tuple({"ITMScore": v} for v in per),
                        backend={"ITMScore": backend})


VQASCORE = MetricSpec(
    name="vqascore", fn=vqascore_metric, version="1", primary="VQAScore",
    description="VQAScore (Lin et al. 2024, as linzhiqiu/t2v_metrics): P('Yes') to 'Does this figure show "
                "\"{text}\"?' from a generative VLM with the score capability, named by the task",
    outputs=(Output("VQAScore"),), needs_images=True, run_options=("device", "load_scorer"))

ITM_SCORE = MetricSpec(
    name="itm-score", fn=itm_metric, version="1", primary="ITMScore",
    description="image-text matching probability of each caption from a BLIP ITM head named by the task",
    outputs=(Output("ITMScore"),), needs_images=True, run_options=("device", "load_scorer"))
