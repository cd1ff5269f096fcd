"""The prediction cache: every finished sample, stored as soon as its batch finishes.

One SQLite file (WAL mode, so readers never block the writer and a crash never
leaves half a transaction) keyed by

* the model fingerprint hash (weights, adapter, dtype, chat template, ...),
* the task key (task definition hash, dataset provenance, rendered prompt), and
* the request hash (sample id, prompt, question, generation settings, and each image by its
  content: the same image installed in another folder is the same request).

A generated image (:class:`~mmbench.types.GenerateImageRequest`) is stored as a PNG file named by
its SHA-256 beside the database (``images/<2 hex>/<sha256>.png``), and the database row holds
``png-sha256:<hex>``: content-addressed, so a file is written once however many runs produce it,
and one whose bytes no longer match its name (or that is gone) is recomputed, never served.

Re-running a command after a crash, ``kill -9`` or Ctrl-C therefore recomputes only
the samples that had not finished.  Keys do not depend on batch size, ``--limit``
or the number of processes, so a run started on 4 GPUs resumes on 1.  Only
successful outputs are stored: a failed sample is retried on the next run.

The default location is ``$MMBENCH_CACHE_DIR`` or ``~/.cache/mmbench``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Iterable, Sequence

from mmbench.errors import MMBenchError
from mmbench.hashing import file_digest
from mmbench.types import EmbedRequest, GenerateImageRequest, GenerateRequest, ModelOutput, ScoreRequest

CACHE_FILE = "predictions.sqlite"
IMAGE_DIR = "images"
_EMBEDDING_PREFIX = "f32le:"
_SCORES_PREFIX = "scores:"
_IMAGE_PREFIX = "png-sha256:"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    model_hash   TEXT NOT NULL,
    task_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    sample_id    TEXT NOT NULL,
    output       TEXT NOT NULL,
    created      REAL NOT NULL,
    PRIMARY KEY (model_hash, task_key, request_hash)
);
"""


def default_cache_dir() -> Path:
    return Path(os.environ.get("MMBENCH_CACHE_DIR") or Path.home() / ".cache" / "mmbench")


def encode_output(out: ModelOutput) -> str:
    """The cache's text form of a successful output: the text, an embedding as base64 float32, or
    scores as JSON ``[[sum, n], ...]`` (Python's float repr round-trips exactly)."""
    if out.scores is not None:
        return _SCORES_PREFIX + json.dumps([[float(t), int(n)] for t, n in out.scores])
    if out.image is not None:  # the bytes go to a content-addressed file (PredictionCache.put_image)
        return _IMAGE_PREFIX + hashlib.sha256(out.image).hexdigest()
    if out.embedding is None:
        return out.text or ""
    import base64

    import numpy as np

    return _EMBEDDING_PREFIX + base64.b64encode(np.asarray(out.embedding, dtype="<f4").tobytes()).decode("ascii")


def decode_output(req: GenerateRequest | EmbedRequest | ScoreRequest | GenerateImageRequest, stored: str):
    """Inverse of :func:`encode_output`; the request type says which form was stored.  For an
    image request: the image's SHA-256 (:meth:`PredictionCache.get_image` reads its bytes)."""
    if isinstance(req, GenerateImageRequest):
        if not stored.startswith(_IMAGE_PREFIX) or len(stored) != len(_IMAGE_PREFIX) + 64:
            raise MMBenchError(f"the prediction cache holds a malformed image reference for sample {req.id!r}")
        return stored[len(_IMAGE_PREFIX):]
    if isinstance(req, ScoreRequest):
        if not stored.startswith(_SCORES_PREFIX):
            raise MMBenchError(f"the prediction cache holds malformed scores for sample {req.id!r}")
        return tuple((float(t), int(n)) for t, n in json.loads(stored[len(_SCORES_PREFIX):]))
    if not isinstance(req, EmbedRequest):
        return stored
    import base64

    import numpy as np

    if not stored.startswith(_EMBEDDING_PREFIX):
        raise MMBenchError(f"the prediction cache holds a malformed embedding for sample {req.id!r}")
    return np.frombuffer(base64.b64decode(stored[len(_EMBEDDING_PREFIX):]), dtype="<f4").astype(np.float32)


def _image_file_identity(path: str) -> list:
    """A file image by its bytes (the same image installed in another folder is the same
    request); a path that is not a readable regular file keeps its path: such a sample fails
    when it is decoded, and failures are never cached."""
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            return ["sha256", file_digest(path)]
    except OSError:
        pass
    return ["path", path]


def request_hash(req: GenerateRequest | EmbedRequest | ScoreRequest) -> str:
    """Identity of one request: everything the model sees, plus the sample id.  Images are
    identified by their content, never by where they are stored."""
    images = []
    for ref in req.images:
        if ref.path is not None:
            images.append(_image_file_identity(ref.path))
        elif ref.data is not None:
            images.append(["sha256", hashlib.sha256(ref.data).hexdigest()])
        else:
            # an in-memory image is identified by its pixels (never by id(): a freed object's id is
            # reused, which would return another image's cached output)
            pil = ref.pil
            images.append(["pixels", pil.mode, list(pil.size), hashlib.sha256(pil.tobytes()).hexdigest()])
    if isinstance(req, GenerateImageRequest):
        parts: list = ["image", req.id, req.prompt, req.negative_prompt, int(req.seed)]
    elif isinstance(req, EmbedRequest):
        parts = ["embed", req.id, req.text, images]
    elif isinstance(req, ScoreRequest):
        parts = ["score", req.id, req.prompt, list(req.continuations), images]
    else:
        parts = [req.id, req.prompt, req.question, req.prompt_is_prefix, req.generation.as_dict(), images]
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class PredictionCache:
    """A handle on the cache file.  Use as a context manager, or call :meth:`close`."""

    def __init__(self, directory: str | os.PathLike | None = None):
        directory = Path(directory) if directory else default_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=60000")
            check = self._db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise MMBenchError(
                f"the prediction cache {self.path} is corrupt ({exc}). It is never used in that state. "
                f"Move it aside (mv {self.path} {self.path}.bad) and re-run to start a fresh cache, or run with "
                "--no-cache.") from None

    def __enter__(self) -> "PredictionCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def get_many(self, model_hash: str, task_key: str, hashes: Sequence[str]) -> dict[str, str]:
        """request hash -> cached output text, for those present."""
        found: dict[str, str] = {}
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT request_hash, output FROM predictions WHERE model_hash=? AND task_key=? "
                f"AND request_hash IN ({marks})", [model_hash, task_key, *chunk])
            found.update(dict(rows.fetchall()))
        return found

    def put_many(self, model_hash: str, task_key: str, rows: Iterable[tuple[str, str, str]]) -> None:
        """Store ``(request_hash, sample_id, output)`` rows in one transaction."""
        now = time.time()
        with self._db:  # a transaction: all rows of a batch, or none
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?)",
                [(model_hash, task_key, h, sid, out, now) for h, sid, out in rows])

    def _image_path(self, digest: str) -> Path:
        return self.path.parent / IMAGE_DIR / digest[:2] / f"{digest}.png"

    def put_image(self, data: bytes) -> str:
        """Store PNG bytes under their SHA-256 (written to a temporary file, then renamed: a
        crash never leaves half a file under a valid name); return the digest."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._image_path(digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return digest

    def get_image(self, digest: str) -> bytes | None:
        """The PNG bytes stored under ``digest``, or None when the file is gone or its bytes no
        longer match (the request is then recomputed)."""
        try:
            data = self._image_path(digest).read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == digest else None

    def count(self, model_hash: str | None = None, task_key: str | None = None) -> int:
        query, args = "SELECT COUNT(*) FROM predictions WHERE 1=1", []
        if model_hash:
            query, args = query + " AND model_hash=?", args + [model_hash]
        if task_key:
            query, args = query + " AND task_key=?", args + [task_key]
        return int(self._db.execute(query, args).fetchone()[0])
