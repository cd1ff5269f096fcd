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

    def model_class(self, config: Any) -> Any:
        import transformers

        archs = getattr(config, "architectures", None) or []
        for arch in archs:
            if hasattr(transformers, arch):
                self.classifier = "Vilt" in arch or not hasattr(getattr(transformers, arch), "generate")
                return getattr(transformers, arch)
        self.classifier = config.model_type == "vilt"
        return transformers.AutoModelForVisualQuestionAnswering

    def _question(self, req: GenerateRequest) -> str:
        text = req.question if req.question is not None else req.prompt
        if not text:
            raise MMBenchError(f"sample {req.id!r}: a VQA head needs a question")
        return text

    def _generate_batch(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> list[str]:
        questions = [self._question(r) for r in requests]
        pil = [imgs[0] for imgs in images]
        if self.classifier:
            return self._classify(questions, pil)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, q in enumerate(questions):
            groups[len(self.tokenizer(q)["input_ids"])].append(i)
        answers: list[str] = [""] * len(questions)
        for idx in groups.values():
            for i, text in zip(idx, self._generate([questions[i] for i in idx], [pil[i] for i in idx],
                                                   requests[0].generation)):
                answers[i] = text
        return answers

    def _generate(self, questions: list[str], images: list[Any], gen: Any) -> list[str]:
        import torch

        with torch.inference_mode():
            inputs = self.processor(images=images, text=questions, padding=True, return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items() if hasattr(v, "to")}
            inputs["pixel_values"] = inputs["pixel_values"].to(self.torch_dtype)
            out = self.model.generate(**inputs, max_new_tokens=gen.max_new_tokens, num_beams=gen.num_beams,
                                      do_sample=gen.do_sample)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _classify(self, questions: list[str], images: list[Any]) -> list[str]:
        import torch

        with torch.inference_mode():
            inputs = self.processor(images=images, text=questions, padding=True, truncation=True,
                                    return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items() if hasattr(v, "to")}
            inputs["pixel_values"] = inputs["pixel_values"].to(self.torch_dtype)
            logits = self.model(**inputs).logits
        id2label = self.model.config.id2label
        return [id2label[int(i)] for i in logits.argmax(-1).tolist()]
