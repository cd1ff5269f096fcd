"""Reading the files ``mmbench score`` takes, shared by the family modules: JSON lines, JSON
arrays and official one-object files (bounded, UTF-8 checked, ``.gz`` gunzipped), the id
rule of each family, predictions, and aligning predictions with references.  The contract
(id rules, layouts, which samples are scored, errors) is :mod:`mmbench.scoring`'s docstring;
underscore names are shared inside this package only.
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

Rows = list[tuple[str, dict]]  # (where, object) per line or array element
MAX_JSON_BYTES = 2**30  # a JSON array or object file is read whole; official annotations are ~0.3 GB


def _id_value(obj: dict, key: str, where: str) -> str:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"id must be a string or integer, got {value!r}", source=where, field=key)
    return str(value)


def _line_id(obj: dict, where: str, family: str = "captioning") -> str:
    """The sample id of one line under the family's rule (:mod:`mmbench.scoring`)."""
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
        raise DataError(f"{len(missing)} reference id(s) have no prediction (first: {missing[0]!r}); a score "
                        "over a subset is not comparable with one over the whole set", source=str(pred_path),
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
