"""Choice by likelihood: the prediction is the candidate text the model finds most likely.

For each sample the model is asked one :class:`~mmbench.types.ScoreRequest` with every
candidate as a continuation of the task's prompt (for a captioner: a caption prefix, usually
none; for a chat VLM: the user turn); the prediction is the candidate with the highest
log-likelihood, and it is scored like a generated answer (``exact-match`` against the
``answer`` field).  Nothing is parsed, so nothing can be "unanswered": this is the
lm-evaluation-harness ``multiple_choice`` output type for image-conditioned models.

Columns (``columns:`` maps them): ``id``, ``image``, ``answer`` (the correct candidate's
text; a template such as ``"a {color} {shape}"`` builds it from several columns) and
optionally ``choices`` (a list of candidate texts per row).

Family options (``metric_options:``):

* ``choices``: the candidate list shared by every row (when the data has no ``choices``
  column); the answer must be one of them;
* ``selection``: ``sum`` (default: the total log-probability, lm-eval's ``acc``) or
  ``mean`` (per token, which does not favour short candidates).

Ties are broken by candidate order (the first listed wins), so a result never depends on
float noise in the last place beyond the tie itself.  The family adds ``gold_rank_mean``
(the mean rank of the correct candidate, 1 = chosen) to the corpus.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mmbench.errors import DataError
from mmbench.metrics.spec import Output
from mmbench.tasks.base import Task
from mmbench.types import MetricValues, Sample, ScoreRequest

SELECTIONS = ("sum", "mean")


class LikelihoodChoiceTask(Task):
    family = "likelihood-choice"
    needs = "score"
    fields = ("id", "image", "answer", "choices")
    prompt_fields = ()
    family_options = ("choices", "selection")
    extra_outputs = (Output("gold_rank_mean", higher_is_better=False),)

    def __init__(self, config: Any):
        super().__init__(config)
        options = config.metric_options
        self.selection = options.get("selection", "sum")
        if self.selection not in SELECTIONS:
            raise DataError(f"selection must be one of {SELECTIONS}, not {self.selection!r}",
                            source=config.where("metric_options.selection"), field="metric_options.selection")
        shared = options.get("choices")
        if shared is not None and (not isinstance(shared, (list, tuple)) or not shared
                                   or not all(isinstance(c, str) and c for c in shared)
                                   or len(set(shared)) != len(shared)):
            raise DataError("choices must be a non-empty list of distinct texts",
                            source=config.where("metric_options.choices"), field="metric_options.choices")
        if shared is None and "choices" not in config.dataset.columns:
            raise DataError("a likelihood-choice task needs candidates: metric_options.choices or a choices column",
                            source=config.where("metric_options"), field="metric_options.choices")
        self.shared_choices = tuple(shared) if shared is not None else None

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        try:
            image = self.image(row, sid)
            answer = self.value(row, "answer")
            if not isinstance(answer, str) or not answer:
                raise DataError("missing answer", sample_id=sid, field=self.column("answer"))
            meta: dict[str, Any] = {}
            choices = self.shared_choices
            if choices is None:
                value = self.value(row, "choices")
                if not isinstance(value, (list, tuple)) or not value or not all(isinstance(c, str) for c in value):
                    raise DataError("choices must be a non-empty list of texts", sample_id=sid,
                                    field=self.column("choices"))
                choices = tuple(value)
                meta["choices"] = list(choices)
            if answer not in choices:
                raise DataError(f"the answer {answer!r} is not one of the choices", sample_id=sid,
                                field=self.column("answer"))
        except DataError as exc:
            return Sample(id=sid, error=str(exc))
        return Sample(id=sid, images=(image,), references=(answer,), meta=meta)

    def choices(self, sample: Sample) -> tuple[str, ...]:
        return self.shared_choices if self.shared_choices is not None else tuple(sample.meta["choices"])

    def build_requests(self, sample: Sample, model_name: str | None) -> list[ScoreRequest]:
        return [ScoreRequest(id=sample.id, images=sample.images, continuations=self.choices(sample),
                             prompt=self.prompt_for(model_name))]

    def collect(self, sample: Sample, outputs: Sequence[Any]) -> dict[str, Any]:
        scores = outputs[0]
        values = [total if self.selection == "sum" else total / max(n, 1) for total, n in scores]
        order = sorted(range(len(values)), key=lambda k: (-values[k], k))  # ties: first listed wins
        choices = self.choices(sample)
        gold = choices.index(sample.references[0])
        return {"choice": choices[order[0]], "gold_rank": order.index(gold) + 1}

    def record_prediction(self, prediction: Any) -> Any:
        return None if prediction is None else prediction["choice"]

    def score(self, samples: Sequence[Sample], predictions: Sequence[Any],
              options: Mapping[str, Any]) -> MetricValues:
        values = super().score(samples, [None if p is None else p["choice"] for p in predictions], options)
        ranks = [p["gold_rank"] for s, p in zip(samples, predictions) if s.error is None and p is not None]
        corpus = dict(values.corpus)
        backend = dict(values.backend)
        if ranks:
            corpus["gold_rank_mean"] = sum(ranks) / len(ranks)
            backend["gold_rank_mean"] = {"implementation": "mmbench.tasks.likelihood_choice",
                                         "selection": self.selection, "over": "samples that did not fail"}
        per_sample = tuple({**ps, **({"gold_rank": float(p["gold_rank"])} if p is not None else {})}
                           for ps, p in zip(values.per_sample or [{}] * len(samples), predictions))
        return MetricValues(corpus=corpus, per_sample=per_sample, unavailable=values.unavailable, backend=backend,
                            warnings=values.warnings)
