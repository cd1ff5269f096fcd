"""Image-text matching heads: BLIP ``BlipForImageTextRetrieval`` (Salesforce/blip-itm-*).

Serves :class:`~mmbench.types.ScoreRequest` only: for each continuation the text
``(prompt or "") + continuation`` is encoded with the image by BLIP's image-grounded text
encoder and the ITM head's softmax gives ``P(match)``; the answer is ``(log P(match), 1)``
(one "token"), so ``exp`` of the sum is the match probability.  Texts are padded with an
attention mask (a bidirectional encoder pools ``[CLS]``; padding is masked), so batch size
changes a score only by float noise.  The processor is used as in the model card
(``processor(images=image, text=text)``).
"""

from __future__ import annotations

from typing import Any, Sequence

from mmbench.errors import ModelLoadError
from mmbench.models.hf import HFAdapter
from mmbench.models.likelihood import expand_rows, regroup
from mmbench.types import ScoreRequest


class HFImageTextMatching(HFAdapter):
    adapter = "hf-itm"
    capabilities = frozenset({"score"})
    auto_class = "BlipForImageTextRetrieval"

    def _after_load(self) -> None:
        if not hasattr(self.model, "itm_head"):
            raise ModelLoadError(f"{self.path!r} ({type(self.model).__name__}) has no image-text matching head "
                                 "(itm_head): use a BlipForImageTextRetrieval checkpoint")

    def _preprocess(self, requests: Sequence[ScoreRequest], images: Sequence[list[Any]]) -> Any:
        rows = expand_rows(requests, images)
        texts = [(c or "") + t for c, t in zip(rows.context, rows.continuation)]
        tensors = dict(self.processor(images=[imgs[0] for imgs in rows.images], text=texts, padding=True,
                                      truncation=True, return_tensors="pt"))
        return rows, tensors

    def _forward(self, requests: Sequence[ScoreRequest], inputs: Any) -> list[Any]:
        import torch

        rows, tensors = inputs
        with torch.inference_mode():
            logits = self.model(**self.to_device(tensors), use_itm_head=True).itm_score
            log_match = torch.log_softmax(logits.float(), dim=-1)[:, 1].double().cpu()
        return regroup(len(requests), rows.owner, [(float(v), 1) for v in log_match])
