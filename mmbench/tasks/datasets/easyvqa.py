"""Caption data derived from the easy-VQA question/answer pairs.

easy-VQA (the ``easy-vqa`` PyPI package, MIT) ships 64x64 images, each showing
exactly one shape (circle, rectangle or triangle) in exactly one colour (one of 8),
and ~10 template questions per image.  It has no captions, so we derive one
(colour, shape) pair per image from its questions and render it through fixed
caption templates.  The rules are documented in ``docs/easyvqa.md``; in short:

* ``what``-questions state the answer directly, and the ones that name a colour
  or shape presuppose it ("what is the red shape?" -> "triangle" tells both the
  shape and that the colour is red);
* existence questions are facts about presence: "is there a red shape?" -> "yes"
  means red is present, "no" means it is absent.  Negated templates flip this:
  "is no red shape present?" -> "yes" means red is absent, "no" means present;
* an attribute is known if some question asserts its value, or if every other
  value of its closed set (8 colours, 3 shapes) has been ruled out;
* a contradiction (two asserted values, or an asserted value that is also ruled
  out) raises :class:`ContradictionError`; images where colour or shape stays
  unknown are dropped.

Everything here is pure data handling: no model code, no torch.

>>> facts_from_question("is there not a blue shape?", "no")
[Fact(attribute='color', value='blue', present=True)]
>>> references("red", "triangle")[0]
'a red triangle'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

COLORS: tuple[str, ...] = ("red", "green", "blue", "black", "gray", "yellow", "teal", "brown")
SHAPES: tuple[str, ...] = ("circle", "rectangle", "triangle")

#: Reference caption templates, in the order they appear in ``references``.
#: The first is the canonical caption (what the reference captioner is trained to say).
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a {color} {shape}",
    "a {color} {shape} on a plain background",
    "an image of a {color} {shape}",
    "a single {color} {shape} in the picture",
    "a {shape} that is {color}",
)

SPLITS: tuple[str, ...] = ("train", "test")

_C = "(?P<color>" + "|".join(COLORS) + ")"
_S = "(?P<shape>" + "|".join(SHAPES) + ")"


@dataclass(frozen=True)
class Fact:
    """``attribute`` ('color' or 'shape') ``value`` is (``present=True``) or is not in the image."""

    attribute: str
    value: str
    present: bool


class ContradictionError(ValueError):
    """Questions of one image disagree about its colour or shape."""


class UnknownQuestionError(ValueError):
    """A question matches none of the 24 easy-VQA templates (or its answer is off-vocabulary)."""


# The 24 easy-VQA templates, as (regex, kind).  Kinds:
#   "what_color" - answer is the colour; a named shape in the question is presupposed present
#   "what_shape" - answer is the shape; a named colour in the question is presupposed present
#   "exists"     - answer yes/no says whether the named colour/shape is present
#   "not_exists" - negated: answer yes means absent, no means present
_TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern + r"\Z"), kind)
    for pattern, kind in (
        # direct "what" questions (8)
        (r"what color is the (?:shape|" + _S + r")\?", "what_color"),
        (r"what is the color of the (?:shape|" + _S + r")\?", "what_color"),
        (r"what is the " + _C + r" shape\?", "what_shape"),
        (r"what shape is in the image\?", "what_shape"),
        (r"what shape does the image contain\?", "what_shape"),
        (r"what shape is present\?", "what_shape"),
        # positive existence (4 templates x {colour, shape})
        (r"is there an? (?:" + _C + r" shape|" + _S + r") in the image\?", "exists"),
        (r"is there an? (?:" + _C + r" shape|" + _S + r")\?", "exists"),
        (r"does the image contain an? (?:" + _C + r" shape|" + _S + r")\?", "exists"),
        (r"is an? (?:" + _C + r" shape|" + _S + r") present\?", "exists"),
        # negated existence (4 templates x {colour, shape})
        (r"is there not an? (?:" + _C + r" shape|" + _S + r") in the image\?", "not_exists"),
        (r"is there not an? (?:" + _C + r" shape|" + _S + r")\?", "not_exists"),
        (r"does the image not contain an? (?:" + _C + r" shape|" + _S + r")\?", "not_exists"),
        (r"is no (?:" + _C + r" shape|" + _S + r") present\?", "not_exists"),
    )
)


def facts_from_question(question: str, answer: str) -> list[Fact]:
    """Turn one question/answer pair into the facts it states about its image.

    Raises :class:`UnknownQuestionError` for a question outside the templates or an
    answer that does not fit its template (so a changed dataset fails loudly).
    """
    q = question.strip().lower()
    a = answer.strip().lower()
    for pattern, kind in _TEMPLATES:
        m = pattern.match(q)
        if m is None:
            continue
        # a colour or shape named in the question (at most one per template)
        named = [Fact(attr, value, True) for attr, value in m.groupdict().items() if value is not None]
        if kind == "what_color":
            if a not in COLORS:
                raise UnknownQuestionError(f"colour question {question!r} has non-colour answer {answer!r}")
            return [*named, Fact("color", a, True)]
        if kind == "what_shape":
            if a not in SHAPES:
                raise UnknownQuestionError(f"shape question {question!r} has non-shape answer {answer!r}")
            return [*named, Fact("shape", a, True)]
        if a not in ("yes", "no"):
            raise UnknownQuestionError(f"yes/no question {question!r} has answer {answer!r}")
        (fact,) = named
        present = (a == "yes") != (kind == "not_exists")
        return [Fact(fact.attribute, fact.value, present)]
    raise UnknownQuestionError(f"question matches no easy-VQA template: {question!r}")


def resolve(facts: Iterable[Fact], *, where: str = "image") -> dict[str, str | None]:
    """Combine the facts of one image into ``{"color": value|None, "shape": value|None}``.

    A value is known when asserted present, or when it is the only value of its
    closed set not ruled out.  Raises :class:`ContradictionError` if two values are
    asserted present, an asserted value is also ruled out, or every value is ruled out.
    """
    facts = list(facts)
    out: dict[str, str | None] = {}
    for attribute, universe in (("color", COLORS), ("shape", SHAPES)):
        present = {f.value for f in facts if f.attribute == attribute and f.present}
        absent = {f.value for f in facts if f.attribute == attribute and not f.present}
        if len(present) > 1:
            raise ContradictionError(f"{where}: several {attribute}s asserted: {sorted(present)}")
        if present & absent:
            raise ContradictionError(f"{where}: {attribute} {sorted(present)[0]!r} asserted both present and absent")
        remaining = [v for v in universe if v not in absent]
        if not remaining:
            raise ContradictionError(f"{where}: every {attribute} ruled out")
        if present:
            out[attribute] = present.pop()
        elif len(remaining) == 1:
            out[attribute] = remaining[0]
        else:
            out[attribute] = None
    return out


def derive_attributes(
    questions: Sequence[str], answers: Sequence[str], image_ids: Sequence[int]
) -> dict[int, dict[str, str | None]]:
    """Per image id, the resolved colour and shape (``None`` where undetermined)."""
    if not len(questions) == len(answers) == len(image_ids):
        raise ValueError("questions, answers and image_ids must have the same length")
    facts: dict[int, list[Fact]] = {}
    for q, a, image_id in zip(questions, answers, image_ids):
        facts.setdefault(int(image_id), []).extend(facts_from_question(q, a))
    return {i: resolve(facts[i], where=f"image {i}") for i in sorted(facts)}


def references(color: str, shape: str) -> list[str]:
    """The reference captions for one image, in :data:`CAPTION_TEMPLATES` order."""
    return [t.format(color=color, shape=shape) for t in CAPTION_TEMPLATES]


def _load_split(split: str) -> tuple[tuple[list[str], list[str], list[int]], dict[int, str]]:
    if split not in SPLITS:
        raise ValueError(f"unknown easy-VQA split {split!r}; expected one of {SPLITS}")
    import easy_vqa  # imported here so that importing this module stays cheap

    if split == "train":
        return easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths()
    return easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths()


@lru_cache(maxsize=None)
def _caption_rows(split: str) -> tuple[tuple[str, str, tuple[str, ...], str, str], ...]:
    (questions, answers, image_ids), paths = _load_split(split)
    rows = []
    for image_id, attrs in derive_attributes(questions, answers, image_ids).items():
        color, shape = attrs["color"], attrs["shape"]
        if color is None or shape is None:
            continue
        path = os.path.abspath(paths[image_id])
        rows.append((str(image_id), path, tuple(references(color, shape)), color, shape))
    return tuple(rows)


def caption_rows(split: str) -> list[dict]:
    """One row per easy-VQA image of ``split`` ('train' or 'test') whose caption can be derived.

    Each row is ``{"image_id": str(image_index), "image": absolute PNG path,
    "references": [5 captions, CAPTION_TEMPLATES order], "color": str, "shape": str}``;
    rows are sorted by integer image id.  Deterministic; the derivation is cached per
    process, the returned dicts and lists are fresh copies.

    >>> rows = caption_rows("test")               # doctest: +SKIP
    >>> rows[0]["references"][0]                  # doctest: +SKIP
    'a red triangle'
    """
    return [
        {"image_id": i, "image": p, "references": list(refs), "color": c, "shape": s}
        for i, p, refs, c, s in _caption_rows(split)
    ]


def retrieval_rows(split: str) -> list[dict]:
    """:func:`caption_rows` plus ``"group": "<color> <shape>"``: images of one group are
    interchangeable for retrieval (every red circle matches "a red circle")."""
    rows = caption_rows(split)
    for row in rows:
        row["group"] = f"{row['color']} {row['shape']}"
    return rows


def split_stats(split: str) -> dict[str, int]:
    """Counts used in ``docs/easyvqa.md``: images, questions, captioned images, what is missing."""
    (questions, answers, image_ids), paths = _load_split(split)
    attrs = derive_attributes(questions, answers, image_ids)
    rows = _caption_rows(split)
    return {
        "images": len(paths),
        "images_with_questions": len(attrs),
        "questions": len(questions),
        "captioned": len(rows),
        "missing_color_only": sum(a["color"] is None and a["shape"] is not None for a in attrs.values()),
        "missing_shape_only": sum(a["shape"] is None and a["color"] is not None for a in attrs.values()),
        "missing_both": sum(a["color"] is None and a["shape"] is None for a in attrs.values()),
        "distinct_captions": len({r[2][0] for r in rows}),
    }
