"""Multiple choice: image(s) + question + lettered options in, one option out.

Columns (``columns:`` maps them):

* ``id``; ``image`` (one image) or ``images`` (a column holding a list of images, or a
  comma-separated list of columns such as ``"image_1,image_2,image_3"``: empty cells are
  skipped, the rest kept in that order);
* ``question``; optional ``hint`` (context shown before the question: MMBench's hint,
  ScienceQA's lecture context);
* ``choices``: a column holding the option texts as a list (or as the text of a Python
  list, as MMMU ships them), or a comma-separated list of columns (``"A,B,C,D"``,
  ``"choice_a,choice_b,choice_c,choice_d"``; empty cells end the list);
* ``answer``: the correct option, as ``metric_options: {answer_format: letter}`` (the
  default: ``"B"``), ``index`` (``1`` or ``"1"``, 0-based) or ``text`` (the option text);
* optional ``category`` and ``group`` (rows of one group are scored together under circular
  accuracy; ``circular: true`` sets it to the question's id).

Family options (``metric_options:``):

* ``circular: true`` - MMBench's CircularEval: a question with *n* options is asked *n*
  times, its options rotated by *k* = 0..n-1 (rotation *k* shows option ``(i + k) mod n``
  at position *i*).  Sample ids are ``<id>@<k>``, ``meta.group`` is ``<id>`` for all of
  them, and the reference letter moves with the correct option.  A question counts as
  right under circular scoring only if every rotation is.  ``--limit`` counts questions.
* ``drop_rows_from: 1000000`` - drop rows whose integer id is at least this: MMBench's
  released TSVs already hold their own rotated copies at ``index + k * 1e6``; we rotate
  the originals ourselves so every benchmark is expanded one way.
* ``options_in_question: true`` - the options are written inside the question
  (MMStar: ``"...\\nOptions: A: x, B: y, C: z, D: w"``): they are parsed out of it.

Each sample: ``text`` the question, ``references`` ``(correct letter,)``, ``meta``
``choices`` (option texts in the order shown), ``category``, ``hint``, and with circular
evaluation ``group`` and ``rotation``.  The
prompt template fills ``{question}``, ``{options}`` ("A. first\\nB. second") and ``{hint}``
(``"Hint: <hint>\\n"``, or nothing when the row has none).  VQA heads get the bare question
(``GenerateRequest.question``); the metric then matches their answer against the option texts.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any, Mapping, Sequence

from mmbench.errors import DataError
from mmbench.tasks.vqa import VQATask
from mmbench.types import GenerateRequest, ImageRef, Sample

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_PROMPT = "{hint}{question}\n{options}\nAnswer with the option's letter from the given choices directly."
_OPTIONS_IN_QUESTION = re.compile(r"\n?\s*Options:\s*(A:.*)$", re.S)
_OPTION_SPLIT = re.compile(r"(?:^|,\s*)([A-Z]):\s*")


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def parse_options_in_question(question: str) -> tuple[str, list[str]]:
    """Split MMStar-style ``"Q?\\nOptions: A: x, B: y"`` into the question and the option texts.

    >>> parse_options_in_question("Which one?\\nOptions: A: a cat, B: a dog")
    ('Which one?', ['a cat', 'a dog'])
    """
    match = _OPTIONS_IN_QUESTION.search(question)
    if not match:
        raise ValueError("no 'Options: A: ...' part in the question")
    parts = _OPTION_SPLIT.split(match.group(1))  # ['', 'A', 'x', 'B', 'y', ...]
    letters, texts = parts[1::2], [t.strip() for t in parts[2::2]]
    if letters != list(LETTERS[:len(letters)]) or len(texts) < 2:
        raise ValueError(f"options are not lettered A, B, ...: {match.group(1)[:80]!r}")
    return question[:match.start()].rstrip(), texts


def rotate(choices: Sequence[str], correct: int, k: int) -> tuple[list[str], int]:
    """Rotation ``k`` of a question: position ``i`` shows option ``(i + k) mod n``; the correct
    option moves to ``(correct - k) mod n``.

    >>> rotate(["a", "b", "c"], 0, 1)
    (['b', 'c', 'a'], 2)
    """
    n = len(choices)
    return [choices[(i + k) % n] for i in range(n)], (correct - k) % n


class MultipleChoiceTask(VQATask):
    family = "multiple-choice"
    family_options = ("circular", "drop_rows_from", "options_in_question", "answer_format")
    fields = ("id", "image", "images", "question", "hint", "choices", "answer", "category", "group")
    prompt_fields = ("question", "options", "hint")

    def _opt(self, key: str, default: Any = None) -> Any:
        return self.config.metric_options.get(key, default)

    def load_samples(self, limit: int | None = None) -> list[Sample]:
        samples = super().load_samples(None if self._opt("drop_rows_from") else limit)
        if self._opt("drop_rows_from"):  # limit counts the kept questions
            questions = list(dict.fromkeys(s.meta.get("group", s.id) for s in samples))[:limit]
            keep = set(questions)
            samples = [s for s in samples if s.meta.get("group", s.id) in keep]  # limit=None keeps all
        return samples

    # -- rows -> samples ----------------------------------------------------
    def _images(self, row: Mapping[str, Any], sid: str) -> tuple[ImageRef, ...]:
        if "images" not in self.config.dataset.columns:
            return (self.image(row, sid),)
        spec = self.column("images")
        values = [row.get(c.strip()) for c in spec.split(",")] if "," in spec else row.get(spec)
        if not isinstance(values, (list, tuple)):
            values = [values]
        base = row.get("__base_dir__")
        refs = []
        for value in values:
            if _empty(value) or (isinstance(value, dict) and not value.get("bytes") and not value.get("path")):
                continue
            try:
                refs.append(self.image_ref(value, base))
            except ValueError as exc:
                raise DataError(str(exc), sample_id=sid, field=spec) from None
        if not refs:
            raise DataError("the row has no image", sample_id=sid, field=spec)
        return tuple(refs)

    def _choices(self, row: Mapping[str, Any], question: str, sid: str) -> tuple[str, list[str]]:
        if self._opt("options_in_question"):
            try:
                return parse_options_in_question(question)
            except ValueError as exc:
                raise DataError(str(exc), sample_id=sid, field=self.column("question")) from None
        spec = self.column("choices")
        if "," in spec:
            choices = []
            for col in spec.split(","):
                value = row.get(col.strip())
                if _empty(value):
                    break
                choices.append(str(value).strip())
        else:
            value = row.get(spec)
            if isinstance(value, str) and value.lstrip().startswith("["):
                try:
                    value = ast.literal_eval(value)
                except (ValueError, SyntaxError):
                    raise DataError(f"choices {value[:60]!r} are not a list", sample_id=sid, field=spec) from None
            if not isinstance(value, (list, tuple)):
                raise DataError(f"expected a list of options, got {type(value).__name__}", sample_id=sid,
                                field=spec)
            choices = [str(v).strip() for v in value]
        if len(choices) < 2 or any(not c for c in choices):
            raise DataError(f"expected at least 2 non-empty options, got {choices!r}", sample_id=sid, field=spec)
        if len(choices) > len(LETTERS):
            raise DataError(f"{len(choices)} options; at most {len(LETTERS)}", sample_id=sid, field=spec)
        return question, choices

    def _correct(self, row: Mapping[str, Any], choices: list[str], sid: str) -> int:
        fmt = self._opt("answer_format", "letter")
        value, field = self.value(row, "answer"), self.column("answer")
        if _empty(value):
            raise DataError("the row has no answer", sample_id=sid, field=field)
        text = str(value).strip()
        if fmt == "letter":
            index = LETTERS.find(text.upper()) if len(text) == 1 else -1
        elif fmt == "index":
            index = int(text) if text.lstrip("-").isdigit() else -1
        elif fmt == "text":
            index = choices.index(text) if text in choices else -1
        else:
            raise DataError(f"answer_format must be letter, index or text, not {fmt!r}",
                            source=self.config.where("metric_options"), field="metric_options.answer_format")
        if not 0 <= index < len(choices):
            raise DataError(f"answer {text!r} ({fmt}) is not one of the {len(choices)} options", sample_id=sid,
                            field=field)
        return index

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        return self.row_to_samples(index, row)[0]

    def row_to_samples(self, index: int, row: Mapping[str, Any]) -> list[Sample]:
        """One sample per question, or one per rotation of its options with ``circular: true``."""
        sid = self.sample_id(index, row)
        threshold = self._opt("drop_rows_from")
        if threshold is not None:
            try:
                if int(float(sid)) >= int(threshold):
                    return []
            except ValueError:
                pass
        try:
            images = self._images(row, sid)
            question = self.value(row, "question")
            if not isinstance(question, str) or not question.strip():
                raise DataError("missing or empty question", sample_id=sid, field=self.column("question"))
            question, choices = self._choices(row, question.strip(), sid)
            correct = self._correct(row, choices, sid)
        except DataError as exc:
            return [Sample(id=sid, error=str(exc))]
        group = self.value(row, "group") if "group" in self.config.dataset.columns else None
        meta: dict[str, Any] = {}
        if not _empty(group) or self._opt("circular"):  # a group means "score the rotations together"
            meta["group"] = sid if _empty(group) else str(group)
        for key in ("category", "hint"):
            value = self.value(row, key) if key in self.config.dataset.columns else None
            if not _empty(value):
                meta[key] = str(value).strip()
        if not self._opt("circular"):
            return [Sample(id=sid, images=images, text=question, references=(LETTERS[correct],),
                           meta={**meta, "choices": list(choices)})]
        out = []
        for k in range(len(choices)):
            rotated, at = rotate(choices, correct, k)
            out.append(Sample(id=f"{sid}@{k}", images=images, text=question, references=(LETTERS[at],),
                              meta={**meta, "choices": rotated, "rotation": k}))
        return out

    # -- prompting ----------------------------------------------------------
    def prompt_for(self, model_name: str | None) -> str | None:
        overrides = self.config.prompt_overrides
        if model_name and model_name in overrides:
            return overrides[model_name]
        return self.config.prompt or DEFAULT_PROMPT

    def build_request(self, sample: Sample, model_name: str | None) -> GenerateRequest:
        """``{options}`` is "A. first\\nB. second"; ``{hint}`` is "Hint: ...\\n" or empty.  The bare
        question (for VQA heads) is the question text alone."""
        template = self.prompt_for(model_name)
        options = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(sample.meta.get("choices") or ()))
        hint = sample.meta.get("hint")
        return GenerateRequest(id=sample.id, images=sample.images,
                               prompt=template.format(question=sample.text, options=options,
                                                      hint=f"Hint: {hint}\n" if hint else ""),
                               question=sample.text, generation=self.config.generation)
