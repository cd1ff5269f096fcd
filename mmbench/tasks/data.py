"""Load a task's dataset rows through Hugging Face ``datasets`` (or a Python loader).

Sources, in the order a task file may name them:

* ``loader: "module:function"`` - a function returning a list of dict rows (used
  for data that ships inside PyPI packages, such as easy-VQA);
* ``path: json|parquet|csv|imagefolder`` with ``data_files`` (relative to the
  task file) - local files;
* ``path: <hub id>`` with a pinned ``revision`` - a hub dataset, read from the
  local cache when ``HF_HUB_OFFLINE=1``.

Image columns are kept undecoded (``datasets.Image(decode=False)``) and turned into
:class:`~mmbench.types.ImageRef`, so decoding happens per sample, lazily.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import DataError, MMBenchError
from mmbench.registry import import_string
from mmbench.tasks.config import DatasetConfig
from mmbench.types import ImageRef

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


def load_rows(cfg: DatasetConfig) -> tuple[list[dict], dict[str, Any]]:
    """Return ``(rows, provenance)``; provenance goes into the task fingerprint."""
    if cfg.loader:
        fn = import_string(cfg.loader)
        rows = list(fn(split=cfg.split, **dict(cfg.loader_kwargs)))
        module = cfg.loader.split(":")[0].split(".")[0]
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
    rows = _apply_filter(rows, cfg.filter)
    if cfg.image_root:
        root = os.path.expandvars(os.path.expanduser(cfg.image_root))
        if "$" in root or not os.path.isdir(root):
            raise DataError(f"image_root {cfg.image_root!r} is not an existing folder (set the environment "
                            "variable it names to the folder holding the dataset's images)", field="image_root")
        for r in rows:
            r["__base_dir__"] = root
    return rows, prov


def _load_with_datasets(cfg: DatasetConfig) -> tuple[list[dict], dict[str, Any]]:
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
        kwargs["data_files"] = data_files
        prov["data_files_sha256"] = _hash_files(data_files)
    else:
        if not cfg.revision:
            raise DataError(f"hub dataset {path!r} must pin a `revision` (a commit sha) so results are "
                            "comparable", field="revision")
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
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = (" It is not in the local cache and the hub is offline (HF_HUB_OFFLINE=1): download it once "
                "on a connected machine with the same revision, or point the task at local files."
                if offline and not local else "")
        raise MMBenchError(f"cannot load dataset {path!r} (split {cfg.split!r}): "
                           f"{exc.__class__.__name__}: {exc}.{hint}") from None
    for col, feature in ds.features.items():
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    rows = [dict(r) for r in ds]
    if local:
        # relative image paths in JSON/CSV rows are relative to the data file
        first = data_files if isinstance(data_files, str) else None
        if isinstance(data_files, list) and data_files:
            first = data_files[0]
        if isinstance(data_files, dict):
            first = next(iter(v if isinstance(v, str) else v[0] for v in data_files.values()), None)
        if first:
            for r in rows:
                r["__base_dir__"] = str(Path(first).parent)
    return rows, prov


def _hash_files(data_files: Any) -> str:
    paths: list[str] = []
    if isinstance(data_files, str):
        paths = [data_files]
    elif isinstance(data_files, list):
        paths = list(data_files)
    elif isinstance(data_files, dict):
        for v in data_files.values():
            paths.extend([v] if isinstance(v, str) else v)
    h = hashlib.sha256()
    for p in sorted(paths):
        fp = Path(p)
        if fp.is_file():
            with fp.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(p.encode())
    return h.hexdigest()[:16]


def _apply_filter(rows: list[dict], flt: Any) -> list[dict]:
    if not flt:
        return rows
    return [r for r in rows if all(r.get(k) == v for k, v in dict(flt).items())]


def to_image_ref(value: Any, base_dir: str | None = None) -> ImageRef:
    """Turn a dataset cell (path string, ``{"bytes", "path"}`` dict, bytes or PIL image) into an ImageRef."""
    if isinstance(value, ImageRef):
        return value
    if isinstance(value, str):
        path = value if os.path.isabs(value) or base_dir is None else os.path.normpath(Path(base_dir) / value)
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


def content_hash(items: Sequence[Any]) -> str:
    """A short stable hash of a sequence of JSON-able items (sample ids, references...)."""
    import json

    h = hashlib.sha256()
    for item in items:
        h.update(json.dumps(item, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]
