"""``mmbench score anls | relaxed-accuracy | pope | multiple-choice``: benchmark answer files
re-scored with :mod:`mmbench.metrics` (ANLS, ChartQA relaxed accuracy, POPE, multiple choice).

Predictions: JSON lines (or a JSON array) ``{"question_id"|"id", "prediction"|"answer"}``; a run's
own ``predictions/<task>.jsonl`` works as it is.  References, one JSON line per question:

* anls: ``{"question_id", "answers": [...]}``;
* relaxed-accuracy: ``{"question_id", "answer": "..."}`` or ``"answers": [...]``, ``"split"?``;
* pope: ``{"question_id", "answer": "yes"|"no", "split"?}``;
* multiple-choice: ``{"question_id", "options": {"A": "...", "B": "..."}, "answer": "B",
  "group"?, "category"?}`` (``group``: the original question of a rotation, circular evaluation).

Without references, a run's predictions file is its own: each line's ``references`` and the
``meta`` fields the metric uses (``split``, ``choices``, ``group``, ``category``), so it
re-scores to the run's numbers.  Ids follow the VQA rule (``question_id``, else ``id``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mmbench.errors import DataError
from mmbench.scoring.readers import (_keyed, _own, _prepare, _rows, _string_list, _with_warnings, read_predictions,
                                     read_records)
from mmbench.types import MetricValues

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _meta(obj: dict) -> dict:
    return obj.get("meta") if isinstance(obj.get("meta"), dict) else {}


def _optional_str(obj: dict, key: str, where: str, sid: str, own: bool) -> str | None:
    value = _meta(obj).get(key) if own else obj.get(key, _meta(obj).get(key))
    if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
        raise DataError(f"{key} must be a string, got {type(value).__name__}", source=where, sample_id=sid, field=key)
    return None if value is None else str(value)


def _answers(obj: dict, where: str, sid: str, own: bool) -> list[str]:
    if own:
        return _string_list(obj, "references", "reference", where, sid)
    if "answers" in obj:
        return _string_list(obj, "answers", "answer", where, sid)
    if not isinstance(obj.get("answer"), str):
        raise DataError("missing the answer (expected \"answer\": a string, or \"answers\": a list)", source=where,
                        sample_id=sid, field="answer")
    return [obj["answer"]]


def _anls_ref(obj: dict, where: str, sid: str, own: bool) -> dict[str, Any]:
    key = "references" if own else "answers"
    return {"answers": _string_list(obj, key, "answer", where, sid)}


def _relaxed_ref(obj: dict, where: str, sid: str, own: bool) -> dict[str, Any]:
    return {"answers": _answers(obj, where, sid, own), "split": _optional_str(obj, "split", where, sid, own)}


def _pope_ref(obj: dict, where: str, sid: str, own: bool) -> dict[str, Any]:
    answers = _answers(obj, where, sid, own)
    if answers[0].strip().lower() not in ("yes", "no"):
        raise DataError(f"the label must be \"yes\" or \"no\", got {answers[0]!r}", source=where, sample_id=sid,
                        field="references" if own else "answer")
    return {"answers": answers[:1], "split": _optional_str(obj, "split", where, sid, own)}


def _choice_ref(obj: dict, where: str, sid: str, own: bool) -> dict[str, Any]:
    if own:
        options = _meta(obj).get("choices")
        if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
            raise DataError("meta.choices must be a non-empty list of option texts", source=where, sample_id=sid,
                            field="meta.choices")
    else:
        given = obj.get("options")
        if not isinstance(given, dict) or not given:
            raise DataError("options must be an object {\"A\": text, \"B\": text, ...}", source=where, sample_id=sid,
                            field="options")
        if list(given) != list(LETTERS[:len(given)]):
            raise DataError(f"option letters must be A, B, C, ... in order, got {list(given)}", source=where,
                            sample_id=sid, field="options")
        options = list(given.values())
        if not all(isinstance(o, str) for o in options):
            raise DataError("option texts must be strings", source=where, sample_id=sid, field="options")
    answers = _answers(obj, where, sid, own)
    key = answers[0].strip()
    if not (len(key) == 1 and key.upper() in LETTERS[:len(options)]) and key not in options:
        raise DataError(f"answer {key!r} is not an option letter (A..{LETTERS[len(options) - 1]})", source=where,
                        sample_id=sid, field="references" if own else "answer")
    return {"answers": answers[:1], "choices": options, "group": _optional_str(obj, "group", where, sid, own),
            "category": _optional_str(obj, "category", where, sid, own)}


def _read(predictions: str | Path, references: str | Path | None,
          parse: Callable[[dict, str, str, bool], dict[str, Any]]) -> tuple[list[str], list[dict], list[str]]:
    """(answers, references, warnings) in reference order; ``references`` None: the predictions' own."""
    rows = _rows(predictions, "predictions")
    preds = read_predictions(predictions, "vqa", rows=rows)
    own = references is None
    if own:
        refs = _keyed(rows, "vqa", _own(lambda o, w, s: parse(o, w, s, True)), predictions, "references")
    else:
        records = read_records(references)
        if isinstance(records, dict):
            raise DataError(f"a JSON object with keys {sorted(records)[:6]}; expected references as JSON lines",
                            source=str(references))
        refs = _keyed(records, "vqa", lambda o, w, s: parse(o, w, s, False), references, "references")
    ids, notes = _prepare(preds, refs, own, predictions, references, False, "answers")
    return [preds[i][0] or "" for i in ids], [refs[i] for i in ids], notes


def score_anls_files(predictions: str | Path, references: str | Path | None = None) -> MetricValues:
    """ANLS (τ 0.5, the DocVQA/InfographicVQA evaluation) of a predictions file: ``{"anls"}``."""
    from mmbench.metrics.anls import score_anls

    answers, refs, notes = _read(predictions, references, _anls_ref)
    return _with_warnings(score_anls(answers, [r["answers"] for r in refs]), *notes)


def score_relaxed_files(predictions: str | Path, references: str | Path | None = None) -> MetricValues:
    """ChartQA relaxed accuracy of a predictions file: ``relaxed_accuracy`` and per split."""
    from mmbench.metrics.relaxed import score_relaxed_accuracy

    answers, refs, notes = _read(predictions, references, _relaxed_ref)
    splits = [r["split"] for r in refs]
    values = score_relaxed_accuracy(answers, [r["answers"] for r in refs],
                                    splits=splits if any(s is not None for s in splits) else None)
    return _with_warnings(values, *notes)


def score_pope_files(predictions: str | Path, references: str | Path | None = None) -> MetricValues:
    """POPE scores of a predictions file: accuracy, precision, recall, f1, yes_ratio, per split, f1_mean."""
    from mmbench.metrics.pope import score_pope

    answers, refs, notes = _read(predictions, references, _pope_ref)
    splits = [r["split"] for r in refs]
    values = score_pope(answers, [r["answers"] for r in refs],
                        splits=splits if any(s is not None for s in splits) else None)
    return _with_warnings(values, *notes)


POPE_KEYS = ("accuracy", "precision", "recall", "f1", "yes_ratio")


def pope_json(values: MetricValues) -> dict[str, Any]:
    """``mmbench score pope --json``: ``{accuracy, precision, recall, f1, yes_ratio, f1_mean?, by_split:
    {split: {...}}}``; a value that is unavailable (no yes answer: precision) is None."""
    corpus = values.corpus
    out: dict[str, Any] = {k: corpus.get(k) for k in POPE_KEYS}
    splits = list(dict.fromkeys(key.split("/", 1)[1] for key in [*corpus, *values.unavailable] if "/" in key))
    if splits:
        out["f1_mean"] = corpus.get("f1_mean")
    out["by_split"] = {s: {k: corpus.get(f"{k}/{s}") for k in POPE_KEYS} for s in splits}
    return out


def score_multiple_choice_files(predictions: str | Path, references: str | Path | None = None, *,
                                circular: bool = False) -> MetricValues:
    """Multiple-choice accuracy (MMBench matching) of a predictions file: ``accuracy``, ``unparsed``,
    per category, and with ``circular`` (the references' groups) ``circular_accuracy`` and
    ``answer_changed``.  Without ``circular`` groups are ignored."""
    from mmbench.metrics.choice import score_multiple_choice

    answers, refs, notes = _read(predictions, references, _choice_ref)
    groups = [r["group"] for r in refs]
    if circular and not any(g is not None for g in groups):
        raise DataError("--circular needs a group on the references (the original question of each rotation)",
                        source=str(references or predictions), field="group")
    categories = [r["category"] for r in refs]
    values = score_multiple_choice(answers, [r["answers"] for r in refs], choices=[r["choices"] for r in refs],
                                   groups=groups if circular else None,
                                   categories=categories if any(c is not None for c in categories) else None)
    return _with_warnings(values, *notes)
