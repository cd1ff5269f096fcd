"""Task definitions as data: parse and validate task YAML files.

A task file looks like::

    name: easyvqa_caption
    family: captioning            # or  class: "my_pkg.tasks:MyTask"
    version: 1
    description: One line shown by `mmbench list tasks`.
    dataset:
      loader: "mmbench.tasks.easyvqa:caption_rows"   # a Python function returning rows, or
      # path: parquet | json | imagefolder | <hub id>;  data_files: ...;  revision: <commit sha>
      split: test
      columns: {id: image_id, image: image, references: references}
    prompt: "A short image caption:"
    generation: {max_new_tokens: 20}
    metrics: [coco-caption]

``include: other.yaml`` (a path relative to the including file) merges another
file underneath, so a variant is a few lines.  YAML is read with ``safe_load``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from mmbench.errors import DataError, MMBenchError
from mmbench.types import GenerationSettings

_TOP_LEVEL_KEYS = {
    "name", "family", "class", "version", "description", "dataset", "prompt", "prompt_overrides",
    "generation", "metrics", "metric_options", "include", "tags",
}
_DATASET_KEYS = {"loader", "loader_kwargs", "path", "name", "data_files", "revision", "split", "columns",
                 "filter", "image_root", "citation", "homepage"}


@dataclass(frozen=True)
class DatasetConfig:
    split: str = "test"
    loader: str | None = None
    loader_kwargs: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None
    name: str | None = None
    data_files: Any = None
    revision: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    filter: Mapping[str, Any] = field(default_factory=dict)
    image_root: str | None = None  # folder that relative image paths are resolved against ($VARS expanded)
    base_dir: str | None = None  # folder of the YAML file, for relative data_files
    citation: str | None = None
    homepage: str | None = None


@dataclass(frozen=True)
class TaskConfig:
    name: str
    family: str | None
    task_class: str | None
    version: int | str
    description: str
    dataset: DatasetConfig
    prompt: str | None
    prompt_overrides: Mapping[str, str]
    generation: GenerationSettings
    metrics: tuple[str, ...]
    metric_options: Mapping[str, Any]
    source: str
    raw: Mapping[str, Any]

    def definition_hash(self) -> str:
        """Hash of the merged definition (minus where it was read from)."""
        blob = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_task_yaml(path: str | Path, _seen: tuple[str, ...] = ()) -> dict:
    """Read a task YAML file, resolving ``include:`` chains (cycles are an error)."""
    path = Path(path).resolve()
    if str(path) in _seen:
        raise MMBenchError(f"include cycle: {' -> '.join(_seen + (str(path),))}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("task file not found", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise DataError(f"invalid YAML: {exc}", source=str(path)) from None
    if not isinstance(data, dict):
        raise DataError("a task file must hold a mapping", source=str(path))
    own_dataset = data.get("dataset")
    if isinstance(own_dataset, dict) and "data_files" in own_dataset:
        own_dataset["_base_dir"] = str(path.parent)  # relative data_files are relative to the file naming them
    include = data.pop("include", None)
    if include:
        includes = [include] if isinstance(include, str) else list(include)
        merged: dict = {}
        for inc in includes:
            base = read_task_yaml(path.parent / inc, _seen + (str(path),))
            base.pop("name", None)
            merged = _deep_merge(merged, base)
        data = _deep_merge(merged, data)
    data.setdefault("dataset", {})
    if isinstance(data["dataset"], dict):
        data["dataset"].setdefault("_base_dir", str(path.parent))
    return data


def parse_task_config(data: Mapping[str, Any], source: str) -> TaskConfig:
    """Validate a merged task mapping.  Unknown keys are errors (typos must not pass silently)."""
    data = dict(data)
    unknown = set(data) - _TOP_LEVEL_KEYS
    if unknown:
        raise DataError(f"unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_LEVEL_KEYS)}", source=source)
    for required in ("name", "dataset"):
        if required not in data:
            raise DataError("missing required key", source=source, field=required)
    if not data.get("family") and not data.get("class"):
        raise DataError("a task needs `family:` or `class:`", source=source, field="family")
    ds = dict(data["dataset"] or {})
    base_dir = ds.pop("_base_dir", None)
    unknown = set(ds) - _DATASET_KEYS
    if unknown:
        raise DataError(f"unknown dataset keys {sorted(unknown)}; allowed: {sorted(_DATASET_KEYS)}",
                        source=source, field="dataset")
    if not ds.get("loader") and not ds.get("path"):
        raise DataError("the dataset needs `loader:` or `path:`", source=source, field="dataset")
    dataset = DatasetConfig(base_dir=base_dir, **{k: v for k, v in ds.items()})
    gen = data.get("generation") or {}
    allowed_gen = {f.name for f in fields(GenerationSettings)}
    if set(gen) - allowed_gen:
        raise DataError(f"unknown generation keys {sorted(set(gen) - allowed_gen)}", source=source,
                        field="generation")
    metrics = data.get("metrics") or []
    if isinstance(metrics, str):
        metrics = [metrics]
    raw = {k: v for k, v in data.items()}
    raw["dataset"] = {k: v for k, v in ds.items()}
    return TaskConfig(
        name=str(data["name"]),
        family=data.get("family"),
        task_class=data.get("class"),
        version=data.get("version", 1),
        description=str(data.get("description", "")).strip(),
        dataset=dataset,
        prompt=data.get("prompt"),
        prompt_overrides=dict(data.get("prompt_overrides") or {}),
        generation=GenerationSettings(**gen),
        metrics=tuple(metrics),
        metric_options=dict(data.get("metric_options") or {}),
        source=source,
        raw=raw,
    )


def load_task_config(path: str | Path) -> TaskConfig:
    return parse_task_config(read_task_yaml(path), str(path))
