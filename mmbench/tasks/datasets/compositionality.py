"""Rows for SugarCrepe and ARO from their official releases on local disk (neither is on the hub
in its official form).

* :func:`sugarcrepe_rows` - the seven ``data/<split>.json`` files of RAIVNLab/sugar-crepe
  (a clone at ``$SUGARCREPE_DIR``, commit 0047054b243992f0fad63d6f64f7544862daf846) and COCO
  val2017 images (``$COCO_VAL2017_DIR``).  Captions are ``[negative_caption, caption]`` with
  ``correct: 1``, so the first-listed-wins tie rule is the official ``pos_score > neg_score``.
* :func:`aro_rows` - ARO's files in ``$ARO_DIR`` (what mertyg/vision-language-models-are-bows
  downloads): ``visual_genome_relation.json`` / ``visual_genome_attribution.json`` and
  ``images/`` (each image cropped to the item's box, as the official loader does, and kept as
  PNG bytes), or, for COCO/Flickr30k order, ``coco_order_test.json`` / ``flickr30k_order_test.json``
  (``[{"image", "caption_options"}]``, the official ``COCO_Order(...).test_cases`` written out:
  the shuffles need spaCy and NLTK and are random, so they are exported once and pinned by
  file hash) with images under ``image_root``.  Caption order is the official one: VG
  ``[false, true]`` (``correct: 1``), order ``[true, 4 shuffles]`` (``correct: 0``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

SUGARCREPE_SPLITS = ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")
ARO_KINDS = ("vg_relation", "vg_attribution", "coco_order", "flickr30k_order")


def _folder(value: str | None, env: str) -> Path:
    folder = value or os.environ.get(env)
    if not folder:
        raise FileNotFoundError(f"set ${env} (or loader_kwargs) to the folder holding the official files")
    return Path(os.path.expandvars(os.path.expanduser(folder)))


def sugarcrepe_rows(split: str = "test", data_dir: str | None = None, image_root: str | None = None,
                    commit: str | None = None) -> list[dict]:
    """One row per SugarCrepe item of all seven splits: ``{"id": "<split>/<key>", "image", "captions",
    "correct": 1, "split"}``.  ``commit`` names the sugar-crepe commit the task expects (it enters
    the task definition, so the fingerprint); the files are read as they are."""
    data, images = _folder(data_dir, "SUGARCREPE_DIR"), _folder(image_root, "COCO_VAL2017_DIR")
    rows = []
    for name in SUGARCREPE_SPLITS:
        path = data / "data" / f"{name}.json" if (data / "data").is_dir() else data / f"{name}.json"
        for key, item in json.loads(path.read_text(encoding="utf-8")).items():
            rows.append({"id": f"{name}/{key}", "image": str(images / item["filename"]),
                         "captions": [item["negative_caption"], item["caption"]], "correct": 1, "split": name})
    return rows


def _crop_png(path: Path, item: dict) -> bytes:
    from PIL import Image

    with Image.open(path) as im:
        box = (item["bbox_x"], item["bbox_y"], item["bbox_x"] + item["bbox_w"], item["bbox_y"] + item["bbox_h"])
        buf = io.BytesIO()
        im.convert("RGB").crop(box).save(buf, "PNG")
    return buf.getvalue()


def aro_rows(split: str = "test", kind: str = "vg_relation", data_dir: str | None = None,
             image_root: str | None = None) -> list[dict]:
    """One row per ARO item of ``kind``: ``{"id", "image", "captions", "correct", "group"?}``."""
    if kind not in ARO_KINDS:
        raise ValueError(f"kind must be one of {ARO_KINDS}, got {kind!r}")
    root = _folder(data_dir, "ARO_DIR")
    if kind in ("coco_order", "flickr30k_order"):
        images = _folder(image_root, "COCO_DIR" if kind == "coco_order" else "FLICKR30K_DIR")
        items = json.loads((root / f"{kind}_test.json").read_text(encoding="utf-8"))
        return [{"id": str(i), "image": str(images / item["image"]), "captions": list(item["caption_options"]),
                 "correct": 0} for i, item in enumerate(items)]
    name = "visual_genome_relation.json" if kind == "vg_relation" else "visual_genome_attribution.json"
    rows = []
    for i, item in enumerate(json.loads((root / name).read_text(encoding="utf-8"))):
        group = item["relation_name"] if kind == "vg_relation" else f"{item['attributes'][0]}_{item['attributes'][1]}"
        rows.append({"id": str(i), "image": {"bytes": _crop_png(root / "images" / item["image_path"], item)},
                     "captions": [item["false_caption"], item["true_caption"]], "correct": 1, "group": group})
    return rows
