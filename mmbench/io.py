"""Atomic file writes and JSON Lines reading with line-numbered errors."""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from mmbench.errors import DataError


def atomic_write_text(path: str | os.PathLike, text: str | Iterable[str]) -> None:
    """Write ``text`` (a str, or pieces written one after another) to ``path`` so that readers see
    either the old or the new file, never half.

    The file gets the mode ``open(path, "w")`` would give it: an existing file keeps its
    permission bits, a new one gets ``0o666`` less the umask.  (``tempfile.mkstemp`` makes
    0600 files, which left results, predictions and leaderboards unreadable to the group
    whatever the umask.)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        keep_mode: int | None = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except FileNotFoundError:
        keep_mode = None
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if keep_mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), keep_mode)
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, exclusively created file beside ``path``, mode 0o666 less the umask (applied by
    the kernel, so the umask is never read or changed)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: could not create a temporary file beside it")


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    """Rows as JSON lines, atomically; lines are written as ``rows`` yields them (never all held at once)."""
    atomic_write_text(path, (json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows))


#: Longest JSONL line read, in characters (newline included).  A predictions line is an id, a
#: prompt hash, a generated text, references and scores: kilobytes.  Lines are read at most
#: this long, so a small .gz that expands to one 1 GiB line costs ~16 MB, not 2 GB.
MAX_LINE_CHARS = 16 * 2**20


def bounded_lines(fh: IO[str], source: str, max_chars: int = MAX_LINE_CHARS) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` from text file ``fh``, never holding more than ``max_chars``
    characters of one line: a longer line raises :class:`DataError` naming ``source:line``.
    (Iterating a file object reads a whole line however long; ``readline(n)`` stops at n.)"""
    lineno = 0
    while True:
        try:
            line = fh.readline(max_chars + 1)
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason}, at or after this line)",
                            source=f"{source}:{lineno + 1}") from None
        if not line:
            return
        lineno += 1
        if len(line) > max_chars:
            raise DataError(f"line is longer than {max_chars:,} characters; not read", source=f"{source}:{lineno}")
        yield lineno, line


def read_jsonl(path: str | os.PathLike, max_line_chars: int = MAX_LINE_CHARS) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line raises naming file and line.
    A ``.gz`` file is read through gzip.  Lines longer than ``max_line_chars`` are refused
    unread (see :data:`MAX_LINE_CHARS`)."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=str(path))
    import gzip

    with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")) as fh:
        for lineno, line in bounded_lines(fh, str(path), max_line_chars):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg})", source=f"{path}:{lineno}") from None
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object, got {type(obj).__name__}", source=f"{path}:{lineno}")
            yield lineno, obj
