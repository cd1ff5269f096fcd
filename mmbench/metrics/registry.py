"""The metric registry: names -> :class:`~mmbench.metrics.spec.MetricSpec`.

Built-in metrics are lazy import strings of the spec objects that live next to their
functions; third parties add theirs through the ``mmbench.metrics`` entry-point group,
pointing at a ``MetricSpec`` (full power: per-sample fields, images, directions) or at a
bare function (its outputs are then reported but never ranked).
"""

from __future__ import annotations

from mmbench.errors import MMBenchError
from mmbench.metrics.spec import MetricSpec, plain_function_spec
from mmbench.registry import Registry

METRICS = Registry("metric", "mmbench.metrics")
for _name, _target in (
    ("coco-caption", "mmbench.metrics.caption:COCO_CAPTION"),
    ("vqa-accuracy", "mmbench.metrics.vqa:VQA_ACCURACY"),
    ("exact-match", "mmbench.metrics.vqa:EXACT_MATCH"),
    ("multiple-choice", "mmbench.metrics.choice:MULTIPLE_CHOICE"),
    ("multiple-choice-mmmu", "mmbench.metrics.choice:MULTIPLE_CHOICE_MMMU"),
    ("pope", "mmbench.metrics.pope:POPE"),
    ("anls", "mmbench.metrics.anls:ANLS"),
    ("relaxed-accuracy", "mmbench.metrics.relaxed:RELAXED_ACCURACY"),
    ("gqa-accuracy", "mmbench.metrics.gqa:GQA_ACCURACY"),
    ("answer-consistency", "mmbench.metrics.consistency:ANSWER_CONSISTENCY"),
    ("clipscore", "mmbench.metrics.clipscore:CLIPSCORE"),
    ("pac-s", "mmbench.metrics.pacscore:PAC_S"),
    ("vqascore", "mmbench.metrics.vqascore:VQASCORE"),
    ("itm-score", "mmbench.metrics.vqascore:ITM_SCORE"),
    ("retrieval-recall", "mmbench.metrics.retrieval:RETRIEVAL_RECALL"),
    ("zeroshot-classification", "mmbench.metrics.zeroshot:ZEROSHOT_CLASSIFICATION"),
    ("winoground", "mmbench.metrics.compositionality:WINOGROUND"),
    ("caption-choice", "mmbench.metrics.compositionality:CAPTION_CHOICE"),
):
    METRICS.register(_name, _target)


def metric_spec(name: str) -> MetricSpec:
    """The spec registered as ``name`` (an unknown name lists the close ones)."""
    entry = METRICS.entry(name)
    obj = entry.load()
    if isinstance(obj, MetricSpec):
        if obj.name != name:
            raise MMBenchError(f"metric {name!r} ({entry.source}) points at the spec of {obj.name!r}")
        return obj
    if callable(obj):
        return plain_function_spec(name, obj, entry.source)
    raise MMBenchError(f"metric {name!r} ({entry.source}) is neither a MetricSpec nor a function: {obj!r}")


def describe(name: str) -> str:
    """One line for ``mmbench list metrics`` (loads the spec: metric modules import no model code)."""
    try:
        return metric_spec(name).description
    except MMBenchError as exc:
        return f"unavailable: {exc}"
