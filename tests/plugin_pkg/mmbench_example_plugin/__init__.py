"""An example mmbench plugin: a model adapter, a metric and a folder of tasks."""

import time
from pathlib import Path

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.models.base import ModelAdapter
from mmbench.types import MetricValues

TASK_DIR = str(Path(__file__).parent / "tasks")


class EchoCaptioner(ModelAdapter):
    """Captions every image with its width and height (a model with no weights).

    Test knobs: ``delay`` seconds of sleep per batch, and ``log``, a file to which the id of
    every sample it computes is appended (to check what a resumed run recomputes).
    """

    adapter = "example-echo"

    def __init__(self, name, delay=0.0, log=None, **kwargs):
        super().__init__(name, device="cpu")
        self.delay, self.log = float(delay), log

    def _generate_batch(self, requests, images):
        if self.delay:
            time.sleep(self.delay)
        if self.log:
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{r.id}\n" for r in requests))
        return [f"an image of {imgs[0].width} by {imgs[0].height} pixels" for imgs in images]


def mean_length(predictions, references, **options):
    """Mean number of whitespace tokens per prediction (a bare function: its outputs are reported, never ranked)."""
    lengths = [float(len(p.split())) for p in predictions]
    return MetricValues(corpus={"mean_length": sum(lengths) / len(lengths)},
                        per_sample=tuple({"length": n} for n in lengths))


def length_by_type(predictions, references, *, answer_types, unit="token"):
    """Mean answer length, overall and per answer type (a per-sample meta field the spec asks for)."""
    if unit not in ("token", "char"):
        raise ValueError(f"unit must be 'token' or 'char', not {unit!r}")
    lengths = [float(len(p.split()) if unit == "token" else len(p)) for p in predictions]
    corpus = {"mean_length": sum(lengths) / len(lengths)}
    for kind in sorted({t for t in answer_types if t is not None}):
        mine = [n for n, t in zip(lengths, answer_types) if t == kind]
        corpus[f"mean_length/{kind}"] = sum(mine) / len(mine)
    return MetricValues(corpus=corpus, per_sample=tuple({"mean_length": n} for n in lengths))


#: a full spec: shorter answers rank higher, and the metric gets each sample's answer type
EXAMPLE_LENGTH = MetricSpec(
    name="example-length", fn=length_by_type, version="1", primary="mean_length",
    description="mean answer length, overall and per answer type (example plugin; shorter is better)",
    outputs=(Output("mean_length", higher_is_better=False),
             Output("mean_length/*", higher_is_better=False, per_sample=False)),
    sample_fields={"answer_types": "answer_type"})
