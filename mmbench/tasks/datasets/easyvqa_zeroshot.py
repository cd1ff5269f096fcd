"""easy-VQA test images as zero-shot classification rows (offline).

Each captioned image (:func:`mmbench.tasks.datasets.easyvqa.caption_rows`) becomes one row
whose ``label`` is its class name under ``target``:

* ``color_shape`` - ``"<color> <shape>"``, 24 classes (8 colours x 3 shapes, in
  :data:`COLOR_SHAPE_CLASSES` order);
* ``shape`` - one of the 3 shapes; ``color`` - one of the 8 colours.

>>> COLOR_SHAPE_CLASSES[:4]
('red circle', 'red rectangle', 'red triangle', 'green circle')
"""

from __future__ import annotations

from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES, caption_rows

COLOR_SHAPE_CLASSES: tuple[str, ...] = tuple(f"{c} {s}" for c in COLORS for s in SHAPES)
TARGETS = {"color_shape": COLOR_SHAPE_CLASSES, "shape": SHAPES, "color": COLORS}


def zeroshot_rows(split: str, target: str = "color_shape") -> list[dict]:
    """``{"image_id", "image", "label"}`` per captioned image of ``split``, sorted by image id."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}")
    rows = []
    for row in caption_rows(split):
        label = {"color_shape": f"{row['color']} {row['shape']}", "shape": row["shape"], "color": row["color"]}
        rows.append({"image_id": row["image_id"], "image": row["image"], "label": label[target]})
    return rows
