"""Task definitions as data: parse and validate task YAML files.

A task file looks like::

    name: easyvqa_caption
    family: captioning            # or  class: <a registered task family>
    version: 1
    description: One line shown by `mmbench list tasks`.
    dataset:
      loader: easyvqa-captions    # a registered dataset loader (`mmbench list loaders`), or
      # path: parquet | json | imagefolder | <hub id>;  data_files: ...;  revision: <commit sha>
      split: test
      columns: {id: image_id, image: image, references: references}
    prompt: "A short image caption:"
    generation: {max_new_tokens: 20}
    metrics: [coco-caption]

``include: other.yaml`` (a path relative to the including file) or ``include: easyvqa_vqa``
(the name of a built-in task) merges another file underneath, so a variant is a few lines.
YAML is read with ``safe_load``; every key is type-checked here, and an error names the
file and line of the key (``tasks/x.yaml:7, field 'generation': ...``).

Security: ``loader:`` and ``class:`` name registered code only (built-ins and entry
points); an import string ``"module:attr"`` is refused unless the run trusts remote code
(``--trust-remote-code``), because a task file is data and must not choose what code runs.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field, fields
from functools import lru_cache
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
#: private keys read_task_yaml adds to the merged mapping (never part of the definition hash)
_BASE_DIR, _LOCATIONS = "_base_dir", "__locations__"

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def builtin_task_dir() -> Path:
    """Built-in task YAML: ``mmbench/_builtin_tasks`` in a wheel, ``<repo>/tasks`` in a source checkout."""
    packaged = PACKAGE_DIR / "_builtin_tasks"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "tasks"


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
    source: str | None = None  # the task file, for error messages


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
    #: ``"key"`` or ``"key.sub"`` -> ``"file:line"`` where the merged definition got it
    locations: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def definition_hash(self) -> str:
        """Hash of the merged definition (minus where it was read from)."""
        blob = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def where(self, key: str) -> str:
        """``file:line`` of ``key`` (``"dataset.loader"``, ``"prompt"``), else of its parent key, else the file."""
        while key:
            if key in self.locations:
                return self.locations[key]
            key = key.rpartition(".")[0]
        return self.source


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _key_locations(node: Any, file: str) -> dict[str, str]:
    """``file:line`` of each top-level key and of the keys one level below it."""
    out: dict[str, str] = {}
    if not isinstance(node, yaml.MappingNode):
        return out
    for key_node, value_node in node.value:
        key = str(key_node.value)
        out[key] = f"{file}:{key_node.start_mark.line + 1}"
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, _ in value_node.value:
                out[f"{key}.{sub_key.value}"] = f"{file}:{sub_key.start_mark.line + 1}"
    return out


def _load_yaml(path: Path) -> tuple[Any, dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("task file not found", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason})", source=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{path}:{line + 1}" if line is not None else str(path)
        raise DataError(f"invalid YAML: {' '.join(str(exc).split())}", source=where) from None
    finally:
        loader.dispose()
    return data, _key_locations(node, str(path))


@lru_cache(maxsize=None)
def _builtin_files_by_name(folder: str) -> dict[str, str]:
    """Task name -> file for the built-in task folder (read once; only each file's ``name:``)."""
    out: dict[str, str] = {}
    for file in sorted(Path(folder).rglob("*")):
        if file.suffix in (".yaml", ".yml") and not file.name.startswith("_"):
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # reported when the task itself is registered
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                out.setdefault(data["name"], str(file))
    return out


def _include_path(including: Path, inc: Any, where: str) -> Path:
    """A file next to the including one, else (for a bare name) the built-in task of that name."""
    if not isinstance(inc, str) or not inc.strip():
        raise DataError(f"expected a file name or a built-in task name, got {_describe(inc)}", source=where,
                        field="include")
    candidate = including.parent / inc
    if candidate.is_file():
        return candidate
    builtin = _builtin_files_by_name(str(builtin_task_dir()))
    if inc in builtin:
        return Path(builtin[inc])
    hint = "" if "/" in inc or inc.endswith((".yaml", ".yml")) else (
        f" (built-in tasks: {', '.join(sorted(builtin))})")
    raise DataError(f"{inc!r} is neither a file next to the task file nor a built-in task{hint}", source=where,
                    field="include")


def read_task_yaml(path: str | Path, _seen: tuple[str, ...] = ()) -> dict:
    """Read a task YAML file, resolving ``include:`` chains (cycles are an error)."""
    path = Path(path).resolve()
    if str(path) in _seen:
        raise MMBenchError(f"include cycle: {' -> '.join(_seen + (str(path),))}")
    data, locations = _load_yaml(path)
    if not isinstance(data, dict):
        raise DataError(f"a task file must hold a mapping of keys, got {_describe(data)}", source=str(path))
    own_dataset = data.get("dataset")
    if isinstance(own_dataset, dict) and "data_files" in own_dataset:
        own_dataset[_BASE_DIR] = str(path.parent)  # relative data_files are relative to the file naming them
    include = data.pop("include", None)
    if include is not None:
        where = locations.get("include", str(path))
        if not isinstance(include, (str, list)) or not include:
            raise DataError(f"expected a file or task name, or a list of them, got {_describe(include)}",
                            source=where, field="include")
        merged: dict = {}
        for inc in [include] if isinstance(include, str) else include:
            base = read_task_yaml(_include_path(path, inc, where), _seen + (str(path),))
            base.pop("name", None)
            merged = _deep_merge(merged, base)
        locations = {**merged.pop(_LOCATIONS, {}), **locations}
        data = _deep_merge(merged, data)
    data.setdefault("dataset", {})
    if isinstance(data["dataset"], dict):
        data["dataset"].setdefault(_BASE_DIR, str(path.parent))
    data[_LOCATIONS] = locations
    return data


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


def _template_fields(template: str) -> list[str]:
    """The ``{placeholders}`` of a format string (ValueError if it is malformed)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


class _Checker:
    """Type checks of one merged task mapping; an error names the key and where it was written."""

    def __init__(self, source: str, locations: Mapping[str, str]):
        self.source, self.locations = source, locations

    def fail(self, key: str, message: str) -> DataError:
        where, parent = self.source, key
        while parent:
            if parent in self.locations:
                where = self.locations[parent]
                break
            parent = parent.rpartition(".")[0]
        return DataError(message, source=where, field=key)

    def check(self, key: str, value: Any, types: tuple[type, ...], what: str) -> Any:
        if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
            raise self.fail(key, f"expected {what}, got {_describe(value)}")
        return value

    def string(self, key: str, value: Any, *, optional: bool = True) -> str | None:
        if value is None and optional:
            return None
        return self.check(key, value, (str,), "a string")

    def mapping(self, key: str, value: Any, what: str = "a mapping") -> dict:
        if value is None:
            return {}
        return dict(self.check(key, value, (dict,), what))

    def str_mapping(self, key: str, value: Any, what: str) -> dict[str, str]:
        out = self.mapping(key, value, what)
        for k, v in out.items():
            if not isinstance(v, str):
                raise self.fail(f"{key}.{k}", f"expected a string, got {_describe(v)}")
        return {str(k): v for k, v in out.items()}

    def str_list(self, key: str, value: Any, what: str) -> list[str]:
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
            raise self.fail(key, f"expected {what}, got {_describe(value)}")
        return list(items)

    def generation(self, value: Any) -> GenerationSettings:
        gen = self.mapping("generation", value, "a mapping like {max_new_tokens: 16}")
        allowed = {f.name for f in fields(GenerationSettings)}
        if set(gen) - allowed:
            raise self.fail("generation", f"unknown generation keys {sorted(set(gen) - allowed)}; "
                                          f"allowed: {sorted(allowed)}")
        for key in ("max_new_tokens", "num_beams"):
            if key in gen:
                n = self.check(f"generation.{key}", gen[key], (int,), "a positive integer")
                if n < 1:
                    raise self.fail(f"generation.{key}", f"expected a positive integer, got {n}")
        if "do_sample" in gen:
            self.check("generation.do_sample", gen["do_sample"], (bool,), "true or false")
        if gen.get("temperature") is not None:
            self.check("generation.temperature", gen["temperature"], (int, float), "a number")
        return GenerationSettings(**gen)

    def dataset(self, value: Any, base_dir: str | None) -> DatasetConfig:
        ds = self.mapping("dataset", value, "a mapping (loader: or path:, split, columns, ...)")
        unknown = set(ds) - _DATASET_KEYS
        if unknown:
            raise self.fail("dataset", f"unknown dataset keys {sorted(unknown)}; allowed: {sorted(_DATASET_KEYS)}")
        if not ds.get("loader") and not ds.get("path"):
            raise self.fail("dataset", "the dataset needs `loader:` or `path:`")
        for key in ("loader", "path", "name", "revision", "split", "image_root", "citation", "homepage"):
            if key in ds:
                hint = " (quote it: a commit sha of digits reads as a number)" if key == "revision" else ""
                if ds[key] is not None and not isinstance(ds[key], str):
                    raise self.fail(f"dataset.{key}", f"expected a string{hint}, got {_describe(ds[key])}")
        ds["loader_kwargs"] = self.mapping("dataset.loader_kwargs", ds.get("loader_kwargs"))
        ds["filter"] = self.mapping("dataset.filter", ds.get("filter"))
        columns = self.str_mapping("dataset.columns", ds.get("columns"),
                                   "a mapping of field -> dataset column, like {id: question_id}")
        for key, col in columns.items():
            try:
                _template_fields(col)
            except ValueError as exc:
                raise self.fail("dataset.columns", f"column template {col!r} of {key!r} is malformed: {exc}") \
                    from None
        ds["columns"] = columns
        files = ds.get("data_files")
        if files is not None and not (isinstance(files, str) or isinstance(files, list)
                                      and all(isinstance(f, str) for f in files) or isinstance(files, dict)):
            raise self.fail("dataset.data_files", f"expected a path, a list of paths or a mapping split -> paths, "
                                                  f"got {_describe(files)}")
        return DatasetConfig(base_dir=base_dir, source=self.source, **ds)


def parse_task_config(data: Mapping[str, Any], source: str) -> TaskConfig:
    """Validate a merged task mapping.  Unknown keys and values of the wrong type are errors
    naming the file, the line and the key (typos must not pass silently)."""
    data = dict(data)
    locations = dict(data.pop(_LOCATIONS, None) or {})
    check = _Checker(source, locations)
    unknown = set(data) - _TOP_LEVEL_KEYS
    if unknown:  # named at the first one's line; YAML keys may be numbers, so sorted as text
        first = next(str(key) for key in data if key in unknown)
        raise check.fail(first, f"unknown keys {sorted(map(str, unknown))}; allowed: {sorted(_TOP_LEVEL_KEYS)}")
    for required in ("name", "dataset"):
        if required not in data:
            raise DataError("missing required key", source=source, field=required)
    name = check.string("name", data["name"], optional=False)
    if not name or any(ch.isspace() for ch in name):
        raise check.fail("name", f"expected a task name without spaces, got {name!r}")
    family, task_class = check.string("family", data.get("family")), check.string("class", data.get("class"))
    if not family and not task_class:
        raise DataError("a task needs `family:` or `class:`", source=source, field="family")
    version = check.check("version", data.get("version", 1), (int, str), "an integer or a string")
    description = check.string("description", data.get("description")) or ""
    ds = dict(check.mapping("dataset", data["dataset"], "a mapping (loader: or path:, split, columns, ...)"))
    base_dir = ds.pop(_BASE_DIR, None)
    dataset = check.dataset(ds, base_dir)
    prompt = check.string("prompt", data.get("prompt"))
    overrides = check.str_mapping("prompt_overrides", data.get("prompt_overrides"),
                                  "a mapping of model name -> prompt")
    for key, template in ([("prompt", prompt)] if prompt else []) + [
            (f"prompt_overrides.{m}", p) for m, p in overrides.items()]:
        try:
            _template_fields(template)
        except ValueError as exc:
            raise check.fail(key, f"malformed prompt template ({exc}); write a literal brace as {{{{ or }}}}") \
                from None
    metrics = check.str_list("metrics", data.get("metrics"), "a list of metric names")
    metric_options = check.mapping("metric_options", data.get("metric_options"),
                                   "a mapping of metric name -> options")
    check.str_list("tags", data.get("tags"), "a list of strings")
    raw = {k: v for k, v in data.items()}
    raw["dataset"] = {k: v for k, v in ds.items()}
    return TaskConfig(
        name=name,
        family=family,
        task_class=task_class,
        version=version,
        description=description.strip(),
        dataset=dataset,
        prompt=prompt,
        prompt_overrides=overrides,
        generation=check.generation(data.get("generation")),
        metrics=tuple(metrics),
        metric_options=metric_options,
        source=source,
        raw=raw,
        locations=locations,
    )


def load_task_config(path: str | Path) -> TaskConfig:
    return parse_task_config(read_task_yaml(path), str(path))
