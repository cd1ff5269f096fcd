"""The task contract: dataset rows -> samples -> requests; outputs -> scores.

A task never imports a model.  The runner hands it the model's *name* (for a
per-model prompt override) and the model's outputs as plain strings.
Subclasses implement :meth:`Task.row_to_sample` and :meth:`Task.score`; the rest
is shared.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from mmbench.data import content_hash, load_rows
from mmbench.errors import DataError
from mmbench.tasks.config import TaskConfig
from mmbench.types import GenerateRequest, MetricValues, Sample


def text_hash(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Task:
    """Base class for task families.  ``family`` names the family in results and leaderboards."""

    family = "base"
    #: what the model must be able to do: "generate" (text) or "embed" (vectors)
    needs = "generate"
    #: names of the ``Sample`` fields a row must provide, for error messages
    required_columns: tuple[str, ...] = ("id",)

    def __init__(self, config: TaskConfig):
        self.config = config
        self._provenance: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def provenance(self) -> dict[str, Any]:
        """Where the loaded data came from (set by :meth:`load_samples`)."""
        return dict(self._provenance)

    @property
    def description(self) -> str:
        return self.config.description

    # -- data ---------------------------------------------------------------
    def column(self, field: str) -> str:
        """The dataset column that holds ``field`` (the task file's ``columns:`` mapping)."""
        return self.config.dataset.columns.get(field, field)

    def value(self, row: Mapping[str, Any], field: str) -> Any:
        """The row's value for ``field``.  A mapping like ``image: "{filepath}/{filename}"`` builds a
        string from several columns (a missing column gives None)."""
        col = self.column(field)
        if "{" in col:
            try:
                return col.format_map({k: v for k, v in row.items() if not k.startswith("__")})
            except (KeyError, IndexError, ValueError):
                return None
        return row.get(col)

    def load_samples(self, limit: int | None = None) -> list[Sample]:
        """Load rows and convert them; a bad row becomes a Sample with ``error`` set (never dropped)."""
        rows, self._provenance = load_rows(self.config.dataset)
        if limit is not None:
            rows = rows[:limit]
        samples = []
        seen: dict[str, int] = {}
        for index, row in enumerate(rows):
            sample = self.row_to_sample(index, row)
            if sample.id in seen:
                raise DataError(f"duplicate sample id (rows {seen[sample.id]} and {index})",
                                source=f"task {self.name}", sample_id=sample.id, field=self.column("id"))
            seen[sample.id] = index
            samples.append(sample)
        return samples

    def sample_id(self, index: int, row: Mapping[str, Any]) -> str:
        mapped = self.config.dataset.columns.get("id")
        for col in ([mapped] if mapped else ["id", "image_id", "question_id"]):
            if row.get(col) is not None:
                return str(row[col])
        return str(index)

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- prompting ----------------------------------------------------------
    def prompt_for(self, model_name: str | None) -> str | None:
        overrides = self.config.prompt_overrides
        if model_name and model_name in overrides:
            return overrides[model_name]
        return self.config.prompt

    def build_request(self, sample: Sample, model_name: str | None) -> GenerateRequest:
        return GenerateRequest(id=sample.id, images=sample.images, prompt=self.prompt_for(model_name),
                               generation=self.config.generation)

    def build_requests(self, sample: Sample, model_name: str | None) -> Sequence[Any]:
        """Every request a sample needs (request ids unique within the task).  Default: one
        :class:`GenerateRequest` with the sample's id."""
        return [self.build_request(sample, model_name)]

    def parse_output(self, text: str) -> str:
        """Turn a raw model output into the prediction that is scored (task-owned post-processing)."""
        return text.strip()

    def collect(self, sample: Sample, outputs: Sequence[Any]) -> Any:
        """The sample's prediction from the outputs of its requests (in ``build_requests`` order)."""
        return self.parse_output(outputs[0])

    def record_prediction(self, prediction: Any) -> Any:
        """What ``predictions/<task>.jsonl`` stores as the sample's prediction (JSON-serialisable)."""
        return prediction

    def write_artifacts(self, out_dir: Any, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[str]:
        """Write extra run files (embeddings, ...); return their paths relative to ``out_dir``."""
        return []

    # -- scoring ------------------------------------------------------------
    def score(self, samples: Sequence[Sample], predictions: Sequence[str | None],
              options: Mapping[str, Any]) -> MetricValues:
        """Run the task's metrics over the scorable samples.

        A sample with a row error has nothing to score against and is left out; a sample
        whose prediction is None (it failed) is scored as an empty prediction, so the
        scored set never depends on what failed.  Each metric is called as
        ``fn(predictions, references, **kwargs)``; its registry entry may ask for
        per-sample meta fields (``sample_fields={"kwarg": "meta_key"}``) and for run
        options (``run_options=("tokenizer", ...)``), and for the samples' images
        (``needs_images=True``: one image reference per scored sample, as ``images=``).
        """
        from mmbench.catalog import METRICS

        keep = [i for i, s in enumerate(samples) if s.error is None]
        preds = ["" if predictions[i] is None else predictions[i] for i in keep]
        refs = [list(samples[i].references) for i in keep]
        corpus: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        backend: dict[str, dict[str, str]] = {}
        warnings: list[str] = []
        per_sample: list[dict[str, float]] = [{} for _ in samples]
        for metric_name in self.config.metrics:
            entry = METRICS.entry(metric_name)
            kwargs = dict(self.config.metric_options.get(metric_name) or {})
            for kwarg, meta_key in dict(entry.options.get("sample_fields", {})).items():
                kwargs[kwarg] = [samples[i].meta.get(meta_key) for i in keep]
            if entry.options.get("needs_images"):
                kwargs["images"] = [samples[i].images[0] if samples[i].images else None for i in keep]
                kwargs["sample_ids"] = [samples[i].id for i in keep]
            for key in entry.options.get("run_options", ()):
                if options.get(key) is not None:
                    kwargs[key] = options[key]
            values: MetricValues = entry.load()(preds, refs, **kwargs)
            corpus.update(values.corpus)
            unavailable.update(values.unavailable)
            backend.update({k: dict(v) for k, v in values.backend.items()})
            warnings.extend(values.warnings)
            for j, scores in zip(keep, values.per_sample):
                per_sample[j].update(scores)
        return MetricValues(corpus=corpus, per_sample=tuple(per_sample), unavailable=unavailable,
                            backend=backend, warnings=tuple(warnings))

    # -- identity -----------------------------------------------------------
    def fingerprint(self, samples: Sequence[Sample], *, model_name: str | None,
                    rendered_prompt: str | None = None, scoring: Mapping[str, Any] | None = None,
                    limit: int | None = None) -> dict[str, Any]:
        """Everything that must be equal for two runs' numbers to be comparable."""
        fp: dict[str, Any] = {
            "task": self.name,
            "family": self.family,
            "version": self.config.version,
            "definition_hash": self.config.definition_hash(),
            "prompt": self.prompt_for(model_name),
            "rendered_prompt_hash": text_hash(rendered_prompt),
            "generation": self.config.generation.as_dict(),
            "dataset": self._provenance,
            "n_samples": len(samples),
            "sample_ids_hash": content_hash([s.id for s in samples]),
            "references_hash": content_hash([[s.text, list(s.references)] for s in samples]),
            "metrics": list(self.config.metrics),
            "scoring": dict(scoring or {}),
            "limit": limit,
        }
        fp["hash"] = hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return fp
