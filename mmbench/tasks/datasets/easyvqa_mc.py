"""easy-VQA as multiple choice: a colour and a shape question per image, with options.

For every captioned easy-VQA image (:func:`mmbench.tasks.datasets.easyvqa.caption_rows`,
888 test images whose colour and shape are known) two questions, worded as easy-VQA's own
templates so its reference VQA model is in distribution:

* ``"what color is the shape?"`` with 4 options: the image's colour and 3 other colours drawn
  from easy-VQA's 8;
* ``"what shape is in the image?"`` with the 3 shapes as options.

Distractors and option order come from ``random.Random("<split>-<image id>-<kind>")``, so the
rows are the same on every machine and Python version (string seeds hash with SHA-512).  The
correct option's position is therefore spread over the letters.  The task asks each question
once per rotation of its options (circular evaluation), which undoes any position bias the
drawn order may still have.

Pure data handling: no model code, no torch.

>>> rows = mc_rows("test")                                    # doctest: +SKIP
>>> rows[0]["question"], rows[0]["choices"], rows[0]["answer"]  # doctest: +SKIP
('what color is the shape?', ['red', 'brown', 'teal', 'gray'], 'A')
"""

from __future__ import annotations

import random
from functools import lru_cache

from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES, caption_rows

LETTERS = "ABCD"
#: (kind, question, options per question)
QUESTIONS: tuple[tuple[str, str, int], ...] = (
    ("color", "what color is the shape?", 4),
    ("shape", "what shape is in the image?", 3),
)


def options_for(split: str, image_id: str, kind: str, correct: str, n: int) -> list[str]:
    """The ``n`` options of one question: ``correct`` plus ``n - 1`` others of its kind, shuffled.

    >>> options_for("test", "0", "shape", "triangle", 3) == options_for("test", "0", "shape", "triangle", 3)
    True
    """
    pool = [v for v in (COLORS if kind == "color" else SHAPES) if v != correct]
    rng = random.Random(f"{split}-{image_id}-{kind}")
    options = [correct] + rng.sample(pool, n - 1)
    rng.shuffle(options)
    return options


@lru_cache(maxsize=None)
def _mc_rows(split: str) -> tuple[tuple, ...]:
    rows = []
    for image in caption_rows(split):
        iid = image["image_id"]
        for kind, question, n in QUESTIONS:
            correct = image[kind]
            options = options_for(split, iid, kind, correct, n)
            rows.append((f"{split}-{iid}-{kind}", iid, image["image"], question, tuple(options),
                         LETTERS[options.index(correct)], kind))
    return tuple(rows)


def mc_rows(split: str) -> list[dict]:
    """Two multiple-choice questions per captioned easy-VQA image of ``split``, in image order.

    Each row is ``{"question_id": "<split>-<image id>-color|shape", "image_id", "image": PNG path,
    "question", "choices": [option texts], "answer": correct letter, "category": "color" | "shape"}``.
    Deterministic; cached per process (the returned dicts are fresh copies).
    """
    keys = ("question_id", "image_id", "image", "question", "choices", "answer", "category")
    return [{**dict(zip(keys, row)), "choices": list(row[4])} for row in _mc_rows(split)]
