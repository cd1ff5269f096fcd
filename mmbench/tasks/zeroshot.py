"""Zero-shot classification: an image and a set of class names in, the most likely class out.

Columns (``columns:`` maps them): ``id``, ``image`` (one column, or a comma-separated list
of alternatives such as ``"webp,png,jpg"`` for CLIP_benchmark's webdataset shards: the
first the data has), ``label`` (the true class: an index into the class names, as an int
or a digit string such as the shards' ``cls``, or the class name itself).

Family options (``metric_options:``):

* ``classnames``: the class names, a list or the name of a built-in set (``imagenet1k``,
  ``cifar10``, ``cifar100``, ``pets``, ``flowers``, ``eurosat``: CLIP_benchmark's, stored in
  ``mmbench/tasks/datasets/zeroshot_prompts.json``);
* ``templates``: prompt templates with ``{c}`` for the class name, a list or a built-in set's
  name (default: the set named by ``classnames``, else ``imagenet1k``'s 80 templates);
* ``method``: ``similarity`` (default; dual encoders: :class:`EmbedRequest`) or
  ``likelihood`` (generative models: :class:`ScoreRequest`).

**Similarity** (as CLIP_benchmark): every template x class prompt is embedded once; the
classifier row of a class is the normalised mean of its normalised template embeddings
(:func:`mmbench.metrics.zeroshot.zeroshot_classifier`); an image's scores are its cosine
similarities with the rows.  The prompts are requested once per task, with the first
sample that has no row error (request ids ``<id>#class<c>.<t>``): if that sample fails,
nothing can be scored and the metrics are unavailable with the reason.

**Likelihood**: each image asks the model for the log-likelihood of every prompt
(one :class:`ScoreRequest`, continuations = the prompts, no prefix); a class scores the
mean over its templates of the prompt's summed token log-probabilities.  Ranking is then
as for similarity (:mod:`mmbench.metrics.zeroshot`, pessimistic ties).

Run files: ``predictions/<task>.image_embeddings.npy`` and ``.class_embeddings.npy`` (the
classifier, one row per class), or ``.class_scores.npy`` (likelihood: images x classes);
``.labels.json`` (true class per row), ``.classnames.json`` and ``.image_ids.json``:
``mmbench score zeroshot`` re-scores them without the model.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmbench.errors import DataError, MMBenchError
from mmbench.io import atomic_write_json
from mmbench.metrics.dispatch import compute_metrics
from mmbench.metrics.zeroshot import class_logits, zeroshot_classifier
from mmbench.tasks.base import Task
from mmbench.types import EmbedRequest, MetricValues, Sample

METRIC = "zeroshot-classification"
METHODS = ("similarity", "likelihood")
PROMPTS_FILE = Path(__file__).resolve().parent / "datasets" / "zeroshot_prompts.json"


@lru_cache(maxsize=1)
def builtin_prompts() -> dict[str, dict[str, list[str]]]:
    """``{"classnames": {set: [...]}, "templates": {set: [...]}}`` (CLIP_benchmark's, see the file's ``source``)."""
    return json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))


def _score_request_type() -> Any:
    from mmbench import types

    cls = getattr(types, "ScoreRequest", None)
    if cls is None:
        raise MMBenchError("method: likelihood needs ScoreRequest, which this mmbench does not have")
    return cls


class ZeroShotTask(Task):
    family = "zeroshot"
    needs = "embed"
    fields = ("id", "image", "label")
    prompt_fields = ()
    family_options = ("classnames", "templates", "method")

    def __init__(self, config: Any):
        super().__init__(config)
        if list(config.metrics) != [METRIC]:
            raise MMBenchError(f"task {config.name}: zero-shot tasks are scored with metrics: [{METRIC}], "
                               f"got {list(config.metrics)}")
        where = config.where("metric_options")
        options = config.metric_options
        self.method = options.get("method", "similarity")
        if self.method not in METHODS:
            raise DataError(f"method must be one of {list(METHODS)}, got {self.method!r}", source=where,
                            field="metric_options.method")
        self.needs = "embed" if self.method == "similarity" else "score"
        self.classnames = self._named_list(options.get("classnames"), "classnames", where)
        default_templates = options.get("classnames") if isinstance(options.get("classnames"), str) else None
        if default_templates not in builtin_prompts()["templates"]:
            default_templates = "imagenet1k"
        self.templates = self._named_list(options.get("templates", default_templates), "templates", where)
        for t in self.templates:
            try:
                t.format(c="x")
            except (KeyError, IndexError, ValueError):
                raise DataError(f"template {t!r} must use only {{c}} (the class name)", source=where,
                                field="metric_options.templates") from None
            if "{c}" not in t:
                raise DataError(f"template {t!r} does not contain {{c}}", source=where,
                                field="metric_options.templates")
        # a repeated name (ImageNet's two "missile" classes) is fine for index labels; a name label
        # must name one class
        self._index = {c: i for i, c in enumerate(self.classnames) if self.classnames.count(c) == 1}
        self._carrier: str | None = None

    @staticmethod
    def _named_list(value: Any, key: str, where: str) -> list[str]:
        sets = builtin_prompts()[key]
        if isinstance(value, str):
            if value not in sets:
                raise DataError(f"unknown built-in {key} set {value!r} (known: {', '.join(sorted(sets))})",
                                source=where, field=f"metric_options.{key}")
            return list(sets[value])
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
            raise DataError(f"{key} must be a non-empty list of strings or a built-in set name, got {value!r}",
                            source=where, field=f"metric_options.{key}")
        return list(value)

    @property
    def prompts(self) -> list[list[str]]:
        """``prompts[c][t]``: template t filled with class c's name."""
        return [[t.format(c=name) for t in self.templates] for name in self.classnames]

    # -- data ---------------------------------------------------------------
    def _image_columns(self) -> list[str]:
        return [c.strip() for c in self.column("image").split(",")]

    def check_columns(self, row: Mapping[str, Any]) -> None:
        """As the base class, except that one of several ``image`` alternatives is enough."""
        alternatives = self._image_columns()
        if len(alternatives) > 1 and any(c in row for c in alternatives):
            row = {**row, **{c: None for c in alternatives if c not in row}}
        super().check_columns(row)

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        try:
            present = next((c for c in self._image_columns() if row.get(c) is not None), None)
            if present is None:
                raise DataError("missing image", sample_id=sid, field=self.column("image"))
            try:
                image = self.image_ref(row[present], row.get("__base_dir__"))
            except ValueError as exc:
                raise DataError(str(exc), sample_id=sid, field=present) from None
            label = self._label(self.value(row, "label"), sid)
        except DataError as exc:
            return Sample(id=sid, error=str(exc))
        return Sample(id=sid, images=(image,), references=(self.classnames[label],), meta={"label": label})

    def _label(self, value: Any, sid: str) -> int:
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= value < len(self.classnames):
                raise DataError(f"label {value} is not a class index (0..{len(self.classnames) - 1})",
                                sample_id=sid, field=self.column("label"))
            return int(value)
        if isinstance(value, str) and value in self._index:
            return self._index[value]
        if isinstance(value, str) and value in self.classnames:
            raise DataError(f"label {value!r} names several classes: give the class index", sample_id=sid,
                            field=self.column("label"))
        raise DataError(f"label {value!r} is neither a class index nor one of the class names", sample_id=sid,
                        field=self.column("label"))

    def load_samples(self, limit: int | None = None) -> list[Sample]:
        samples = super().load_samples(limit)
        self._carrier = next((s.id for s in samples if s.error is None), None)
        return samples

    # -- requests -----------------------------------------------------------
    def build_requests(self, sample: Sample, model_name: str | None) -> list[Any]:
        if self.method == "likelihood":
            flat = tuple(p for per_class in self.prompts for p in per_class)
            return [_score_request_type()(id=f"{sample.id}#classes", images=sample.images, continuations=flat)]
        requests: list[Any] = [EmbedRequest(id=f"{sample.id}#image", images=sample.images)]
        if self._carrier is None:  # samples not loaded through load_samples: the first one asked carries them
            self._carrier = sample.id
        if sample.id == self._carrier:
            requests += [EmbedRequest(id=f"{sample.id}#class{c}.{t}", text=prompt)
                         for c, per_class in enumerate(self.prompts) for t, prompt in enumerate(per_class)]
        return requests

    def collect(self, sample: Sample, outputs: Sequence[Any]) -> dict[str, Any]:
        if self.method == "likelihood":
            return {"scores": outputs[0]}
        return {"image": outputs[0], "classes": list(outputs[1:]) or None}

    def record_prediction(self, prediction: Any) -> None:
        return None  # embeddings and class scores are written as .npy artifacts

    # -- scoring ------------------------------------------------------------
    def class_scores(self, samples: Sequence[Sample], predictions: Sequence[Any]
                     ) -> tuple[list[Any], np.ndarray | None, str | None]:
        """Per-sample class scores (None where failed), the classifier (similarity) and, when nothing
        can be scored, why."""
        n_c, n_t = len(self.classnames), len(self.templates)
        if self.method == "likelihood":
            out = []
            for p in predictions:
                if p is None:
                    out.append(None)
                    continue
                totals = np.array([float(total) for total, _ in p["scores"]]).reshape(n_c, n_t)
                out.append(totals.mean(axis=1))
            return out, None, None
        carrier = next((p for p in predictions if p is not None and p.get("classes")), None)
        if carrier is None:
            return [None] * len(predictions), None, (
                f"the class prompts ({n_c} classes x {n_t} templates) could not be embedded: they are requested "
                f"with sample {self._carrier!r}, which failed")
        emb = np.stack([np.asarray(v, dtype=np.float32) for v in carrier["classes"]]).reshape(n_c, n_t, -1)
        classifier = zeroshot_classifier(emb)
        out = [None if p is None else class_logits(np.asarray(p["image"], dtype=np.float32)[None, :],
                                                   classifier)[0] for p in predictions]
        return out, classifier, None

    def score(self, samples: Sequence[Sample], predictions: Sequence[Any],
              options: Mapping[str, Any]) -> MetricValues:
        scores, _, why = self.class_scores(samples, predictions)
        if why is not None:
            keys = ["acc1", "acc5", "mean_per_class_recall"]
            return MetricValues(corpus={}, per_sample=tuple({} for _ in samples), unavailable=dict.fromkeys(keys, why))
        return compute_metrics(self.metrics, samples, scores, options)

    def write_artifacts(self, out_dir: Any, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[str]:
        scores, classifier, _ = self.class_scores(samples, predictions)
        ok = [i for i, s in enumerate(samples) if s.error is None and scores[i] is not None]
        if not ok:
            return []
        stem = f"predictions/{self.name}"
        arrays = {}
        if self.method == "similarity":
            arrays[f"{stem}.image_embeddings.npy"] = np.stack(
                [np.asarray(predictions[i]["image"], dtype=np.float32) for i in ok])
            arrays[f"{stem}.class_embeddings.npy"] = np.asarray(classifier, dtype=np.float32)
        else:
            arrays[f"{stem}.class_scores.npy"] = np.stack([scores[i] for i in ok])
        for rel, array in arrays.items():
            path = Path(out_dir) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, array)
            tmp.replace(path)
        lists = {f"{stem}.labels.json": [int(samples[i].meta["label"]) for i in ok],
                 f"{stem}.classnames.json": self.classnames,
                 f"{stem}.image_ids.json": [samples[i].id for i in ok]}
        for rel, value in lists.items():
            atomic_write_json(Path(out_dir) / rel, value)
        return [*arrays, *lists]
