"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, as pycocoevalcap computes them)
as a Hugging Face ``evaluate`` module.

A thin wrapper over :func:`mmbench.metrics.caption.score_captions` (PTB tokenisation, then the
official scorers), loaded offline from this folder::

    import evaluate
    from mmbench.integrations import evaluate_module_path

    coco = evaluate.load(evaluate_module_path("coco-caption"))
    coco.compute(predictions=["a red square"], references=[["a red square", "a red block"]], meteor=False)
    # {"BLEU-1": ..., "BLEU-4": ..., "ROUGE-L": ..., "CIDEr-D": ...}

Values are on pycocoevalcap's scales (0-1; CIDEr-D 0-10).  CIDEr-D's document frequencies come
from the references passed in one call, so score a whole evaluation set at once.  ``meteor``:
None runs METEOR when Java is available, False skips it; SPICE is never run here.
"""

import datasets
import evaluate

from mmbench.metrics.caption import score_captions

_DESCRIPTION = ("COCO caption evaluation (PTB tokenizer, BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D) with the "
                "pycocoevalcap definitions; computed by mmbench.metrics.caption.")
_CITATION = """@article{chen2015microsoft, title={Microsoft COCO Captions: Data Collection and Evaluation Server},
author={Chen, Xinlei and Fang, Hao and Lin, Tsung-Yi and Vedantam, Ramakrishna and Gupta, Saurabh and
Doll{\\'a}r, Piotr and Zitnick, C. Lawrence}, journal={arXiv:1504.00325}, year={2015}}"""
_KWARGS = """
Args:
    predictions: one caption per image.
    references: a list of reference captions per image.
    meteor: None (default: METEOR iff Java is available), True (required) or False (skipped).
    tokenizer: "ptb" (pure Python, the PTB tokenizer's output) or "ptb-java" (the official jar).
Returns:
    BLEU-1..BLEU-4, ROUGE-L, CIDEr-D and (when run) METEOR.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class CocoCaption(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}),
            reference_urls=["https://github.com/tylin/coco-caption"])

    def _compute(self, predictions, references, meteor=None, tokenizer="ptb"):
        values = score_captions(list(predictions), [list(r) for r in references], tokenizer=tokenizer,
                                meteor=meteor, spice=False)
        return dict(values.corpus)
