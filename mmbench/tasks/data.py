"""Load a task's dataset rows through Hugging Face ``datasets`` (or a Python loader).

Sources, in the order a task file may name them:

* ``loader: <name>`` - a registered dataset loader (:mod:`mmbench.tasks.loaders`), a
  function returning a list of dict rows (used for data that ships inside PyPI
  packages, such as easy-VQA); an import string only with ``trust_remote_code``;
* ``path: json|parquet|csv|imagefolder`` with ``data_files`` (relative to the
  task file) - local files;
* ``path: <hub id>`` with a pinned ``revision`` - a hub dataset, read from the
  local cache when ``HF_HUB_OFFLINE=1``.

Local JSON/JSONL/CSV files are checked here before ``datasets`` reads them (see
:func:`check_local_files`): its errors lose the file and line of a bad record
(``DatasetGenerationError: An error occurred while generating the dataset``,
``StopIteration`` for a glob matching nothing), ours name them.

Image columns are kept undecoded (``datasets.Image(decode=False)``) and turned into
:class:`~mmbench.types.ImageRef`, so decoding happens per sample, lazily.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from mmbench.errors import DataError, MMBenchError
from mmbench.hashing import hash_files
from mmbench.io import MAX_LINE_CHARS
from mmbench.tasks.config import DatasetConfig
from mmbench.tasks.loaders import loader_module, resolve_loader
from mmbench.tasks.rows import DatasetRows
from mmbench.types import ImageRef

#: the columns a row's id is read from when the task maps none (first one the data has)
ID_COLUMNS = ("id", "image_id", "question_id")

_LOCAL_BUILDERS = {"json", "parquet", "csv", "imagefolder", "arrow", "text", "webdataset"}


def _resolve_data_files(data_files: Any, base_dir: str | None) -> Any:
    def fix(p: str) -> str:
        p = os.path.expanduser(p)
        return p if os.path.isabs(p) or base_dir is None else str(Path(base_dir) / p)

    if data_files is None:
        return None
    if isinstance(data_files, str):
        return os.path.normpath(fix(data_files))
    if isinstance(data_files, list):
        return [fix(p) for p in data_files]
    if isinstance(data_files, dict):
        return {k: _resolve_data_files(v, base_dir) for k, v in data_files.items()}
    raise DataError(f"data_files must be a path, list or mapping, got {type(data_files).__name__}",
                    field="data_files")


def load_rows(cfg: DatasetConfig, *, trust_remote_code: bool = False,
              where: str | None = None) -> tuple[Sequence[dict], dict[str, Any]]:
    """Return ``(rows, provenance)``; provenance goes into the task fingerprint.

    ``cfg.loader`` must be a registered dataset loader unless ``trust_remote_code``
    (see :mod:`mmbench.tasks.loaders`); ``where`` (``file:line``) locates the task file's
    dataset in error messages.  No rows at all is an error."""
    where = where or cfg.source or ""
    if cfg.loader:
        fn = resolve_loader(cfg.loader, trust_remote_code=trust_remote_code, where=where)
        try:
            rows = list(fn(split=cfg.split, **dict(cfg.loader_kwargs)))
        except (TypeError, ValueError, KeyError, OSError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"loader {cfg.loader!r} (split {cfg.split!r}, loader_kwargs "
                            f"{dict(cfg.loader_kwargs)}) failed: {type(exc).__name__}: {exc}",
                            source=where, field="dataset.loader") from None
        module = loader_module(cfg.loader)
        prov: dict[str, Any] = {"loader": cfg.loader, "split": cfg.split}
        try:
            from importlib import metadata

            prov["package_versions"] = {"mmbench": metadata.version("mmbench")}
            if module != "mmbench":
                prov["package_versions"][module] = metadata.version(module)
        except Exception:  # not installed as a distribution: provenance is the content hash
            pass
    else:
        rows, prov = _load_with_datasets(cfg)
    if not rows:
        raise DataError(f"the dataset has no rows (split {cfg.split!r})", source=where, field="dataset")
    n_rows = len(rows)
    rows = _apply_filter(rows, cfg.filter)
    if not rows:
        raise DataError(f"filter {dict(cfg.filter)} matches none of the {n_rows} rows", source=where,
                        field="dataset.filter")
    if cfg.image_root:
        root = os.path.expandvars(os.path.expanduser(cfg.image_root))
        if "$" in root or not os.path.isdir(root):
            raise DataError(f"image_root {cfg.image_root!r} is not an existing folder (set the environment "
                            "variable it names to the folder holding the dataset's images)", field="image_root")
        if isinstance(rows, DatasetRows):
            rows.base_dir = root
        else:
            for r in rows:
                r["__base_dir__"] = root
    return rows, prov


def _load_with_datasets(cfg: DatasetConfig) -> tuple[DatasetRows, dict[str, Any]]:
    import datasets

    path = cfg.path
    assert path is not None
    data_files = _resolve_data_files(cfg.data_files, cfg.base_dir)
    local = path in _LOCAL_BUILDERS
    prov: dict[str, Any] = {"path": path, "name": cfg.name, "split": cfg.split}
    kwargs: dict[str, Any] = {"split": cfg.split}
    if cfg.name:
        kwargs["name"] = cfg.name
    if local:
        if data_files is None:
            raise DataError(f"a local `{path}` dataset needs data_files", field="data_files")
        check_local_files(path, data_files, cfg.columns, unique_ids=not cfg.filter)
        kwargs["data_files"] = data_files
        prov["data_files_sha256"] = _hash_files(data_files, cfg.base_dir)
    else:
        if not cfg.revision:
            raise DataError(f"hub dataset {path!r} must pin a `revision` (a commit sha) so results are "
                            "comparable (`mmbench pin <task file>` writes the current one)", field="revision")
        kwargs["revision"] = cfg.revision
        prov["revision"] = cfg.revision
        if cfg.data_files is not None:  # files inside the hub repo (e.g. webdataset shards)
            kwargs["data_files"] = cfg.data_files
            prov["data_files"] = cfg.data_files
    try:
        ds = datasets.load_dataset(path, **kwargs)
    except FileNotFoundError as exc:
        raise DataError(f"dataset files not found: {exc}", source=path) from None
    except Exception as exc:  # datasets raises many types for offline/missing data
        if local:
            cause = exc.__cause__ or exc.__context__ or exc
            raise DataError(f"cannot read the `{path}` data: {type(cause).__name__}: {cause}",
                            source=", ".join(_local_paths(data_files))) from None
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = (" It is not in the local cache and the hub is offline (HF_HUB_OFFLINE=1): download it once "
                "on a connected machine with the same revision, or point the task at local files."
                if offline and not local else "")
        raise MMBenchError(f"cannot load dataset {path!r} (split {cfg.split!r}): "
                           f"{exc.__class__.__name__}: {exc}.{hint}") from None
    import pyarrow

    # a first load converts the files to datasets' Arrow cache; the Arrow memory pool keeps what the
    # conversion freed (~50 MB for a VQAv2-size JSON file) for the rest of the run unless asked
    pyarrow.default_memory_pool().release_unused()
    for col, feature in ds.features.items():
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    rows = DatasetRows(ds)
    if local:
        # relative image paths in JSON/CSV rows are relative to the data file
        first = data_files if isinstance(data_files, str) else None
        if isinstance(data_files, list) and data_files:
            first = data_files[0]
        if isinstance(data_files, dict):
            first = next(iter(v if isinstance(v, str) else v[0] for v in data_files.values()), None)
        if first:
            rows.base_dir = str(Path(first).parent)
    return rows, prov


def _local_paths(data_files: Any) -> list[str]:
    """The path patterns of ``data_files`` (a path, a list, or a mapping split -> either)."""
    if isinstance(data_files, str):
        return [data_files]
    if isinstance(data_files, list):
        return list(data_files)
    if isinstance(data_files, dict):
        return [p for v in data_files.values() for p in _local_paths(v)]
    return []


def check_local_files(builder: str, data_files: Any, columns: Any = None, *,
                      unique_ids: bool = True) -> list[str]:
    """Check local data files before ``datasets`` reads them; return the files.

    Every pattern must match a file (a glob matching nothing is an error, as is a missing
    file); no file may be empty.  JSON Lines (``.jsonl``, or a ``.json`` file whose lines
    are each an object) is read line by line: a malformed line, a line that is not an
    object, non-UTF-8 text, a row without its id, or (with ``unique_ids``) an id that an
    earlier row of the same file has is a :class:`DataError` naming ``file:line``.  Ids are
    compared within a file (the files of several splits may reuse ids); a task that
    ``filter:``s its rows passes ``unique_ids=False`` (rows it drops may share ids), and
    :meth:`mmbench.tasks.base.Task.load_samples` still refuses duplicates among the rows it
    keeps.  A JSON file holding one document must parse.  CSV must be UTF-8 text.

    The id column is the task's ``columns: {id: ...}`` if it is a plain column, else the
    first of :data:`ID_COLUMNS` that the first row has; data with none of them is numbered
    by row index instead (see :meth:`mmbench.tasks.base.Task.sample_id`).

    Why by hand: ``datasets`` reports a bad JSON line as ``DatasetGenerationError: An error
    occurred while generating the dataset`` and a glob matching nothing as ``StopIteration``,
    without the file or the line.
    """
    files: list[str] = []
    for pattern in _local_paths(data_files):
        if glob.has_magic(pattern):
            matched = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matched:
                raise DataError("no file matches this pattern", source=pattern, field="data_files")
            files.extend(matched)
        elif not os.path.isfile(pattern):
            raise DataError("data file not found", source=pattern, field="data_files")
        else:
            files.append(pattern)
    columns = dict(columns or {})
    mapped_id = columns.get("id")
    for file in files:
        if os.path.getsize(file) == 0:
            raise DataError("the data file is empty", source=file)
        name = file[:-3] if file.endswith(".gz") else file
        if builder == "json":
            _check_json_file(file, mapped_id if mapped_id and "{" not in mapped_id else None,
                             lines=name.endswith((".jsonl", ".ndjson")), unique_ids=unique_ids)
        elif builder in ("csv", "text"):
            if not any(line.strip() for _, line in _lines(file)):
                raise DataError("the data file is empty (only blank lines)", source=file)
    return files


def _lines(file: str) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of a (possibly gzipped) UTF-8 file, each line decoded on its own so
    that a non-UTF-8 byte is reported on its exact line; a line is read at most
    :data:`~mmbench.io.MAX_LINE_CHARS` bytes long."""
    with (gzip.open(file, "rb") if file.endswith(".gz") else open(file, "rb")) as fh:
        lineno = 0
        while True:
            raw = fh.readline(MAX_LINE_CHARS + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE_CHARS:
                raise DataError(f"line is longer than {MAX_LINE_CHARS:,} bytes; not read", source=f"{file}:{lineno}")
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line)",
                                source=f"{file}:{lineno}") from None


def _json_lines(file: str) -> Iterator[tuple[int, Any]]:
    for lineno, line in _lines(file):
        if line.strip():
            try:
                yield lineno, json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", source=f"{file}:{lineno}") \
                    from None


def _check_json_file(file: str, id_column: str | None, *, lines: bool, unique_ids: bool = True) -> None:
    records: Iterator[tuple[int | None, Any]]
    first = next((line.strip() for _, line in _lines(file) if line.strip()), "")
    if not first:
        raise DataError("the data file is empty (only blank lines)", source=file)
    one_document = first.startswith("[") and not lines
    if not one_document and not lines:
        try:
            json.loads(first)
        except json.JSONDecodeError:
            one_document = True  # a pretty-printed object spanning lines, not JSON Lines
    if one_document:
        text = "".join(line for _, line in _lines(file))
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", source=f"{file}:{exc.lineno}") \
                from None
        if not isinstance(doc, list):
            return  # an object of columns, or rows under a field: left to datasets
        if not doc:
            raise DataError("the data file is empty (an empty JSON list)", source=file)
        records = ((None, r) for r in doc)
    else:
        records = _json_lines(file)
    id_col = id_column
    seen: dict[str, str] = {}  # sample id (as Task.sample_id spells it) -> where it first appeared
    for n, (lineno, record) in enumerate(records):
        where = f"{file}:{lineno}" if lineno is not None else f"{file}, record {n}"
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object per row, got {type(record).__name__}", source=where)
        if n == 0:  # a mapped column the data lacks altogether is reported by Task.load_samples
            id_col = (id_col if id_col in record else None) if id_col else next(
                (c for c in ID_COLUMNS if c in record), None)
        if id_col is not None and record.get(id_col) is None:
            raise DataError(f"the row has no id (the task's id column is {id_col!r})", source=where,
                            field=id_col)
        if id_col is not None and unique_ids:
            sid = str(record[id_col])
            if sid in seen:
                raise DataError(f"duplicate sample id (first at {seen[sid]})", source=where, sample_id=sid,
                                field=id_col)
            seen[sid] = f"line {lineno}" if lineno is not None else f"record {n}"


def _hash_files(data_files: Any, base_dir: str | None = None) -> str:
    """One digest of a task's local data files: each file's bytes under its name relative to the
    task file's folder (globs expanded), so the same data in another folder has the same digest."""
    patterns: list[str] = []
    if isinstance(data_files, str):
        patterns = [data_files]
    elif isinstance(data_files, list):
        patterns = list(data_files)
    elif isinstance(data_files, dict):
        for v in data_files.values():
            patterns.extend([v] if isinstance(v, str) else v)
    files = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]:
            if Path(path).is_file():
                name = os.path.relpath(path, base_dir) if base_dir else Path(path).name
                files.append((name, path))
    return hash_files(files)[:16]


def _apply_filter(rows: Sequence[dict], flt: Any) -> Sequence[dict]:
    if not flt:
        return rows
    return [r for r in rows if all(r.get(k) == v for k, v in dict(flt).items())]


def to_image_ref(value: Any, base_dir: str | None = None) -> ImageRef:
    """Turn a dataset cell (path string, ``{"bytes", "path"}`` dict, bytes or PIL image) into an ImageRef."""
    if isinstance(value, ImageRef):
        return value
    if isinstance(value, str):
        path = value if os.path.isabs(value) or base_dir is None else os.path.normpath(os.path.join(base_dir, value))
        return ImageRef(path=path)
    if isinstance(value, (bytes, bytearray)):
        return ImageRef(data=bytes(value))
    if isinstance(value, dict):
        if value.get("bytes"):
            return ImageRef(data=bytes(value["bytes"]), path=None)
        if value.get("path"):
            return to_image_ref(value["path"], base_dir)
        raise ValueError("image cell has neither bytes nor path")
    if hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        return ImageRef(pil=value)
    raise ValueError(f"unsupported image value of type {type(value).__name__}")


class SampleDigest:
    """What a task fingerprint records about its samples, taken a chunk at a time: their count,
    :func:`content_hash` of their ids and of their texts and references.  Updates over any split
    of the samples give the hashes :func:`content_hash` gives on the whole list."""

    def __init__(self) -> None:
        self.n = 0
        self._ids, self._references = hashlib.sha256(), hashlib.sha256()

    def update(self, samples: Sequence[Any]) -> None:
        for s in samples:
            self.n += 1
            _hash_item(self._ids, s.id)
            _hash_item(self._references, [s.text, list(s.references)])

    @property
    def sample_ids_hash(self) -> str:
        return self._ids.hexdigest()[:16]

    @property
    def references_hash(self) -> str:
        return self._references.hexdigest()[:16]


def _hash_item(h: Any, item: Any) -> None:
    h.update(json.dumps(item, sort_keys=True, ensure_ascii=False, default=str).encode())
    h.update(b"\n")


def content_hash(items: Sequence[Any]) -> str:
    """A short stable hash of a sequence of JSON-able items (sample ids, references...)."""
    h = hashlib.sha256()
    for item in items:
        _hash_item(h, item)
    return h.hexdigest()[:16]
