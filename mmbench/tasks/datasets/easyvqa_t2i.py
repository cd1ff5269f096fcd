"""easy-VQA text-to-image prompts: canonical captions of test images ("a red circle"), offline.

Each of the 24 colour-shape classes contributes the captions of its first ``per_class`` test
images (by integer image id; every class has at least 22), so a class is asked for several
times with different seeds.  The prompt is the canonical caption (``references[0]`` of
:func:`~mmbench.tasks.datasets.easyvqa.caption_rows`), the id the test image's id (the image
the prompt came from, never shown to the model), the category the shape, and the colour is kept.
The train split's images are what a reference model may learn from; these prompts come from
the test split's captions, but the 24 texts are the same in both splits (only 24 exist).
"""

from __future__ import annotations

from mmbench.tasks.datasets.easyvqa import caption_rows


def t2i_prompt_rows(split: str = "test", per_class: int = 8) -> list[dict]:
    """``[{"id", "prompt", "category", "color", "shape"}]``, ``per_class`` rows per colour-shape
    class (fewer only if the split has fewer images of the class), sorted by integer image id.

    >>> rows = t2i_prompt_rows("test", per_class=1)   # doctest: +SKIP
    >>> len(rows), rows[0]["prompt"]                  # doctest: +SKIP
    (24, 'a red triangle')
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    taken: dict[str, int] = {}
    rows = []
    for row in sorted(caption_rows(split), key=lambda r: int(r["image_id"])):
        caption = row["references"][0]
        if taken.get(caption, 0) >= per_class:
            continue
        taken[caption] = taken.get(caption, 0) + 1
        rows.append({"id": row["image_id"], "prompt": caption, "category": row["shape"], "color": row["color"],
                     "shape": row["shape"]})
    return rows
