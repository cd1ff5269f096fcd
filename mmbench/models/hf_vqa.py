"""VQA heads: BLIP-VQA (generates an answer) and ViLT (classifies over its answer vocabulary).

Both take the bare question (``GenerateRequest.question``), not an instruction
prompt.  BLIP's ``generate`` ignores the question's attention mask (it builds a
mask of ones), so padding would change answers; this adapter therefore batches
BLIP questions only with questions of the same token length, which keeps
answers identical at any batch size.

Score requests (:class:`~mmbench.types.ScoreRequest`, ViLT only): the prompt is the
question, each continuation a candidate answer, and the answer is
``(log softmax(logits)[answer], 1)``: the log of the classifier's probability of that
answer, one "token".  Softmax, not ViLT's usual sigmoid: the answer the adapter gives is
the argmax of the same logits (so the most probable candidate is the answer it would give),
and the reference ``easyvqa-vilt`` is trained with cross-entropy over its answers, which
makes the softmax its own probability.  A candidate is matched to the vocabulary
(``config.id2label``) after :func:`normalise_answer` (case, surrounding spaces and final
punctuation: ``"Yes"`` and ``"yes."`` are ``yes``); a request with a candidate outside the
vocabulary fails alone, with an error naming the candidate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.models.base import PreparedBatch
from mmbench.models.hf import HFAdapter
from mmbench.types import GenerateRequest, ModelOutput, ScoreRequest


def normalise_answer(text: str) -> str:
    """A candidate answer as the classifier's labels are written: lower case, no surrounding
    spaces or final punctuation, single spaces.

    >>> normalise_answer(" Yes. ")
    'yes'
    """
    return " ".join(text.strip().rstrip(".!?,;:").lower().split())


class HFVQAModel(HFAdapter):
    adapter = "hf-vqa"
    capabilities = frozenset({"generate"})

    auto_class = "AutoModelForVisualQuestionAnswering"

    def model_class(self, config: Any) -> Any:
        cls = super().model_class(config)
        # ViLT classifies over its answer vocabulary (config.id2label); BLIP-VQA generates
        self.classifier = config.model_type == "vilt" or cls.__name__.startswith("Vilt")
        if self.classifier:
            self.capabilities = frozenset({"generate", "score"})
            self.answer_ids = {normalise_answer(str(label)): int(i)
                               for i, label in (getattr(config, "id2label", None) or {}).items()}
        return cls

    def _question(self, req: GenerateRequest | ScoreRequest) -> str:
        question = getattr(req, "question", None)
        text = question if question is not None else req.prompt
        if not text:
            raise MMBenchError(f"sample {req.id!r}: a VQA head needs a question")
        return text

    def _unscorable(self, req: ScoreRequest) -> str | None:
        """Why ``req`` cannot be scored by the classifier (None if it can)."""
        outside = [c for c in req.continuations if not isinstance(c, str) or normalise_answer(c) not in self.answer_ids]
        if not req.continuations or outside:
            return (f"{self.name!r} (hf-vqa, a classifier) can score only answers in its vocabulary "
                    f"({', '.join(sorted(self.answer_ids))}); not {outside or 'an empty list'!r}")
        if not req.prompt:
            return f"sample {req.id!r}: a VQA head needs a question (the score request's prompt)"
        return None

    def prepare(self, requests: Sequence[Any]) -> PreparedBatch:
        """As the base class, but a score request with a candidate outside the answer vocabulary
        fails on its own here, before the batch is processed."""
        bad = {}
        for req in requests:
            reason = self._unscorable(req) if isinstance(req, ScoreRequest) else None
            if reason is not None:
                bad[req.id] = ModelOutput(req.id, error=reason)
        batch = super().prepare([r for r in requests if r.id not in bad])
        batch.ids = [r.id for r in requests]
        batch.failures.update(bad)
        return batch

    def _preprocess(self, requests: Sequence[Any], images: Sequence[list[Any]]) -> Any:
        """Processor inputs per group of request indices (one group for ViLT; BLIP groups by length)."""
        questions = [self._question(r) for r in requests]
        pil = [imgs[0] for imgs in images]
        if self.classifier:
            groups = [list(range(len(questions)))]
        else:
            by_len: dict[int, list[int]] = defaultdict(list)
            for i, q in enumerate(questions):
                by_len[len(self.tokenizer(q)["input_ids"])].append(i)
            groups = list(by_len.values())
        return [(idx, dict(self.processor(images=[pil[i] for i in idx], text=[questions[i] for i in idx],
                                          padding=True, truncation=self.classifier, return_tensors="pt")))
                for idx in groups]

    def _forward(self, requests: Sequence[Any], inputs: Any) -> list[Any]:
        import torch

        answers: list[Any] = [""] * len(requests)
        with torch.inference_mode():
            for idx, tensors in inputs:
                tensors = self.to_device(tensors)
                if self.classifier:
                    logits = self.model(**tensors).logits
                    logp = torch.log_softmax(logits.float(), dim=-1).double().cpu()
                    for row, i in enumerate(idx):
                        req = requests[i]
                        if isinstance(req, ScoreRequest):
                            answers[i] = [(float(logp[row, self.answer_ids[normalise_answer(c)]]), 1)
                                          for c in req.continuations]
                        else:
                            answers[i] = self.model.config.id2label[int(logits[row].argmax())]
                    continue
                out = self.model.generate(**tensors, **self.generation_kwargs(requests[idx[0]].generation))
                texts = [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
                for i, text in zip(idx, texts):
                    answers[i] = text
        return answers
