"""Blind VQA baselines: answers that never look at the image.

They show how much of a VQA score needs no vision at all (easy-VQA: about half
its questions are yes/no, and "yes" and "no" are almost equally frequent, so a
blind model stays far below a seeing one).  Both read one JSON table, written
by ``scripts/train_easyvqa_vqa.py`` from the easy-VQA train split::

    {"majority": "yes",
     "question_only": {"is there a red shape?": "no", ...},
     "source": "how the table was made"}

* :class:`MajorityAnswer` always answers ``majority`` (the most frequent train answer).
* :class:`QuestionOnly` answers ``question_only[normalize_question(question)]``, the most
  frequent train answer for that exact question text; a question that is not in
  the table gets ``majority``.

Neither decodes images (``prepare``, the CPU half of ``generate`` that the runner
calls, is overridden), so a sample whose image is broken still gets an answer.  ``fingerprint_info`` holds the table's sha256, so a
changed table changes the model fingerprint (and the prediction cache key).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import MMBenchError, ModelLoadError
from mmbench.models.base import ModelAdapter, PreparedBatch
from mmbench.types import GenerateRequest, ModelOutput


def normalize_question(text: str) -> str:
    """The key a question is looked up under: lower-cased, surrounding whitespace stripped.

    >>> normalize_question("  Is there a RED shape? ")
    'is there a red shape?'
    """
    return text.strip().lower()


class _TableBaseline(ModelAdapter):
    """Shared loading: the JSON table at ``path``, its sha256 in the fingerprint."""

    adapter = "baseline"
    fingerprint_identifies_content = True  # the adapter (which rule) and the table's sha256

    def __init__(self, name: str, *, path: str | None = None, device: str = "auto", dtype: str = "auto",
                 **_: Any):
        # no tensors anywhere: device and dtype are accepted for the common signature and ignored
        super().__init__(name, device="cpu", dtype="none")
        if not path:
            raise ModelLoadError(f"{type(self).__name__} needs path= (the baselines JSON written by "
                                 "scripts/train_easyvqa_vqa.py)")
        try:
            raw = Path(path).read_bytes()
            table = json.loads(raw)
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read baseline table {path}: {exc}") from None
        if not isinstance(table, dict) or not isinstance(table.get("majority"), str) \
                or not isinstance(table.get("question_only"), dict):
            raise ModelLoadError(f"{path} is not a baseline table: it needs a string 'majority' "
                                 "and a 'question_only' object")
        self.path = str(path)
        self.majority: str = table["majority"]
        self.question_only: dict[str, str] = dict(table["question_only"])
        self.fingerprint_info = {"table_sha256": hashlib.sha256(raw).hexdigest()}

    def info(self) -> dict[str, Any]:
        return {"device": "none (no tensors)", "dtype": "none", "table": self.path}

    def answer(self, req: GenerateRequest) -> str:
        raise NotImplementedError

    def prepare(self, requests: Sequence[GenerateRequest]) -> PreparedBatch:
        """Nothing to prepare: the requests as they are, images never decoded."""
        return PreparedBatch(ids=[r.id for r in requests], requests=list(requests))

    def run(self, batch: PreparedBatch) -> list[ModelOutput]:
        """One output per request, in order (``generate`` is ``run(prepare(requests))``)."""
        outputs = []
        for req in batch.requests:
            try:
                outputs.append(ModelOutput(req.id, text=self.answer(req)))
            except MMBenchError as exc:  # a request this model cannot serve fails alone
                outputs.append(ModelOutput(req.id, error=str(exc)))
        return outputs

    def _generate_batch(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> list[str]:
        return [self.answer(r) for r in requests]


class MajorityAnswer(_TableBaseline):
    """Always the most frequent train answer (``majority`` in the table), whatever the question."""

    adapter = "majority-answer"

    def answer(self, req: GenerateRequest) -> str:
        return self.majority


class QuestionOnly(_TableBaseline):
    """The most frequent train answer for the request's exact question text; images unseen.

    The bare question (``GenerateRequest.question``; never the instruction prompt) is
    looked up as :func:`normalize_question` gives it (lower-cased, stripped).  A question
    that is not in the table is answered with the table's ``majority`` answer: that
    fallback is part of this model's definition, not an error.  A request without a
    question (not from a VQA task) gets an error output.
    """

    adapter = "question-only"

    def answer(self, req: GenerateRequest) -> str:
        if not req.question:
            raise MMBenchError(f"sample {req.id!r}: the question-only baseline needs a question (a VQA task)")
        return self.question_only.get(normalize_question(req.question), self.majority)


class ConstantAnswer(ModelAdapter):
    """Always the same answer (``answer=``, default ``"yes"``), whatever the image and question.

    A probe for what a metric catches: on POPE-style yes/no questions an always-yes model has
    recall 1, precision = the share of yes questions and yes_ratio 1 (F1 looks fine, accuracy is
    chance); asked ``answer=A`` on multiple choice, it shows position bias, which circular
    evaluation turns into about 0.  No table, no weights; images are never decoded.
    """

    adapter = "constant-answer"
    fingerprint_identifies_content = True  # the adapter and its answer are the whole model

    def __init__(self, name: str, *, answer: str = "yes", path: str | None = None, device: str = "auto",
                 dtype: str = "auto", **_: Any):
        super().__init__(name, device="cpu", dtype="none")
        self.constant = str(answer)
        self.fingerprint_info = {"answer": self.constant}

    def info(self) -> dict[str, Any]:
        return {"device": "none (no tensors)", "dtype": "none", "answer": self.constant}

    def prepare(self, requests: Sequence[GenerateRequest]) -> PreparedBatch:
        return PreparedBatch(ids=[r.id for r in requests], requests=list(requests))

    def run(self, batch: PreparedBatch) -> list[ModelOutput]:
        return [ModelOutput(req.id, text=self.constant) for req in batch.requests]

    def _generate_batch(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> list[str]:
        return [self.constant for _ in requests]
