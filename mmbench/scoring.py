"""Re-score prediction files without a model (``mmbench score``).

Prediction lines: ``{"image_id": ..., "prediction": "..."}`` (``id`` is accepted
instead of ``image_id``; mmbench's own ``predictions/<task>.jsonl`` files work
as they are).  Reference lines: ``{"image_id": ..., "references": ["...", ...]}``.
Ids are compared as strings.  Every problem - a duplicate, unknown or missing id,
a missing or non-string field, an empty file - is an error naming the file, line
and id; nothing is skipped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbench.errors import DataError
from mmbench.io import read_jsonl
from mmbench.types import MetricValues

_ID_KEYS = ("image_id", "id", "question_id")


def _line_id(obj: dict, where: str) -> str:
    for key in _ID_KEYS:
        if key in obj and obj[key] is not None:
            value = obj[key]
            if isinstance(value, (dict, list, float)):
                raise DataError(f"id must be a string or integer, got {value!r}", source=where, field=key)
            return str(value)
    raise DataError(f"no id (expected one of {', '.join(_ID_KEYS)})", source=where, field="image_id")


def read_predictions(path: str | Path) -> dict[str, tuple[str | None, str]]:
    """id -> (prediction or None for a recorded failure, 'file:line')."""
    out: dict[str, tuple[str | None, str]] = {}
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        sid = _line_id(obj, where)
        if sid in out:
            raise DataError(f"duplicate id (first at {out[sid][1]})", source=where, sample_id=sid)
        key = next((k for k in ("prediction", "caption", "answer") if k in obj), None)
        if key is None:
            raise DataError("missing the prediction", source=where, sample_id=sid, field="prediction")
        value = obj[key]
        if value is None and not obj.get("error"):
            raise DataError("prediction is null", source=where, sample_id=sid, field=key)
        if value is not None and not isinstance(value, str):
            raise DataError(f"prediction must be a string, got {type(value).__name__}", source=where,
                            sample_id=sid, field=key)
        out[sid] = (value, where)
    if not out:
        raise DataError("no predictions (the file is empty)", source=str(path))
    return out


def _read_keyed(path: str | Path, parse: Any) -> dict[str, Any]:
    """id -> ``parse(obj, where, sid)`` for every line; duplicate ids and empty files are errors."""
    out: dict[str, Any] = {}
    lines: dict[str, str] = {}
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        sid = _line_id(obj, where)
        if sid in out:
            raise DataError(f"duplicate id (first at {lines[sid]})", source=where, sample_id=sid)
        out[sid], lines[sid] = parse(obj, where, sid), where
    if not out:
        raise DataError("no references (the file is empty)", source=str(path))
    return out


def _string_list(obj: dict, key: str, what: str, where: str, sid: str) -> list[str]:
    values = obj.get(key)
    if isinstance(values, list) and key == "answers":
        values = [v.get("answer") if isinstance(v, dict) else v for v in values]
    if not isinstance(values, list) or not values:
        raise DataError(f"{key} must be a non-empty list of strings", source=where, sample_id=sid, field=key)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise DataError(f"{what} {i} is {type(v).__name__}, not a string", source=where, sample_id=sid,
                            field=key)
    return values


def read_caption_references(path: str | Path) -> dict[str, list[str]]:
    return _read_keyed(path, lambda obj, where, sid: _string_list(obj, "references", "reference", where, sid))


def align(predictions: dict[str, tuple[str | None, str]], references: dict[str, Any], pred_path: Any,
          ref_path: Any) -> list[str]:
    """The ids to score, in reference order; unknown or missing ids are errors."""
    unknown = [k for k in predictions if k not in references]
    if unknown:
        raise DataError(f"{len(unknown)} prediction id(s) not in the references {ref_path} "
                        f"(first: {unknown[0]!r} at {predictions[unknown[0]][1]})", source=str(pred_path),
                        sample_id=unknown[0])
    missing = [k for k in references if k not in predictions]
    if missing:
        raise DataError(f"{len(missing)} reference id(s) have no prediction (first: {missing[0]!r}); scoring a "
                        "subset would change corpus metrics such as CIDEr-D", source=str(pred_path),
                        sample_id=missing[0])
    return list(references)


def score_captioning(predictions: str | Path, references: str | Path | None = None, *, tokenizer: str = "ptb",
                     meteor: bool | None = None, spice: bool | None = None) -> MetricValues:
    """Score a caption predictions file against a references file (see module doc for formats).

    Without ``references``, each prediction line must carry its own ``references`` list, as
    mmbench's ``predictions/<task>.jsonl`` files do.
    """
    preds = read_predictions(predictions)
    refs = read_caption_references(references if references is not None else predictions)
    ids = align(preds, refs, predictions, references)
    from mmbench.metrics.caption import score_captions

    values = score_captions([preds[i][0] or "" for i in ids], [refs[i] for i in ids], tokenizer=tokenizer,
                            meteor=meteor, spice=spice)
    failed = sum(1 for i in ids if preds[i][0] is None)
    if failed:
        values = MetricValues(values.corpus, values.per_sample, values.unavailable, values.backend,
                              values.warnings + (f"{failed} recorded failure(s) scored as empty captions",))
    return values


def read_vqa_references(path: str | Path, answers_per_question: int | None = 10) -> dict[str, dict[str, Any]]:
    """id -> {"answers", "answer_type", "question_type"}; every line must have ``answers_per_question`` answers."""
    def parse(obj: dict, where: str, sid: str) -> dict[str, Any]:
        answers = _string_list(obj, "answers", "answer", where, sid)
        if answers_per_question and len(answers) != answers_per_question:
            raise DataError(f"expected {answers_per_question} answers, got {len(answers)} "
                            "(--answers-per-question 0 accepts any number)", source=where, sample_id=sid,
                            field="answers")
        return {"answers": answers, "answer_type": obj.get("answer_type"), "question_type": obj.get("question_type")}

    return _read_keyed(path, parse)


def score_vqa_files(predictions: str | Path, references: str | Path, *,
                    answers_per_question: int | None = 10) -> dict[str, Any]:
    """Official VQA accuracy of a predictions file: ``{"accuracy", "by_answer_type", "by_question_type"}``
    (fractions in [0, 1], unrounded), plus ``per_question``."""
    from mmbench.metrics.vqa import score_vqa, vqa_breakdown

    preds = read_predictions(predictions)
    refs = read_vqa_references(references, answers_per_question)
    ids = align(preds, refs, predictions, references)
    for i in ids:
        if preds[i][0] is None:
            raise DataError("prediction is null", source=preds[i][1], sample_id=i, field="prediction")
    answer_types = [refs[i]["answer_type"] for i in ids]
    question_types = [refs[i]["question_type"] for i in ids]
    values = score_vqa([preds[i][0] for i in ids], [refs[i]["answers"] for i in ids], answer_types=answer_types,
                       question_types=question_types)
    per_question = [s["accuracy"] for s in values.per_sample]
    out = vqa_breakdown(per_question, answer_types, question_types)
    out["per_question"] = dict(zip(ids, per_question))
    out["warnings"] = list(values.warnings)
    return out


RETRIEVAL_JSON_KEYS = ("t2i_R@1", "t2i_R@5", "t2i_R@10", "i2t_R@1", "i2t_R@5", "i2t_R@10")


def load_embeddings(path: str | Path) -> Any:
    """A 2-D ``.npy`` array (never unpickled: object arrays are refused)."""
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError("file not found", source=str(path)) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"not a readable .npy array of numbers: {exc}", source=str(path)) from None
    if not isinstance(array, np.ndarray):
        raise DataError("expected one array (.npy), got an archive (.npz)", source=str(path))
    return array


def score_retrieval_files(image_embeddings: str | Path, text_embeddings: str | Path, text_to_image: str | Path,
                          *, image_groups: str | Path | None = None,
                          ks: tuple[int, ...] = (1, 5, 10)) -> MetricValues:
    """Recall@k both ways from precomputed embeddings (see :mod:`mmbench.metrics.retrieval`).

    ``text_to_image`` is a JSON list giving the image row of each text row; ``image_groups``
    an optional JSON list with one group label per image row.  Errors name the file and row.
    """
    from mmbench.metrics.retrieval import retrieval_recall
    from mmbench.tasks.retrieval import read_json_list

    images = load_embeddings(image_embeddings)
    texts = load_embeddings(text_embeddings)
    mapping = read_json_list(text_to_image)
    for row, value in enumerate(mapping):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"entry {row} is {value!r}, not an integer image row", source=str(text_to_image))
    groups = read_json_list(image_groups) if image_groups is not None else None
    if groups is not None:
        for row, value in enumerate(groups):
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise DataError(f"entry {row} is {value!r}, not a string or integer group label",
                                source=str(image_groups))
    if len(mapping) != (len(texts) if texts.ndim else 0):
        raise DataError(f"has {len(mapping)} entries but {text_embeddings} has {len(texts) if texts.ndim else 0} "
                        "rows: give the image row of every text row", source=str(text_to_image))
    try:
        return retrieval_recall(images, texts, mapping, ks, names=(str(image_embeddings), str(text_embeddings)),
                                image_groups=groups)
    except ValueError as exc:
        raise DataError(str(exc)) from None
