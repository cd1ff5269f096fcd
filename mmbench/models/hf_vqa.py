"""VQA heads: BLIP-VQA (generates an answer) and ViLT (classifies over its answer vocabulary).

Both take the bare question (``GenerateRequest.question``), not an instruction
prompt.  BLIP's ``generate`` ignores the question's attention mask (it builds a
mask of ones), so padding would change answers; this adapter therefore batches
BLIP questions only with questions of the same token length, which keeps
answers identical at any batch size.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from mmbench.errors import MMBenchError
from mmbench.models.hf import HFAdapter
from mmbench.types import GenerateRequest


class HFVQAModel(HFAdapter):
    adapter = "hf-vqa"

    auto_class = "AutoModelForVisualQuestionAnswering"

    def model_class(self, config: Any) -> Any:
        cls = super().model_class(config)
        # ViLT classifies over its answer vocabulary (config.id2label); BLIP-VQA generates
        self.classifier = config.model_type == "vilt" or cls.__name__.startswith("Vilt")
        return cls

    def _question(self, req: GenerateRequest) -> str:
        text = req.question if req.question is not None else req.prompt
        if not text:
            raise MMBenchError(f"sample {req.id!r}: a VQA head needs a question")
        return text

    def _preprocess(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> Any:
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

    def _forward(self, requests: Sequence[GenerateRequest], inputs: Any) -> list[str]:
        import torch

        answers: list[str] = [""] * len(requests)
        with torch.inference_mode():
            for idx, tensors in inputs:
                tensors = self.to_device(tensors)
                if self.classifier:
                    labels = self.model(**tensors).logits.argmax(-1).tolist()
                    texts = [self.model.config.id2label[int(i)] for i in labels]
                else:
                    out = self.model.generate(**tensors, **self.generation_kwargs(requests[0].generation))
                    texts = [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
                for i, text in zip(idx, texts):
                    answers[i] = text
        return answers
