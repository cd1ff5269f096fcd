"""VQA-Rephrasings (Shah et al., CVPR 2019) from its official JSON release.

The release (https://facebookresearch.github.io/VQA-Rephrasings/) is two files in the
VQAv2 layout: ``v2_OpenEnded_mscoco_valrep2014_humans_og_questions.json``
(``{"questions": [{image_id, question, question_id, rephrasing_of?}]}``: the original
VQAv2 validation questions keep their ids, each human rephrasing names its original in
``rephrasing_of``) and ``v2_mscoco_valrep2014_humans_og_annotations.json`` (VQAv2
annotations: 10 human answers per question; a rephrasing carries its original's
answers).  No copy with a pinned revision exists on the Hugging Face hub, so the task
reads the files from a folder you name with ``$VQA_REPHRASINGS_DIR`` and the COCO
val2014 images from ``$COCO_IMAGES``.

Rows are grouped by their original question (``group`` = the original's id), so
:func:`mmbench.metrics.consistency.answer_consistency` reports consistency, majority
accuracy and the paper's consensus score CS(k).  Pure data handling: no model code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mmbench.errors import DataError

QUESTIONS_FILE = "v2_OpenEnded_mscoco_valrep2014_humans_og_questions.json"
ANNOTATIONS_FILE = "v2_mscoco_valrep2014_humans_og_annotations.json"


def _read(path: Path, key: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("file not found (download the VQA-Rephrasings release into $VQA_REPHRASINGS_DIR)",
                        source=str(path)) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", source=str(path)) from None
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise DataError(f"expected an object with a {key!r} list (the VQAv2 layout)", source=str(path))
    return items


def _folder(folder: str) -> Path:
    expanded = os.path.expandvars(os.path.expanduser(folder))
    if "$" in expanded or not Path(expanded).is_dir():
        raise DataError(f"{folder!r} is not an existing folder: set VQA_REPHRASINGS_DIR to the folder holding "
                        f"{QUESTIONS_FILE} and {ANNOTATIONS_FILE}", field="folder")
    return Path(expanded)


def rephrasing_rows(split: str, folder: str = "$VQA_REPHRASINGS_DIR") -> list[dict[str, Any]]:
    """One row per question (originals and rephrasings), in the release's order.

    Each row: ``{"question_id", "image_id", "image": "COCO_val2014_<12-digit id>.jpg", "question",
    "answers": [10 strings], "answer_type", "question_type", "group": "<original question id>",
    "phrasing": "original" | "rephrasing"}``.  Every problem (a duplicate id, a rephrasing of an
    unknown question, a question without answers) is an error naming the file and question.
    """
    if split != "val":
        raise DataError(f"VQA-Rephrasings has one split, 'val', not {split!r}", field="split")
    root = _folder(folder)
    questions = _read(root / QUESTIONS_FILE, "questions")
    annotations = _read(root / ANNOTATIONS_FILE, "annotations")
    answers: dict[int, dict[str, Any]] = {}
    for ann in annotations:
        qid = ann.get("question_id")
        if not isinstance(qid, int) or isinstance(qid, bool) or not isinstance(ann.get("answers"), list):
            raise DataError("annotation without an integer question_id and an answers list",
                            source=str(root / ANNOTATIONS_FILE), sample_id=str(qid))
        answers[qid] = ann
    ids = set()
    for q in questions:
        qid = q.get("question_id")
        if not isinstance(qid, int) or isinstance(qid, bool):
            raise DataError("question without an integer question_id", source=str(root / QUESTIONS_FILE),
                            sample_id=str(qid), field="question_id")
        if qid in ids:
            raise DataError("duplicate question_id", source=str(root / QUESTIONS_FILE), sample_id=str(qid))
        ids.add(qid)
    rows = []
    for q in questions:
        qid, original = q["question_id"], q.get("rephrasing_of")
        group = qid if original is None else original
        if original is not None and original not in ids:
            raise DataError(f"rephrasing_of {original} is not a question of the file",
                            source=str(root / QUESTIONS_FILE), sample_id=str(qid), field="rephrasing_of")
        ann = answers.get(qid) or answers.get(group)  # a rephrasing shares its original's answers
        if ann is None:
            raise DataError("no annotation for this question or its original", source=str(root / ANNOTATIONS_FILE),
                            sample_id=str(qid), field="answers")
        image_id = q.get("image_id")
        rows.append({
            "question_id": str(qid),
            "image_id": str(image_id),
            "image": f"COCO_val2014_{image_id:012d}.jpg" if isinstance(image_id, int) else None,
            "question": q.get("question"),
            "answers": [a.get("answer") if isinstance(a, dict) else a for a in ann["answers"]],
            "answer_type": ann.get("answer_type"),
            "question_type": ann.get("question_type"),
            "group": str(group),
            "phrasing": "original" if original is None else "rephrasing",
        })
    return rows
