"""Re-score prediction files without a model (``mmbench score``).

**Which field is a sample's id** depends on the family (ids are compared as strings):

* captioning: ``image_id``, else ``id`` (a caption sample is an image);
* VQA: ``question_id``, else ``id`` (a VQA sample is a question; its ``image_id`` is not an id).

A line carrying both fields with different values is ambiguous and an error, never a guess.

**Layouts**, told apart by content, not by file name:

* predictions: JSON lines ``{"<id>", "prediction"}`` (``caption``/``answer`` are accepted too;
  mmbench's own ``predictions/<task>.jsonl`` work as they are), or a JSON array as the official
  result files are: COCO ``[{"image_id", "caption"}]``, VQA ``[{"question_id", "answer"}]``.
* references: JSON lines (captioning ``{"image_id", "references": [...]}``, VQA
  ``{"question_id", "answers": [...], "answer_type"?, "question_type"?}``, answers as strings or
  ``{"answer": ...}`` objects); an official annotation file: COCO captions ``{"images",
  "annotations": [{"image_id", "id", "caption"}]}`` or VQA ``{"annotations": [{"question_id",
  "answers", "answer_type", "question_type", ...}]}`` with an optional VQA questions file
  ``{"questions": [...]}`` checked against it; or none, when the predictions carry their own
  ``references`` (lines with a row error and no references are left out, as the run did).

Which samples are scored: every reference must have a prediction and every prediction a
reference, except against a COCO captions file, where (as COCOEvalCap does) the images of the
predictions are scored, with a warning saying how many of the file's images that is.
A recorded failure (null prediction with an ``error``) is scored as empty, as in the run.

Every problem - an unreadable, non-UTF-8 or wrongly shaped file, a duplicate, unknown,
missing or ambiguous id, a missing or non-string field - is a :class:`DataError` naming the
file, the line (``file:3``) or array element (``file[2]``, ``file annotations[2]``), the
sample id and the field; nothing is skipped silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from mmbench.errors import DataError
from mmbench.io import MAX_LINE_CHARS, read_jsonl
from mmbench.types import MetricValues

ID_KEYS = {"captioning": ("image_id", "id"), "vqa": ("question_id", "id")}
_PREDICTION_KEYS = {"captioning": ("prediction", "caption"), "vqa": ("prediction", "answer")}
VQA_METRICS = {"vqa-accuracy": "accuracy", "exact-match": "exact_match"}  # metric -> its per-sample score key

Rows = list[tuple[str, dict]]  # (where, object) per line or array element
MAX_JSON_BYTES = 2**30  # a JSON array or object file is read whole; official annotations are ~0.3 GB


def _id_value(obj: dict, key: str, where: str) -> str:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"id must be a string or integer, got {value!r}", source=where, field=key)
    return str(value)


def _line_id(obj: dict, where: str, family: str = "captioning") -> str:
    """The sample id of one line under the family's rule (module docstring)."""
    primary, fallback = ID_KEYS[family]
    present = [k for k in (primary, fallback) if obj.get(k) is not None]
    if not present:
        hint = {"captioning": " (a question_id does not name an image)",
                "vqa": " (an image_id does not name a question)"}[family] if any(
            obj.get(k) is not None for k in ("image_id", "question_id")) else ""
        raise DataError(f"no id (expected {primary} or {fallback}){hint}", source=where, field=primary)
    ids = [_id_value(obj, k, where) for k in present]
    if len(ids) == 2 and ids[0] != ids[1]:
        raise DataError(f"ambiguous id: {primary} {obj[primary]!r} and {fallback} {obj[fallback]!r} differ (a "
                        f"{family} sample is identified by its {primary}; drop {fallback} or make them equal)",
                        source=where, sample_id=ids[0], field=fallback)
    return ids[0]


def _open(path: Path) -> Any:
    if not path.is_file():  # a FIFO or device is refused before it can block
        raise DataError("file not found" if not path.exists() else "not a regular file", source=str(path))
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    return path.open("rb")


def _read_bytes(path: Path, read: Callable[[Any], bytes]) -> bytes:
    try:
        with _open(path) as fh:
            return read(fh)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read the file: {exc}", source=str(path)) from None


def _first_line(path: Path) -> str | None:
    """The first non-blank line (undecodable bytes replaced), or None if it is longer than a JSONL line may be."""
    limit = 4 * MAX_LINE_CHARS  # bytes: a line of MAX_LINE_CHARS characters fits whatever its encoding

    def read(fh: Any) -> bytes:
        while True:
            line = fh.readline(limit + 1)
            if not line or line.strip() or len(line) > limit:
                return line
    line = _read_bytes(path, read)
    return None if len(line) > limit else line.decode("utf-8", errors="replace").removeprefix("\ufeff")


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError, line: int) -> DataError:
    return DataError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8", source=f"{path}:{line}")


def _raise_if_not_utf8(path: Path, chunks: Callable[[Any], Any]) -> None:
    """Raise naming the first line that is not UTF-8 (``chunks``: an open file -> its lines, bounded)."""
    with _open(path) as fh:
        for lineno, line in enumerate(chunks(fh), 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, line, exc, lineno) from None


def _read_text(path: Path) -> str:
    """A whole JSON document (at most MAX_JSON_BYTES); non-UTF-8 bytes are an error naming the line."""
    data = _read_bytes(path, lambda fh: fh.read(MAX_JSON_BYTES + 1))
    if len(data) > MAX_JSON_BYTES:
        raise DataError(f"a JSON document larger than {MAX_JSON_BYTES:,} bytes; not read", source=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc, data.count(b"\n", 0, exc.start) + 1) from None
    return text.removeprefix("\ufeff")


def _objects(items: Any, what: str) -> Rows:
    rows = []
    for i, obj in enumerate(items):
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {type(obj).__name__}", source=f"{what}[{i}]")
        rows.append((f"{what}[{i}]", obj))
    return rows


def _is_document(obj: dict) -> bool:
    return any(k in obj for k in ("annotations", "questions", "images"))


def read_records(path: str | Path) -> Rows | dict:
    """The records of a JSON-lines file or JSON array as ``[(where, object)]``, or the object of
    a file holding one JSON object (an official annotation file).  A ``.gz`` file is gunzipped.

    JSON lines are read line by line (:func:`mmbench.io.read_jsonl`, each line bounded); a JSON
    array or object, which official files put on one line, is read whole, up to MAX_JSON_BYTES.
    """
    path = Path(path)
    first = _first_line(path)
    if first is not None and not first.strip():
        return []
    if first is not None and not first.lstrip().startswith("["):
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            obj = None
        if (isinstance(obj, dict) and not _is_document(obj)) or not first.lstrip().startswith("{"):
            try:
                return [(f"{path}:{lineno}", obj) for lineno, obj in read_jsonl(path)]
            except DataError as exc:  # read_jsonl decodes in chunks: "at or after" a line; name the line
                if "not UTF-8" in str(exc):
                    _raise_if_not_utf8(path, lambda fh: iter(lambda: fh.readline(4 * MAX_LINE_CHARS), b""))
                raise
    text = _read_text(path)  # a JSON array, a one-line annotation file, or a pretty-printed object
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg}, column {exc.colno})", source=f"{path}:{exc.lineno}") from None
    if isinstance(whole, list):
        return _objects(whole, str(path))
    if isinstance(whole, dict):
        return whole
    raise DataError(f"expected JSON objects, got {type(whole).__name__}", source=str(path))


def _rows(path: str | Path, what: str) -> Rows:
    records = read_records(path)
    if isinstance(records, dict):
        raise DataError(f"a JSON object with keys {sorted(records)[:6]}; expected {what} as JSON lines or a JSON "
                        "array of objects", source=str(path))
    return records


def _keyed(rows: Rows, family: str, parse: Callable[[dict, str, str], Any], path: Any, what: str) -> dict[str, Any]:
    """id -> ``parse(obj, where, sid)`` (a None result leaves the row out); duplicates and emptiness are errors."""
    out: dict[str, Any] = {}
    first: dict[str, str] = {}
    for where, obj in rows:
        sid = _line_id(obj, where, family)
        if sid in first:
            raise DataError(f"duplicate id (first at {first[sid]})", source=where, sample_id=sid)
        first[sid] = where
        value = parse(obj, where, sid)
        if value is not None:
            out[sid] = value
    if not first:
        raise DataError(f"no {what} (the file is empty)", source=str(path))
    return out


def read_predictions(path: str | Path, family: str = "captioning", *,
                     rows: Rows | None = None) -> dict[str, tuple[str | None, str]]:
    """id -> (prediction, or None for a recorded failure; where).  ``rows``: the file already read."""
    def parse(obj: dict, where: str, sid: str) -> tuple[str | None, str]:
        keys = [k for k in _PREDICTION_KEYS[family] if k in obj]
        if not keys:
            raise DataError("missing the prediction", source=where, sample_id=sid, field="prediction")
        if len(keys) == 2 and obj[keys[0]] != obj[keys[1]]:
            raise DataError(f"ambiguous: {keys[0]} and {keys[1]} differ", source=where, sample_id=sid,
                            field=keys[1])
        value = obj[keys[0]]
        if value is None and not obj.get("error"):
            raise DataError("prediction is null", source=where, sample_id=sid, field=keys[0])
        if value is not None and not isinstance(value, str):
            raise DataError(f"prediction must be a string, got {type(value).__name__}", source=where,
                            sample_id=sid, field=keys[0])
        return value, where

    return _keyed(_rows(path, "predictions") if rows is None else rows, family, parse, path, "predictions")


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


def _own(parse: Callable[[dict, str, str], Any]) -> Callable[[dict, str, str], Any]:
    """A predictions line as its own reference: a row error without references is left out (None)."""
    def own(obj: dict, where: str, sid: str) -> Any:
        if obj.get("error") and not obj.get("references"):
            return None
        return parse(obj, where, sid)
    return own


def _section(data: dict, key: str, path: Any) -> Rows:
    items = data.get(key)
    if not isinstance(items, list):
        raise DataError(f"{key!r} must be a list (keys found: {sorted(data)[:6]})", source=str(path), field=key)
    return _objects(items, f"{path} {key}")


def _coco_captions(data: dict, path: Any) -> dict[str, list[str]]:
    """image id -> captions (annotation order) of a COCO captions file; its ``id`` is the annotation's."""
    images = None
    if "images" in data:
        images = {_id_value(obj, "id", where) for where, obj in _section(data, "images", path) if "id" in obj}
    refs: dict[str, list[str]] = {}
    for where, obj in _section(data, "annotations", path):
        if obj.get("image_id") is None:
            raise DataError("no image_id", source=where, field="image_id")
        sid = _id_value(obj, "image_id", where)
        if not isinstance(obj.get("caption"), str):
            raise DataError(f"caption must be a string, got {type(obj.get('caption')).__name__}", source=where,
                            sample_id=sid, field="caption")
        if images is not None and sid not in images:
            raise DataError("image_id is not in the file's images", source=where, sample_id=sid, field="image_id")
        refs.setdefault(sid, []).append(obj["caption"])
    if not refs:
        raise DataError("no references (annotations is empty)", source=str(path))
    return refs


def _caption_references(path: str | Path, own: Rows | None = None) -> tuple[dict[str, list[str]], bool]:
    """(image id -> captions, whether the file is a COCO captions file); ``own``: a predictions file's rows."""
    records = read_records(path) if own is None else own
    if isinstance(records, dict):
        if "annotations" not in records or "questions" in records:
            raise DataError(f"a JSON object with keys {sorted(records)[:6]}; expected references as JSON lines or "
                            "a COCO captions file {images, annotations: [{image_id, caption}]}", source=str(path))
        return _coco_captions(records, path), True

    def parse(obj: dict, where: str, sid: str) -> list[str]:
        return _string_list(obj, "references", "reference", where, sid)

    return _keyed(records, "captioning", parse if own is None else _own(parse), path, "references"), False


def read_caption_references(path: str | Path) -> dict[str, list[str]]:
    """image id -> reference captions, from JSON lines or a COCO captions file."""
    return _caption_references(path)[0]


def align(predictions: dict[str, tuple[str | None, str]], references: dict[str, Any], pred_path: Any,
          ref_path: Any, *, subset: bool = False) -> list[str]:
    """The ids to score, in reference order; unknown ids are errors, and so are references without
    a prediction unless ``subset`` (then only the predictions' ids are scored)."""
    unknown = [k for k in predictions if k not in references]
    if unknown:
        raise DataError(f"{len(unknown)} prediction id(s) not in the references {ref_path} "
                        f"(first: {unknown[0]!r} at {predictions[unknown[0]][1]})", source=str(pred_path),
                        sample_id=unknown[0])
    missing = [k for k in references if k not in predictions]
    if missing and not subset:
        raise DataError(f"{len(missing)} reference id(s) have no prediction (first: {missing[0]!r}); scoring a "
                        "subset would change corpus metrics such as CIDEr-D", source=str(pred_path),
                        sample_id=missing[0])
    return [k for k in references if k in predictions]


def _with_warnings(values: MetricValues, *warnings: str) -> MetricValues:
    return MetricValues(values.corpus, values.per_sample, values.unavailable, values.backend,
                        values.warnings + tuple(w for w in warnings if w))


def _prepare(preds: dict[str, tuple[str | None, str]], refs: dict[str, Any], own: bool, pred_path: Any,
             ref_path: Any, subset: bool, noun: str) -> tuple[list[str], list[str]]:
    """(ids to score, warnings): own references leave out the row-error lines the run left out."""
    notes = []
    if own and len(refs) < len(preds):
        notes.append(f"{len(preds) - len(refs)} line(s) with a row error and no references left out, as in the run")
        preds = {k: v for k, v in preds.items() if k in refs}
    ids = align(preds, refs, pred_path, ref_path, subset=subset)
    failed = sum(1 for i in ids if preds[i][0] is None)
    if failed:
        notes.append(f"{failed} recorded failure(s) scored as empty {noun}, as in the run")
    return ids, notes


def score_captioning(predictions: str | Path, references: str | Path | None = None, *, tokenizer: str = "ptb",
                     meteor: bool | None = None, spice: bool | None = None) -> MetricValues:
    """Score caption predictions (JSON lines or a COCO results array) against references (JSON
    lines or a COCO captions file); see the module docstring.  Without ``references``, each
    prediction line must carry its own ``references`` list, as mmbench's ``predictions/<task>.jsonl``
    files do, and the result is the run's numbers.
    """
    rows = _rows(predictions, "predictions")
    preds = read_predictions(predictions, "captioning", rows=rows)
    own = references is None
    refs, coco = _caption_references(predictions, rows) if own else _caption_references(references)
    ids, notes = _prepare(preds, refs, own, predictions, references, coco, "captions")
    if coco and len(ids) < len(refs):
        notes.append(f"scored the {len(ids)} image(s) of the predictions, of {len(refs)} in {references} "
                     "(as COCOEvalCap does)")
    from mmbench.metrics.caption import score_captions

    values = score_captions([preds[i][0] or "" for i in ids], [refs[i] for i in ids], tokenizer=tokenizer,
                            meteor=meteor, spice=spice)
    return _with_warnings(values, *notes)


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
