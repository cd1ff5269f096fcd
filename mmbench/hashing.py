"""Content hashes of files: the one place mmbench reads files to identify them.

Fingerprints and cache keys depend on what determines outputs (the bytes of weights,
configs, processors, data and images), never on where the files sit: the same checkpoint
in two folders has one fingerprint.  A file's digest is remembered per process by
``(device, inode, size, mtime_ns)``, so a run that names one image in ten questions, or loads
the same scorer twice, reads it once.

Example::

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "w.bin"); _ = open(p, "wb").write(b"x")
    >>> file_digest(p) == file_digest(p)
    True
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from pathlib import Path
from typing import Iterable

_CHUNK = 1 << 20
_EDGE = 1 << 20  # what a partial hash reads from each end of a large file
#: packed (device, inode, size, mtime_ns, partial) -> raw sha256: ~160 bytes a file (an image of
#: a 40k-image task), where the tuple and hex string took ~300
_memo: dict[bytes, bytes] = {}
_KEY = struct.Struct("<QQQq?")
_lock = threading.Lock()


def file_digest(path: str | os.PathLike, *, partial: bool = False) -> str:
    """sha256 (hex) of a file's bytes; with ``partial``, of its size and first and last MiB
    (for multi-GB checkpoints, where reading everything on every run would cost minutes).

    Files of at least 1 MiB (weights) also have their digest kept across processes in
    ``$MMBENCH_CACHE_DIR/file-digests.sqlite`` (default ``~/.cache/mmbench``), keyed like the
    in-process memo, so a later run of the same checkpoint does not read it again; any change
    to the file changes its size or modification time, and so its key (``MMBENCH_DIGEST_STORE=0``
    turns the store off)."""
    st = os.stat(path)
    # (device, inode) name the file whatever path or link reached it; no realpath (a syscall per
    # path component: it cost more than the lookup on a 200k-question task)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, partial)
    packed = _KEY.pack(*key)
    with _lock:
        found = _memo.get(packed)
    if found is not None:
        return found.hex()
    stored = _store_get(key) if st.st_size >= _STORE_MIN_BYTES else None
    if stored is not None:
        with _lock:
            _memo[packed] = bytes.fromhex(stored)
        return stored
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if partial and st.st_size > 2 * _EDGE:
            h.update(str(st.st_size).encode())
            h.update(fh.read(_EDGE))
            fh.seek(-_EDGE, os.SEEK_END)
            h.update(fh.read(_EDGE))
        else:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
    digest = h.hexdigest()
    with _lock:
        _memo[packed] = h.digest()
    if st.st_size >= _STORE_MIN_BYTES:
        _store_put(key, digest)
    return digest


_STORE_MIN_BYTES = 1 << 20  # below this, reading the file is as fast as looking it up


def _store_path() -> Path | None:
    if os.environ.get("MMBENCH_DIGEST_STORE", "1") == "0":
        return None
    return Path(os.environ.get("MMBENCH_CACHE_DIR") or Path.home() / ".cache" / "mmbench") / "file-digests.sqlite"


def _store(fn):
    """Run ``fn(connection)`` on the digest store; None when there is no usable store (a read-only
    home, a damaged file): the digest is then computed from the bytes, as without a store."""
    import sqlite3

    path = _store_path()
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=30) as db:
            db.execute("CREATE TABLE IF NOT EXISTS digest (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
            return fn(db)
    except (sqlite3.Error, OSError):
        return None


def _store_get(key: tuple) -> str | None:
    row = _store(lambda db: db.execute("SELECT sha256 FROM digest WHERE key = ?", (repr(key),)).fetchone())
    return row[0] if row else None


def _store_put(key: tuple, digest: str) -> None:
    _store(lambda db: db.execute("INSERT OR REPLACE INTO digest VALUES (?, ?)", (repr(key), digest)))


def hash_files(files: Iterable[tuple[str, str | os.PathLike]], *, partial: bool = False) -> str:
    """One digest of named files: ``files`` are ``(name, path)`` pairs, where ``name`` is what
    identifies the file inside its set (a file name relative to its checkpoint folder), so the
    digest never depends on the folder's location.  Order does not matter."""
    h = hashlib.sha256()
    for name, path in sorted(files, key=lambda item: item[0]):
        h.update(name.encode("utf-8"))
        h.update(b"\0")
        h.update(file_digest(path, partial=partial).encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


#: files in a checkpoint folder that do not determine outputs
_NOT_MODEL_FILES = {".md", ".lock", ".png", ".jpg", ".jpeg", ".gif", ".pdf"}


def checkpoint_files(directory: str | os.PathLike) -> list[tuple[str, Path]]:
    """The files of a checkpoint folder that determine its outputs: weights, configs, tokenizer
    and processor files, chat templates (everything but documentation, images and hidden files),
    as ``(name relative to the folder, path)``; sub-folders are included."""
    root = Path(directory)
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in _NOT_MODEL_FILES:
            continue
        out.append((rel.as_posix(), path))
    return out
