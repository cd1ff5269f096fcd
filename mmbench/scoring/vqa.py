"""``mmbench score vqa``: VQA answers against references (JSON lines, an official VQA v2
annotations file with its optional questions file, or the predictions' own), scored with
:mod:`mmbench.metrics.vqa` (VQA accuracy or exact match)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbench.errors import DataError
from mmbench.scoring.readers import (Rows, _keyed, _line_id, _own, _prepare, _rows, _section, _string_list,
                                     _with_warnings, read_predictions, read_records)
from mmbench.types import MetricValues

VQA_METRICS = {"vqa-accuracy": "accuracy", "exact-match": "exact_match"}  # metric -> its per-sample score key


def _vqa_reference(obj: dict, where: str, sid: str, key: str = "answers") -> dict[str, Any]:
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    out: dict[str, Any] = {"answers": _string_list(obj, key, "answer", where, sid)}
    for field in ("answer_type", "question_type"):
        value = obj.get(field, meta.get(field))
        if value is not None and not isinstance(value, str):
            raise DataError(f"{field} must be a string, got {type(value).__name__}", source=where, sample_id=sid,
                            field=field)
        out[field] = value
    return out


def _check_questions(path: str | Path, annotations: Rows, refs: dict[str, Any]) -> None:
    """An official questions file must list the annotations' questions, with the same image ids."""
    data = read_records(path)
    if not isinstance(data, dict) or "questions" not in data:
        raise DataError("not a VQA questions file: expected a JSON object {questions: [{question_id, image_id, "
                        "question}]}", source=str(path))
    images = {_line_id(obj, where, "vqa"): obj.get("image_id") for where, obj in annotations}
    seen: dict[str, str] = {}
    for where, obj in _section(data, "questions", path):
        sid = _line_id(obj, where, "vqa")
        if sid in seen:
            raise DataError(f"duplicate id (first at {seen[sid]})", source=where, sample_id=sid)
        seen[sid] = where
        if sid not in refs:
            raise DataError("question is not in the annotations", source=where, sample_id=sid, field="question_id")
        if obj.get("image_id") is not None and str(obj["image_id"]) != str(images[sid]):
            raise DataError(f"image_id {obj['image_id']!r} but the annotations say {images[sid]!r}", source=where,
                            sample_id=sid, field="image_id")
    missing = [k for k in refs if k not in seen]
    if missing:
        raise DataError(f"{len(missing)} annotated question(s) not in the questions file (first: {missing[0]!r})",
                        source=str(path), sample_id=missing[0], field="question_id")


def read_vqa_references(path: str | Path, answers_per_question: int | None = 10, *, own: Rows | None = None,
                        questions: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """question id -> {"answers", "answer_type", "question_type"} from JSON lines, an official VQA
    annotations file (with an optional questions file checked against it) or a predictions file's
    ``references`` and ``meta`` (``own``: its rows); each question must have ``answers_per_question``
    answers (None or 0: any number)."""
    def parse(obj: dict, where: str, sid: str) -> dict[str, Any]:
        ref = _vqa_reference(obj, where, sid, "references" if own is not None or "answers" not in obj else "answers")
        if answers_per_question and len(ref["answers"]) != answers_per_question:
            raise DataError(f"expected {answers_per_question} answers, got {len(ref['answers'])} "
                            "(--answers-per-question 0 accepts any number)", source=where, sample_id=sid,
                            field="answers")
        return ref

    records = read_records(path) if own is None else own
    if isinstance(records, dict):
        if "annotations" not in records:
            raise DataError(f"a JSON object with keys {sorted(records)[:6]}; expected references as JSON lines or "
                            "a VQA annotations file {annotations: [{question_id, answers, ...}]}", source=str(path))
        annotations = _section(records, "annotations", path)
        refs = _keyed(annotations, "vqa", parse, path, "annotations")
        if questions is not None:
            _check_questions(questions, annotations, refs)
        return refs
    if questions is not None:
        raise DataError("--questions goes with an official annotations file, not JSON lines", source=str(questions))
    return _keyed(records, "vqa", parse if own is None else _own(parse), path, "references")


def _metric_of_file(rows: Rows, path: Any) -> tuple[str | None, set[str]]:
    """(the answer metric a predictions file was scored with, per its ``scores``; all score keys)."""
    keys: set[str] = set()
    for _, obj in rows:
        if isinstance(obj.get("scores"), dict):
            keys.update(obj["scores"])
    found = [m for m, key in VQA_METRICS.items() if key in keys]
    if len(found) > 1:
        raise DataError(f"its scores hold both {' and '.join(VQA_METRICS[m] for m in found)}: choose with --metric",
                        source=str(path), field="scores")
    return (found[0] if found else None), keys


def score_vqa_files(predictions: str | Path, references: str | Path | None = None, *,
                    questions: str | Path | None = None, metric: str | None = None,
                    answers_per_question: int | str | None = "auto") -> MetricValues:
    """VQA answer scores of a predictions file, as a run reports them (``results.json`` metrics).

    ``metric``: ``vqa-accuracy`` (official, 10 human answers) or ``exact-match``; by default the
    one the predictions file records in its ``scores`` (an mmbench predictions file), else
    ``vqa-accuracy``.  ``corpus``: ``accuracy``, ``accuracy/<answer type>``,
    ``accuracy/question_type/<type>`` or ``exact_match``, ``exact_match/<answer type>``; plus
    ``unanswered`` (empty answers, failures not counted).  Fractions, unrounded.  ``per_sample``
    follows the references' order.  Without ``references`` the predictions' own ``references`` and
    ``meta`` answer types are used.  ``answers_per_question`` (0 or None: any number): ``"auto"`` is
    10 for vqa-accuracy against separate references, and no check otherwise.
    """
    from mmbench.metrics.vqa import exact_match, score_vqa

    rows = _rows(predictions, "predictions")
    recorded, score_keys = _metric_of_file(rows, predictions)
    metric = metric or recorded or "vqa-accuracy"
    if metric not in VQA_METRICS:
        raise DataError(f"unknown VQA metric {metric!r} (choose {' or '.join(VQA_METRICS)})")
    own = references is None
    if own and questions is not None:
        raise DataError("--questions needs --references (the official annotations file)")
    if answers_per_question == "auto":
        answers_per_question = 10 if metric == "vqa-accuracy" and not own else 0
    preds = read_predictions(predictions, "vqa", rows=rows)
    refs = read_vqa_references(predictions if own else references, answers_per_question or None,
                               own=rows if own else None, questions=questions)
    ids, notes = _prepare(preds, refs, own, predictions, references, False, "answers")
    answers = [preds[i][0] or "" for i in ids]
    answer_types = [refs[i]["answer_type"] for i in ids]
    if metric == "vqa-accuracy":
        values = score_vqa(answers, [refs[i]["answers"] for i in ids], answer_types=answer_types,
                           question_types=[refs[i]["question_type"] for i in ids])
    else:
        values = exact_match(answers, [refs[i]["answers"] for i in ids], answer_types=answer_types)
    unanswered = sum(1 for i in ids if preds[i][0] == "")
    other = sorted(score_keys - set(VQA_METRICS.values()))
    if other:
        notes.append(f"the run also scored {', '.join(other)}; this command recomputes {metric} and unanswered only")
    values = MetricValues({**values.corpus, "unanswered": float(unanswered)}, values.per_sample, values.unavailable,
                          values.backend, values.warnings)
    return _with_warnings(values, *notes)
