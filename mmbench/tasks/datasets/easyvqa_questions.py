"""easy-VQA as a VQA task: one row per question, as the ``easy-vqa`` package ships them.

easy-VQA (the ``easy-vqa`` PyPI package, MIT) has 38,575 train and 9,673 test
questions about 64x64 images of one coloured shape; every question has exactly
one answer out of 13 (``yes``, ``no``, 8 colours, 3 shapes).  The answer type
follows from the answer: ``"yes/no"``, ``"color"`` or ``"shape"`` (every colour
answer comes from a colour question and every shape answer from a shape
question in easy-VQA's templates, see :mod:`mmbench.tasks.datasets.easyvqa`).

Pure data handling: no model code, no torch.

>>> rows = question_rows("test")                 # doctest: +SKIP
>>> rows[0]["question_id"], rows[0]["answer_type"]  # doctest: +SKIP
('test-0', 'shape')
"""

from __future__ import annotations

import os
from functools import lru_cache

from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES, SPLITS

ANSWER_TYPES: tuple[str, ...] = ("yes/no", "color", "shape")


def answer_type(answer: str) -> str:
    """``"yes/no"``, ``"color"`` or ``"shape"`` for one of easy-VQA's 13 answers; ValueError otherwise."""
    if answer in ("yes", "no"):
        return "yes/no"
    if answer in COLORS:
        return "color"
    if answer in SHAPES:
        return "shape"
    raise ValueError(f"{answer!r} is not one of easy-VQA's answers")


@lru_cache(maxsize=None)
def _question_rows(split: str) -> tuple[tuple[str, str, str, str, str, str], ...]:
    if split not in SPLITS:
        raise ValueError(f"unknown easy-VQA split {split!r}; expected one of {SPLITS}")
    import easy_vqa  # here, so that importing this module stays cheap

    if split == "train":
        (questions, answers, image_ids), paths = easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths()
    else:
        (questions, answers, image_ids), paths = easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths()
    rows = []
    for i, (question, answer, image_id) in enumerate(zip(questions, answers, image_ids, strict=True)):
        rows.append((f"{split}-{i}", str(int(image_id)), os.path.abspath(paths[image_id]), question, answer,
                     answer_type(answer)))
    return tuple(rows)


def question_rows(split: str) -> list[dict]:
    """One row per easy-VQA question of ``split`` ('train' or 'test'), in the package's order.

    Each row is ``{"question_id": "<split>-<index in the package's question list>",
    "image_id": str(image index), "image": absolute PNG path, "question": str,
    "answer": str, "answer_type": "yes/no" | "color" | "shape"}``.  Ids are stable as
    long as the package's question order is (easy-vqa 1.0).  The rows are cached per
    process; the returned dicts are fresh copies.
    """
    keys = ("question_id", "image_id", "image", "question", "answer", "answer_type")
    return [dict(zip(keys, row)) for row in _question_rows(split)]


#: Rephrasings per question kind, in group order.  Those marked "template" are easy-VQA's own
#: question templates (the reference model saw them in training); "novel" ones are new wordings.
REPHRASINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "color": (("what color is the shape?", "template"), ("what is the color of the shape?", "template"),
              ("what color is the {shape}?", "template"), ("what is the color of the {shape}?", "template"),
              ("which color is the shape?", "novel"), ("what colour is the shape?", "novel")),
    "shape": (("what shape is in the image?", "template"), ("what shape does the image contain?", "template"),
              ("what shape is present?", "template"), ("what is the {color} shape?", "template"),
              ("which shape is shown?", "novel"), ("what kind of shape is this?", "novel")),
    "exists": (("is there a {thing} in the image?", "template"), ("is there a {thing}?", "template"),
               ("does the image contain a {thing}?", "template"), ("is a {thing} present?", "template"),
               ("can you see a {thing}?", "novel")),
}


@lru_cache(maxsize=None)
def _consistency_rows(split: str) -> tuple[tuple[str, ...], ...]:
    from mmbench.tasks.datasets.easyvqa import caption_rows

    rows = []
    for image in caption_rows(split):
        iid, color, shape = image["image_id"], image["color"], image["shape"]
        other_shape = SHAPES[(SHAPES.index(shape) + 1 + int(iid) % 2) % len(SHAPES)]
        groups = (("color", color, {}), ("shape", shape, {}),
                  ("exists-yes", "yes", {"thing": f"{color} shape" if int(iid) % 2 else shape}),
                  ("exists-no", "no", {"thing": other_shape}))
        for kind, answer, fill in groups:
            for j, (template, phrasing) in enumerate(REPHRASINGS[kind.split("-")[0]]):
                question = template.format(color=color, shape=shape, **fill)
                rows.append((f"{split}-{iid}-{kind}-{j}", iid, image["image"], question, answer, answer_type(answer),
                             f"{iid}/{kind}", phrasing))
    return tuple(rows)


def consistency_rows(split: str) -> list[dict]:
    """Groups of rephrased questions about easy-VQA images whose colour and shape are known.

    Per image (the captioned images of :func:`mmbench.tasks.datasets.easyvqa.caption_rows`) four
    groups, each asking one thing in 5-6 wordings (:data:`REPHRASINGS`): its colour, its
    shape, the presence of its shape or colour (answer yes; shape on even image ids, colour
    on odd), and the presence of another shape (answer no).  Each row is
    ``{"question_id", "image_id", "image", "question", "answer", "answer_type",
    "group": "<image id>/<kind>", "phrasing": "template" | "novel"}``.  Deterministic.
    """
    keys = ("question_id", "image_id", "image", "question", "answer", "answer_type", "group", "phrasing")
    return [dict(zip(keys, row)) for row in _consistency_rows(split)]
