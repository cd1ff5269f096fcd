"""The task contract: dataset rows -> samples -> requests; outputs -> scores.

A task never imports a model.  The runner hands it the model's *name* (for a
per-model prompt override) and the model's outputs as plain strings.
Subclasses implement :meth:`Task.row_to_sample` and :meth:`Task.score`; the rest
is shared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from mmbench.errors import DataError, UnknownNameError
from mmbench.metrics.dispatch import compute_metrics, describe_outputs
from mmbench.metrics.registry import metric_spec
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.tasks.config import TaskConfig, _template_fields
from mmbench.tasks.data import ID_COLUMNS, SampleDigest, load_rows, to_image_ref
from mmbench.tasks.rows import DatasetRows
from mmbench.types import GenerateRequest, ImageRef, MetricValues, Sample

if TYPE_CHECKING:
    from mmbench.tasks.scorers import Scorer


def text_hash(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Task:
    """Base class for task families.  ``family`` names the family in results and leaderboards."""

    #: ImageRefs by (cell value, base folder) while :meth:`load_samples` runs (:meth:`image_ref`)
    _image_pool: dict[tuple[str, str | None], ImageRef] | None = None

    family = "base"
    #: what the model must be able to do: "generate" (text) or "embed" (vectors)
    needs = "generate"
    #: names of the ``Sample`` fields a row must provide, for error messages
    required_columns: tuple[str, ...] = ("id",)

    #: corpus keys the family adds itself (besides its metrics' outputs)
    extra_outputs: tuple[Output, ...] = ()
    #: keys of ``metric_options`` that configure the family rather than a metric
    family_options: tuple[str, ...] = ()
    #: the fields ``columns:`` may map (None: any); another key is a typo, reported at build time
    fields: tuple[str, ...] | None = None
    #: the ``{placeholders}`` the family fills in ``prompt`` (None: the prompt is plain text)
    prompt_fields: tuple[str, ...] | None = None
    #: whether the task file's ``loader:`` may be an arbitrary import string (set by ``build_task``)
    trust_remote_code: bool = False

    def __init__(self, config: TaskConfig):
        self.config = config
        self._provenance: dict[str, Any] = {}
        self._id_column: str | None = None
        self._id_column_known = False
        self._check_definition()
        #: ``(spec, options)`` per metric of the task file, resolved now so that an unknown
        #: metric or option fails before any data or model is loaded
        self.metrics: list[tuple[MetricSpec, dict[str, Any]]] = []
        stray = sorted(set(config.metric_options) - set(config.metrics) - set(self.family_options))
        if stray:
            raise DataError(f"metric_options for metric(s) {stray} that the task does not list in metrics: "
                            f"{list(config.metrics)}", source=config.where("metric_options"),
                            field="metric_options")
        for name in config.metrics:
            try:
                spec = metric_spec(name)
            except UnknownNameError as exc:
                raise UnknownNameError(f"{config.where('metrics')}, field 'metrics': {exc}") from None
            options = config.metric_options.get(name) or {}
            if not isinstance(options, Mapping):
                raise DataError(f"expected a mapping of options, got {type(options).__name__} {options!r}",
                                source=config.where(f"metric_options.{name}"), field=f"metric_options.{name}")
            options = dict(options)
            key = f"metric_options.{name}"
            try:
                spec.check_options(options, f"{config.where(key)}, field {key!r}")
            except ValueError as exc:
                raise DataError(str(exc)) from None
            self.metrics.append((spec, options))

    def _check_definition(self) -> None:
        """What the task file alone can get wrong for this family: a ``columns:`` key the family
        never reads, a prompt placeholder it never fills."""
        config = self.config
        if self.fields is not None:
            unknown = sorted(set(config.dataset.columns) - set(self.fields))
            if unknown:
                raise DataError(f"unknown field(s) {unknown}: a {self.family} task reads {list(self.fields)}",
                                source=config.where("dataset.columns"), field="dataset.columns")
        if self.prompt_fields is None:
            return
        prompts = [("prompt", config.prompt)] + [(f"prompt_overrides.{m}", p)
                                                 for m, p in config.prompt_overrides.items()]
        for key, template in prompts:
            if not template:
                continue
            used = [name.split(".")[0].split("[")[0] for name in _template_fields(template)]
            unknown = [name for name in used if name not in self.prompt_fields]
            if unknown:
                allowed = ", ".join("{%s}" % f for f in self.prompt_fields)
                raise DataError(f"placeholder {{{unknown[0]}}} is not filled by a {self.family} task (it fills "
                                f"{allowed}); write a literal brace as {{{{ or }}}}", source=config.where(key),
                                field=key)

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

    def image(self, row: Mapping[str, Any], sid: str) -> ImageRef:
        """The row's ``image`` field as an :class:`ImageRef` (a relative path is resolved against the
        data file's folder or ``image_root``, ``row["__base_dir__"]``); a missing or unusable cell is a
        :class:`DataError` naming the sample and the column."""
        value = self.value(row, "image")
        if value is None:
            raise DataError("missing image", sample_id=sid, field=self.column("image"))
        try:
            return self.image_ref(value, row.get("__base_dir__"))
        except ValueError as exc:
            raise DataError(str(exc), sample_id=sid, field=self.column("image")) from None

    def image_ref(self, value: Any, base_dir: str | None) -> ImageRef:
        """:func:`~mmbench.tasks.data.to_image_ref`, sharing one ImageRef among the rows that name the
        same file during :meth:`load_samples` (VQA asks ~5-10 questions per image: one path string
        and one ImageRef per image instead of per question)."""
        pool = self._image_pool
        if pool is None or not isinstance(value, str):
            return to_image_ref(value, base_dir)
        ref = pool.get((value, base_dir))
        if ref is None:
            ref = pool[(value, base_dir)] = to_image_ref(value, base_dir)
        return ref

    def check_columns(self, row: Mapping[str, Any]) -> None:
        """Every column the task file maps must be in the data (``row`` is its first row: all rows of a
        dataset share columns).  A missing one would fail every sample; it fails the load instead,
        naming the task file, the field, the column and the columns the data has."""
        present = set(row)
        for field, col in self.config.dataset.columns.items():
            # a template "{a}/{b}" reads several columns; so does a list "image_1,image_2" (multiple choice)
            needed = ([n.split(".")[0].split("[")[0] for n in _template_fields(col)] if "{" in col
                      else [c.strip() for c in col.split(",")])
            missing = [c for c in needed if c not in present]
            if missing:
                have = sorted(c for c in present if not c.startswith("__") or c in ("__key__", "__url__"))
                raise DataError(f"column {missing[0]!r} is not in the data (its columns: {', '.join(have)})",
                                source=self.config.where("dataset.columns"), field=f"dataset.columns.{field}")

    def load_samples(self, limit: int | None = None) -> list[Sample]:
        """Load rows and convert them; a bad row becomes a Sample with ``error`` set (never dropped).

        Whole-data problems fail the load with a :class:`DataError`: a mapped column the data
        lacks (:meth:`check_columns`), a row without its id (:meth:`sample_id`), a duplicate id."""
        return next(self.sample_chunks(self.open_rows(limit)))

    def open_rows(self, limit: int | None = None) -> Sequence[Mapping[str, Any]]:
        """The task's rows (the first ``limit``), their columns checked against the task file; sets
        :attr:`provenance`.  Rows from a dataset stay in Arrow until :meth:`sample_chunks` converts them."""
        ds = self.config.dataset
        rows, self._provenance = load_rows(ds, trust_remote_code=self.trust_remote_code,
                                           where=self.config.where("dataset.loader" if ds.loader else "dataset"))
        self.check_columns(rows[0])
        self._id_column_known = True
        self._id_column = self.column("id") if "id" in ds.columns else next(
            (c for c in ID_COLUMNS if c in rows[0]), None)
        return rows[:limit] if limit is not None else rows

    def sample_chunks(self, rows: Sequence[Mapping[str, Any]], size: int | None = None) -> Iterator[list[Sample]]:
        """The samples of ``rows`` (from :meth:`open_rows`), ``size`` rows' worth at a time (None: all
        in one list).  Every whole-data problem is raised before the first chunk: ids are checked
        over all rows first (:meth:`check_ids`) when there is more than one chunk."""
        if size is not None and len(rows) > size:
            self.check_ids(rows)
        else:
            size = max(1, len(rows))
        it = iter(rows)
        for start in range(0, max(1, len(rows)), size):  # no rows: one empty chunk
            samples: list[Sample] = []
            seen: dict[str, int] = {}
            self._image_pool = {}
            try:
                for index in range(start, min(start + size, len(rows))):
                    for sample in self.row_to_samples(index, next(it)):
                        if sample.id in seen:
                            raise DataError(f"duplicate sample id (rows {seen[sample.id]} and {index})",
                                            source=f"task {self.name}", sample_id=sample.id,
                                            field=self.column("id"))
                        seen[sample.id] = index
                        samples.append(sample)
            finally:
                self._image_pool = None  # the samples hold what they share; the pool goes
            yield samples

    def check_ids(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Raise :meth:`sample_id`'s error for the first row without an id, and the duplicate-id error
        for the first repeated id, over all ``rows`` (before a streamed run converts them a chunk at a
        time).  Arrow rows are checked on the column itself, holding no Python string per row."""
        col = self.column("id") if "id" in self.config.dataset.columns else self._id_column
        if col is None:
            return  # ids are row numbers
        if isinstance(rows, DatasetRows) and rows.has_plain_ids(col):
            problem = rows.id_problem(col)
        else:
            problem, seen = None, {}
            for index, row in enumerate(rows):
                sid = self.sample_id(index, row)  # raises for a row without its id
                if sid in seen:
                    problem = (seen[sid], index)
                    break
                seen[sid] = index
        if problem is None:
            return
        first, second = problem
        if second is None:
            self.sample_id(first, rows[first])  # raises: the row has no id
        raise DataError(f"duplicate sample id (rows {first} and {second})", source=f"task {self.name}",
                        sample_id=self.sample_id(second, rows[second]), field=self.column("id"))

    def sample_id(self, index: int, row: Mapping[str, Any]) -> str:
        """The row's id: its ``id`` field if the task maps one, else the first of ``id``, ``image_id``,
        ``question_id`` that the data has (judged on its first row).  Only data with none of these
        columns falls back to the row index (``"0"``, ``"1"``, ...).  A row lacking the id its data
        has is a :class:`DataError` naming the row and the column (never silently numbered)."""
        if "id" in self.config.dataset.columns:
            col, value = self.column("id"), self.value(row, "id")
        else:
            col = self._id_column if self._id_column_known else next((c for c in ID_COLUMNS if c in row), None)
            if col is None:
                return str(index)
            value = row.get(col)
        if value is None or value == "":
            raise DataError("the row has no id", source=f"task {self.name} ({self.config.source}), row {index}",
                            field=col)
        return str(value)

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def row_to_samples(self, index: int, row: Mapping[str, Any]) -> list[Sample]:
        """The samples of one row: by default the one :meth:`row_to_sample` makes.  A family that
        expands a row (multiple choice asked once per rotation of its options) overrides this;
        ``--limit`` counts rows, not samples."""
        return [self.row_to_sample(index, row)]

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
    def score(self, samples: Sequence[Sample], predictions: Sequence[Any],
              options: Mapping[str, Any]) -> MetricValues:
        """Run the task's metrics over the scorable samples (see
        :func:`mmbench.metrics.dispatch.compute_metrics`) and add the family's counts
        (:meth:`count_outputs`); ``options`` are the run options (tokenizer, meteor, device,
        load_embedder) that a metric's spec may ask for."""
        values = compute_metrics(self.metrics, samples, predictions, options)
        counts = self.count_outputs(samples, predictions)
        return replace(values, corpus={**values.corpus, **counts}) if counts else values

    def count_outputs(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> dict[str, float]:
        """Counts the family adds to the corpus values (``extra_outputs`` with ``aggregation="count"``,
        such as VQA's ``unanswered``); summed over chunks when the task is scored a chunk at a time."""
        return {}

    @property
    def streams(self) -> bool:
        """Whether a run may load and score this task a chunk of samples at a time (memory flat in
        the task's size): every metric has a stream (:class:`~mmbench.metrics.spec.MetricStream`),
        and the family keeps the base scoring, one sample per row and no artifacts."""
        cls = type(self)
        return (bool(self.metrics) and all(spec.stream is not None for spec, _ in self.metrics)
                and cls.score is Task.score and cls.row_to_samples is Task.row_to_samples
                and cls.write_artifacts is Task.write_artifacts)

    def scorer(self, options: Mapping[str, Any]) -> Scorer:
        """What scores this task in a run: chunk by chunk when it :attr:`streams`, else in one call."""
        from mmbench.tasks.scorers import StreamedScorer, WholeScorer

        return StreamedScorer(self, options) if self.streams else WholeScorer(self, options)

    def describe_outputs(self, keys: Sequence[str]) -> tuple[dict[str, dict[str, Any]], str | None, list[str]]:
        """Direction and aggregation of each corpus key, the primary key, and warnings (see
        :func:`mmbench.metrics.dispatch.describe_outputs`)."""
        return describe_outputs([spec for spec, _ in self.metrics], keys, self.extra_outputs, owner=self.family)

    # -- identity -----------------------------------------------------------
    def fingerprint(self, samples: Sequence[Sample] | SampleDigest, *, model_name: str | None,
                    rendered_prompt: str | None = None, scoring: Mapping[str, Any] | None = None,
                    limit: int | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Everything that must be equal for two runs' numbers to be comparable.  ``samples``: the
        task's samples, or a :class:`~mmbench.tasks.data.SampleDigest` of them (a streamed run)."""
        digest = samples
        if not isinstance(digest, SampleDigest):
            digest = SampleDigest()
            digest.update(samples)
        fp: dict[str, Any] = {
            "task": self.name,
            "family": self.family,
            "version": self.config.version,
            "definition_hash": self.config.definition_hash(),
            "prompt": self.prompt_for(model_name),
            "rendered_prompt_hash": text_hash(rendered_prompt),
            "generation": self.config.generation.as_dict(),
            "dataset": self._provenance,
            "n_samples": digest.n,
            "sample_ids_hash": digest.sample_ids_hash,
            "references_hash": digest.references_hash,
            "metrics": list(self.config.metrics),
            "metric_versions": {spec.name: spec.version for spec, _ in self.metrics},
            "scoring": dict(scoring or {}),
            "limit": limit,
            **dict(extra or {}),  # run settings that change outputs only when set (a non-default pixel limit)
        }
        fp["hash"] = hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return fp

