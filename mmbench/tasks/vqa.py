"""Visual question answering: image + question in, short answer out.

Columns (``columns:`` maps them): ``id`` (question id), ``image``, ``question``,
``answers`` (a list of strings, a list of ``{"answer": ...}`` objects as in VQAv2,
or one string for single-answer datasets), optional ``answer_type`` and
``question_type``, ``split`` (a benchmark's sub-split reported apart: POPE's random /
popular / adversarial, ChartQA's human / augmented) and ``category``.  The task's
``prompt`` is a template with ``{question}``; VQA heads (BLIP-VQA, ViLT) receive the
bare question instead.

Post-processing is the task's: the first non-empty line of the output, stripped.
Answer normalisation belongs to the metric (the official VQA rules).  A failed
sample is scored as an empty answer (wrong) and counted in ``n_failed``; an empty
model answer is counted as ``unanswered``.  Nothing is ever replaced by a guess.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, Sequence

from mmbench.errors import DataError
from mmbench.metrics.spec import Output
from mmbench.tasks.base import Task
from mmbench.types import GenerateRequest, Sample

DEFAULT_PROMPT = "{question}\nAnswer the question using a single word or phrase."


def _as_answers(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                item = item.get("answer")
            if not isinstance(item, str):
                raise ValueError(f"answer {i} is {type(item).__name__}, not a string")
            if not item.strip():
                raise ValueError(f"answer {i} is an empty string")
            out.append(sys.intern(item))  # ten answers a question from a small vocabulary: one copy each
        return out
    raise ValueError(f"expected a list of answers, got {type(value).__name__}")


class VQATask(Task):
    family = "vqa"
    #: empty answers (the model said nothing; failures are counted apart, in n_failed)
    extra_outputs = (Output("unanswered", higher_is_better=False, aggregation="count", per_sample=False),)
    #: ``metric_options: {answers_per_question: 10}``: rows with another count are data errors
    family_options = ("answers_per_question",)
    fields = ("id", "image", "question", "answers", "answer_type", "question_type", "choices", "group",
              "phrasing", "image_id", "split", "category")
    prompt_fields = ("question", "options")

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        try:
            image = self.image(row, sid)
            question = self.value(row, "question")
            if not isinstance(question, str) or not question.strip():
                raise DataError("missing or empty question", sample_id=sid, field=self.column("question"))
            raw_answers = self.value(row, "answers")
            if raw_answers is None:
                raise DataError("question has no answers", sample_id=sid, field=self.column("answers"))
            try:
                answers = _as_answers(raw_answers)
            except ValueError as exc:
                raise DataError(str(exc), sample_id=sid, field=self.column("answers")) from None
            expected = self.config.metric_options.get("answers_per_question")
            if not answers or (expected and len(answers) != expected):
                raise DataError(f"expected {expected or 'at least 1'} answers, got {len(answers)}", sample_id=sid,
                                field=self.column("answers"))
        except DataError as exc:
            return Sample(id=sid, error=str(exc))
        meta = {k: v for k in ("answer_type", "question_type", "choices", "group", "phrasing", "split", "category")
                if (v := self.value(row, k)) is not None}
        image_id = row.get(self.config.dataset.columns.get("image_id", "image_id"))
        if isinstance(image_id, (str, int)) and not isinstance(image_id, bool):
            meta["image_id"] = str(image_id)  # leaderboards resample questions of one image together
        return Sample(id=sid, images=(image,), text=question, references=tuple(answers), meta=meta)

    def prompt_for(self, model_name: str | None) -> str | None:
        return super().prompt_for(model_name) or DEFAULT_PROMPT

    def build_request(self, sample: Sample, model_name: str | None) -> GenerateRequest:
        """The prompt template may use ``{question}`` and, for multiple choice, ``{options}``
        (lines "A. first", "B. second", ...)."""
        template = self.prompt_for(model_name)
        options = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(sample.meta.get("choices") or ()))
        return GenerateRequest(id=sample.id, images=sample.images,
                               prompt=template.format(question=sample.text, options=options),
                               question=sample.text, generation=self.config.generation)

    def parse_output(self, text: str) -> str:
        for line in text.splitlines():
            if line.strip():
                return line.strip()
        return ""

    def count_outputs(self, samples: Sequence[Sample], predictions: Sequence[str | None]) -> dict[str, float]:
        unanswered = sum(1 for s, p in zip(samples, predictions) if s.error is None and p is not None and not p)
        return {"unanswered": float(unanswered)}
