"""Text-to-image: a prompt in, an image out, scored for prompt-image consistency.

Columns (``columns:`` maps them to dataset columns): ``id`` (see
:meth:`~mmbench.tasks.base.Task.sample_id`), ``prompt`` (a non-empty string) and, optionally,
``category`` (a string: per-category breakdowns ``<metric>/<category>``, as PartiPrompts'
``Category``).  The task file's ``prompt:`` may wrap the data's prompt (``"{prompt}, a photo"``);
without one the data's prompt goes to the model as it is.

Each sample asks for one image (:class:`~mmbench.types.GenerateImageRequest`, seeded by the runner
from ``--seed`` and the sample id).  The images are written to ``images/<task>/<id>.png`` in the
run folder, and the predictions file names that file per sample (``prediction``) beside its prompt
(``meta.prompt``), so the images can be re-scored from the file alone.

Scoring: the task's metrics are the consistency metrics of captions, used the other way round:
the prompt is the "caption", the generated image its image (``clipscore``: CLIPScore of the image
against the prompt with the task's ``scorer``; ``vqascore``: P("yes") that the image shows the
prompt, from a model with the score capability).  A sample whose image could not be generated
scores 0 on every metric (the floor of CLIPScore and VQAScore), so a model that fails more
never scores higher; failures are counted in ``n_failed`` and in a warning.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmbench.errors import DataError
from mmbench.metrics.dispatch import compute_metrics, describe_outputs
from mmbench.metrics.spec import Output
from mmbench.tasks.base import Task
from mmbench.types import GenerateImageRequest, ImageRef, MetricValues, Sample

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def image_file_name(sample_id: str) -> str:
    """The file name of a sample's image: ``<id>.png`` when the id is a plain name, else
    ``id-<sha256 of the id, 16 hex>.png`` (an id with ``/`` or spaces never makes a path)."""
    if _SAFE_ID.match(sample_id):
        return f"{sample_id}.png"
    return f"id-{hashlib.sha256(sample_id.encode('utf-8')).hexdigest()[:16]}.png"


@dataclass(frozen=True)
class GeneratedImage:
    """A sample's prediction: its PNG bytes and the run-folder path they are written to."""

    sample_id: str
    png: bytes
    path: str


class TextToImageTask(Task):
    family = "text-to-image"
    needs = "generate_image"
    fields = ("id", "prompt", "category")
    prompt_fields = ("prompt",)

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        prompt = self.value(row, "prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            what = "missing" if prompt is None else f"{type(prompt).__name__} {prompt!r}"
            return Sample(id=sid, error=str(DataError(f"the prompt must be a non-empty string, got {what}",
                                                      sample_id=sid, field=self.column("prompt"))))
        meta: dict[str, Any] = {"prompt": prompt}  # in every predictions line: images re-score from the file
        if "category" in self.config.dataset.columns:
            category = self.value(row, "category")
            if not isinstance(category, str) or not category.strip():
                return Sample(id=sid, text=prompt, error=str(DataError(
                    f"the category must be a non-empty string, got {category!r}", sample_id=sid,
                    field=self.column("category"))))
            meta["category"] = category.strip()
        return Sample(id=sid, text=prompt, meta=meta)

    def build_requests(self, sample: Sample, model_name: str | None) -> Sequence[Any]:
        template = self.prompt_for(model_name)
        prompt = template.format(prompt=sample.text) if template else sample.text
        return [GenerateImageRequest(id=sample.id, prompt=prompt)]

    def collect(self, sample: Sample, outputs: Sequence[Any]) -> GeneratedImage:
        return GeneratedImage(sample.id, outputs[0], f"images/{self.name}/{image_file_name(sample.id)}")

    def record_prediction(self, prediction: Any) -> Any:
        return prediction.path if isinstance(prediction, GeneratedImage) else prediction

    def write_artifacts(self, out_dir: Any, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[str]:
        folder = Path(out_dir) / "images" / self.name
        folder.mkdir(parents=True, exist_ok=True)
        for pred in predictions:
            if isinstance(pred, GeneratedImage):
                (Path(out_dir) / pred.path).write_bytes(pred.png)
        return [f"images/{self.name}/"]

    # -- scoring ------------------------------------------------------------
    def score(self, samples: Sequence[Sample], predictions: Sequence[Any],
              options: Mapping[str, Any]) -> MetricValues:
        """Each metric scores (prompt, generated image) pairs; failed samples score 0 and the
        corpus value is the mean over every sample with a usable row; ``<key>/<category>``
        means per category."""
        keep = [i for i, s in enumerate(samples) if s.error is None]
        done = [i for i in keep if isinstance(predictions[i], GeneratedImage)]
        pairs = [Sample(id=samples[i].id, images=(ImageRef(data=predictions[i].png),)) for i in done]
        values = (compute_metrics(self.metrics, pairs, [samples[i].text for i in done], options) if pairs
                  else MetricValues(corpus={}))
        per_sample: list[dict[str, float]] = [{} for _ in samples]
        for i, scores in zip(done, values.per_sample):
            per_sample[i] = dict(scores)
        keys = [k for k in values.corpus if any(k in per_sample[i] for i in done)]
        failed = [i for i in keep if i not in set(done)]
        for i in failed:
            per_sample[i] = {k: 0.0 for k in keys}
        corpus = dict(values.corpus)
        for key in keys:
            corpus[key] = sum(per_sample[i][key] for i in keep) / len(keep)
        categories: dict[str, list[int]] = {}
        for i in keep:
            if "category" in samples[i].meta:
                categories.setdefault(samples[i].meta["category"], []).append(i)
        for key in keys:
            for category, members in sorted(categories.items()):
                corpus[f"{key}/{category}"] = sum(per_sample[i][key] for i in members) / len(members)
        warnings = list(values.warnings)
        if failed and keys:
            warnings.append(f"{len(failed)} of {len(keep)} prompts got no image; each scores 0 on "
                            f"{', '.join(keys)}")
        return MetricValues(corpus=corpus, per_sample=tuple(per_sample), unavailable=values.unavailable,
                            backend=values.backend, warnings=tuple(warnings))

    def describe_outputs(self, keys: Sequence[str]) -> tuple[dict[str, dict[str, Any]], str | None, list[str]]:
        """As every family, plus ``<output>/<category>``: the metric output's direction, a mean."""
        specs = [spec for spec, _ in self.metrics]
        per_category = tuple(Output(f"{o.key}/*", o.higher_is_better, "mean") for spec in specs
                             for o in spec.outputs if not any(c in o.key for c in "*?["))
        return describe_outputs(specs, keys, per_category, owner=self.family)
