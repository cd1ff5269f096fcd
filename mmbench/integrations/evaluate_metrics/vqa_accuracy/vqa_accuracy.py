"""VQA accuracy (the official VQA v2 rules) as a Hugging Face ``evaluate`` module.

A thin wrapper over :func:`mmbench.metrics.vqa.score_vqa`, loaded offline from this folder::

    import evaluate
    from mmbench.integrations import evaluate_module_path

    vqa = evaluate.load(evaluate_module_path("vqa-accuracy"))
    vqa.compute(predictions=["yes", "2"], references=[["yes"] * 10, ["2", "two"] + ["3"] * 8])
    # {"accuracy": 0.8333..., ...}: min(1, #humans that gave the answer / 3), averaged over the
    # 10-choose-9 subsets of the human answers, then over questions

``references``: the human answers of each question (10 in VQA v2).  Returns ``score_vqa``'s
corpus values: ``accuracy`` (0-1) and, with ``answer_types``, ``accuracy/<type>``.
"""

import datasets
import evaluate

from mmbench.metrics.vqa import score_vqa

_DESCRIPTION = "VQA accuracy (VQA v2 official evaluation rules: answer normalisation, min(1, matches/3) "
_DESCRIPTION += "averaged over the 10 leave-one-out subsets of the human answers). Computed by mmbench.metrics.vqa."
_CITATION = """@inproceedings{antol2015vqa, title={VQA: Visual Question Answering}, author={Antol, Stanislaw and
Agrawal, Aishwarya and Lu, Jiasen and Mitchell, Margaret and Batra, Dhruv and Zitnick, C. Lawrence and Parikh, Devi},
booktitle={ICCV}, year={2015}}"""
_KWARGS = """
Args:
    predictions: one answer string per question.
    references: a list of the human answer strings per question.
    answer_types: optional, one answer type per question ("yes/no", "number", "other").
Returns:
    accuracy: the mean per-question VQA accuracy (0-1); accuracy/<answer type> per type given.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class VqaAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}),
            reference_urls=["https://visualqa.org/evaluation.html"])

    def _compute(self, predictions, references, answer_types=None):
        return dict(score_vqa(list(predictions), [list(r) for r in references], answer_types=answer_types).corpus)
