"""easy-VQA as POPE: yes/no object-presence questions with random, popular and adversarial negatives.

POPE (Li et al., 2023) asks "Is there a <object> in the image?" about objects that are in the
image (answer yes) and objects that are not (answer no), half and half, and draws the absent
objects three ways: **random** (any absent object), **popular** (the most frequent objects of
the dataset) and **adversarial** (the objects that co-occur most often with the image's own).

easy-VQA images hold one shape of one colour.  Its "objects" here are the 3 shapes and the 8
colours ("a red shape"), asked with easy-VQA's own existence template ``"is there a <thing> in
the image?"`` (``<thing>`` is ``circle`` or ``red shape``), so its reference VQA model is in
distribution.  Per captioned image (:func:`mmbench.tasks.datasets.easyvqa.caption_rows`, 888 test
images) and per split: 2 positives (its shape, its colour) and 2 negatives (one absent shape, one
absent colour), drawn as

* **random**: uniformly among the absent ones (``random.Random("<split>-<image id>")``);
* **popular**: the most frequent shape / colour over the split's images that the image lacks
  (frequencies counted on the captioned images; ties by name);
* **adversarial**: for the shape, the absent shape that co-occurs most often with the image's
  colour (over the images of that colour: POPE's co-occurrence statistic); for the colour,
  the absent colour nearest to the image's colour in RGB (easy-VQA paints each colour with one
  exact value; at 64x64 teal, green and blue, or red and brown, are the confusable ones).

So each split has 888 x 4 = 3,552 questions, half yes; the positives are the same in all three
splits (as in POPE, whose split files each hold their own copy of the positive questions).

Pure data handling: no model code, no torch.
"""

from __future__ import annotations

import random
from collections import Counter
from functools import lru_cache

from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES, caption_rows

POPE_SPLITS: tuple[str, ...] = ("random", "popular", "adversarial")
#: easy-VQA's exact paint colours (checked on the images by tests/test_easyvqa_data.py)
RGB: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0),
    "gray": (128, 128, 128), "yellow": (255, 255, 0), "teal": (0, 128, 128), "brown": (165, 42, 42),
}
QUESTION = "is there a {thing} in the image?"


def _thing(kind: str, value: str) -> str:
    return value if kind == "shape" else f"{value} shape"


def nearest_color(color: str) -> str:
    """The other easy-VQA colour nearest in RGB (squared distance; ties by name).

    >>> nearest_color("red"), nearest_color("teal")
    ('brown', 'gray')
    """
    r, g, b = RGB[color]
    return min((c for c in COLORS if c != color),
               key=lambda c: ((RGB[c][0] - r) ** 2 + (RGB[c][1] - g) ** 2 + (RGB[c][2] - b) ** 2, c))


def _most_frequent(counts: Counter, exclude: str, pool: tuple[str, ...]) -> str:
    return min((v for v in pool if v != exclude), key=lambda v: (-counts[v], v))


@lru_cache(maxsize=None)
def _pope_rows(split: str) -> tuple[tuple, ...]:
    images = caption_rows(split)
    shape_counts = Counter(im["shape"] for im in images)
    color_counts = Counter(im["color"] for im in images)
    shapes_by_color = {c: Counter(im["shape"] for im in images if im["color"] == c) for c in COLORS}
    rows = []
    for pope_split in POPE_SPLITS:
        for im in images:
            iid, color, shape = im["image_id"], im["color"], im["shape"]
            if pope_split == "random":
                rng = random.Random(f"{split}-{iid}")
                neg_shape = rng.choice([s for s in SHAPES if s != shape])
                neg_color = rng.choice([c for c in COLORS if c != color])
            elif pope_split == "popular":
                neg_shape = _most_frequent(shape_counts, shape, SHAPES)
                neg_color = _most_frequent(color_counts, color, COLORS)
            else:
                neg_shape = _most_frequent(shapes_by_color[color], shape, SHAPES)
                neg_color = nearest_color(color)
            for kind, value, answer in (("shape", shape, "yes"), ("color", color, "yes"),
                                        ("shape", neg_shape, "no"), ("color", neg_color, "no")):
                rows.append((f"{split}-{pope_split}-{iid}-{kind}-{answer}", iid, im["image"],
                             QUESTION.format(thing=_thing(kind, value)), answer, pope_split, value))
    return tuple(rows)


def pope_rows(split: str) -> list[dict]:
    """POPE-style questions about the captioned easy-VQA images of ``split``: for each POPE split
    (random, popular, adversarial) and image, 2 yes and 2 no questions.

    Each row is ``{"question_id": "<split>-<pope split>-<image id>-<shape|color>-<yes|no>",
    "image_id", "image": PNG path, "question", "answer": "yes" | "no", "pope_split",
    "object": the shape or colour asked about}``.  Deterministic; cached per process.
    """
    keys = ("question_id", "image_id", "image", "question", "answer", "pope_split", "object")
    return [dict(zip(keys, row)) for row in _pope_rows(split)]
