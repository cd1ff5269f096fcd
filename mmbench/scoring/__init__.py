"""Re-score prediction files without a model (``mmbench score``).

One module per job: :mod:`~mmbench.scoring.readers` (reading JSON lines, JSON arrays and
official one-object files; the id rules below; predictions; aligning predictions with
references), one module per family that reads its references (official layouts
included) and scores them - :mod:`~mmbench.scoring.captioning` (COCO captions),
:mod:`~mmbench.scoring.vqa` (VQA v2 annotations and questions),
:mod:`~mmbench.scoring.retrieval` (precomputed embeddings), :mod:`~mmbench.scoring.benchmarks`
(ANLS, ChartQA relaxed accuracy, POPE and multiple-choice answer files) - and
:mod:`~mmbench.scoring.consistency` (CLIPScore of captions or prompt/image pairs, with a
scorer model).  The public functions are re-exported here.

**Which field is a sample's id** depends on the family (ids are compared as strings):

* captioning: ``image_id``, else ``id`` (a caption sample is an image);
* VQA: ``question_id``, else ``id`` (a VQA sample is a question; its ``image_id`` is not an id).

A line carrying both fields with different values is ambiguous and an error, never a guess.

**Layouts**, told apart by content, not by file name:

* predictions: JSON lines ``{"<id>", "prediction"}`` (``caption``/``answer`` are accepted too;
  mmbench's own ``predictions/<task>.jsonl`` work as they are), or a JSON array as the official
  result files are: COCO ``[{"image_id", "caption"}]``, VQA ``[{"question_id", "answer"}]``.
* references: JSON lines (captioning ``{"image_id", "references": [...]}``, VQA
  ``{"question_id", "answers": [...], "answer_type"?, "question_type"?}``, answers as strings or
  ``{"answer": ...}`` objects); an official annotation file: COCO captions ``{"images",
  "annotations": [{"image_id", "id", "caption"}]}`` or VQA ``{"annotations": [{"question_id",
  "answers", "answer_type", "question_type", ...}]}`` with an optional VQA questions file
  ``{"questions": [...]}`` checked against it; or none, when the predictions carry their own
  ``references`` (lines with a row error and no references are left out, as the run did).

Which samples are scored: every reference must have a prediction and every prediction a
reference, except against a COCO captions file, where (as COCOEvalCap does) the images of the
predictions are scored, with a warning saying how many of the file's images that is.
A recorded failure (null prediction with an ``error``) is scored as empty, as in the run.

Every problem - an unreadable, non-UTF-8 or wrongly shaped file, a duplicate, unknown,
missing or ambiguous id, a missing or non-string field - is a :class:`DataError` naming the
file, the line (``file:3``) or array element (``file[2]``, ``file annotations[2]``), the
sample id and the field; nothing is skipped silently.
"""

from __future__ import annotations

from typing import Any

from mmbench.scoring.benchmarks import (pope_json, score_anls_files, score_multiple_choice_files, score_pope_files,
                                        score_relaxed_files)
from mmbench.scoring.captioning import read_caption_references, score_captioning
from mmbench.scoring.readers import ID_KEYS, MAX_JSON_BYTES, Rows, align, read_predictions, read_records
from mmbench.scoring.retrieval import RETRIEVAL_JSON_KEYS, load_embeddings, score_retrieval_files
from mmbench.scoring.vqa import VQA_METRICS, read_vqa_references, score_vqa_files

__all__ = ["ID_KEYS", "MAX_JSON_BYTES", "RETRIEVAL_JSON_KEYS", "Rows", "VQA_METRICS", "align", "load_embeddings",
           "pope_json",
           "read_caption_references", "read_predictions", "read_records", "read_vqa_references",
           "score_anls_files", "score_captioning", "score_consistency_files", "score_multiple_choice_files",
           "score_pope_files", "score_relaxed_files", "score_retrieval_files", "score_vqa_files"]


def __getattr__(name: str) -> Any:
    """``score_consistency_files`` on first use: its module imports the scorer-model loader,
    which the other commands do not need."""
    if name == "score_consistency_files":
        from mmbench.scoring.consistency import score_consistency_files

        return score_consistency_files
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
