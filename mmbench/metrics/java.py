"""Finding Java and running the jars that ship inside the ``pycocoevalcap`` wheel.

Only the official jars are run (``stanford-corenlp-3.4.1.jar`` for PTB
tokenisation, ``meteor-1.5.jar``, ``spice-1.0.jar``); nothing is ever downloaded.
Java is looked up as ``java`` on ``PATH``, exactly as pycocoevalcap does.
:func:`java_status` never raises: it answers ``(True, None)`` or
``(False, reason)``, and caches the answer per resolved executable, so changing
``PATH`` (for instance in a test) is seen at once.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence


METEOR_JAR = ("meteor", "meteor-1.5.jar")
SPICE_FILES = (("spice", "spice-1.0.jar"), ("spice", "lib", "stanford-corenlp-3.6.0.jar"),
               ("spice", "lib", "stanford-corenlp-3.6.0-models.jar"))


class JavaUnavailableError(RuntimeError):
    """Java (or one of the jars it should run) is not available here."""


def java_status() -> tuple[bool, str | None]:
    """``(available, reason_if_not)`` for the ``java`` found on ``PATH``."""
    exe = shutil.which("java")
    if exe is None:
        return False, "no 'java' executable on PATH (pycocoevalcap's jars need Java 8 or newer)"
    return _probe_java(os.path.realpath(exe))[:2]


def java_version() -> str | None:
    """First line of ``java -version`` (for provenance records), or None without Java."""
    exe = shutil.which("java")
    return None if exe is None else _probe_java(os.path.realpath(exe))[2]


@functools.lru_cache(maxsize=8)
def _probe_java(exe: str) -> tuple[bool, str | None, str | None]:
    """(works, reason if not, first line of ``-version``) for one executable."""
    try:
        proc = subprocess.run([exe, "-version"], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot run {exe} -version: {exc}", None
    text = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        return False, f"{exe} -version exited with status {proc.returncode}: {text[-300:]}", None
    return True, None, (text.splitlines() or [None])[0]


@functools.lru_cache(maxsize=1)
def pycocoevalcap_dir() -> Path | None:
    """Folder of the installed ``pycocoevalcap`` package (not imported), or None."""
    try:
        spec = importlib.util.find_spec("pycocoevalcap")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def jar_path(*parts: str) -> Path | None:
    """Path of a file inside the pycocoevalcap package if it exists, e.g. ``jar_path("meteor", "meteor-1.5.jar")``."""
    root = pycocoevalcap_dir()
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.is_file() else None


def require_java(what: str) -> str:
    """Return the ``java`` executable or raise :class:`JavaUnavailableError` naming ``what`` needed it."""
    ok, reason = java_status()
    if not ok:
        raise JavaUnavailableError(f"{what} needs Java: {reason}")
    exe = shutil.which("java")
    assert exe is not None
    return exe


def run_java(args: Sequence[str], *, cwd: str | os.PathLike[str], what: str,
             timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``java *args`` in ``cwd`` to completion; raise RuntimeError with stderr on failure."""
    exe = require_java(what)
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise RuntimeError(f"{what} failed (java exited with status {proc.returncode}): {tail}")
    return proc


@contextmanager
def java_process(args: Sequence[str], *, cwd: str | os.PathLike[str], what: str,
                 niceness: int = 0) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running ``java *args`` with piped stdin/stdout, always killed and reaped on exit.

    stderr goes to a temporary file (a pipe nobody reads could fill up and block
    the JVM); its tail is attached to any exception raised inside the block.  ``niceness`` > 0
    lowers the JVM's CPU priority (a JVM started beside inference then takes idle time only).
    """
    exe = require_java(what)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([exe, *args], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, preexec_fn=(lambda: os.nice(niceness)) if niceness > 0 else None)
        try:
            yield proc
        except Exception as exc:
            proc.kill()
            proc.wait()
            err.seek(0)
            tail = err.read().decode("utf-8", "replace").strip()[-2000:]
            if tail:
                raise RuntimeError(f"{what} failed: {exc}; java stderr: {tail}") from exc
            raise
        finally:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def feed_lines(proc: subprocess.Popen[bytes], lines: Sequence[str]) -> threading.Thread:
    """Write ``lines`` (UTF-8, one per line) to ``proc``'s stdin from a thread, then flush.

    Writing from a thread while the caller reads stdout avoids the deadlock of
    both pipes filling up at once.
    """
    assert proc.stdin is not None
    stdin = proc.stdin

    def _write() -> None:
        try:
            for line in lines:
                stdin.write(line.encode("utf-8") + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the reader reports the failure

    thread = threading.Thread(target=_write, daemon=True)
    thread.start()
    return thread


def run_ptb_jar(docs: Sequence[str], command: Sequence[str]) -> list[list[str]]:
    """Run pycocoevalcap's ``stanford-corenlp-3.4.1.jar`` once on several documents; raw output lines.

    Uses the jar's ``-ioFileList`` mode (one JVM, each document in its own file, so each ends
    at its own end of input as in separate pycocoevalcap calls).  ``command`` is the main class
    and its options.
    """
    jar = jar_path("tokenizer", "stanford-corenlp-3.4.1.jar")
    if jar is None:
        raise JavaUnavailableError(
            "the java PTB tokenizer needs pycocoevalcap's stanford-corenlp-3.4.1.jar, which was not found")
    with tempfile.TemporaryDirectory(prefix="mmbench-ptb-") as tmp:
        for i, doc in enumerate(docs):
            Path(tmp, f"in{i}.txt").write_bytes(doc.encode("utf-8"))
        Path(tmp, "files.txt").write_text("".join(f"in{i}.txt out{i}.txt\n" for i in range(len(docs))))
        run_java(["-cp", str(jar), *command, "-ioFileList", "files.txt"], cwd=tmp,
                 what="PTB tokenizer (stanford-corenlp-3.4.1.jar)")
        return [Path(tmp, f"out{i}.txt").read_bytes().decode("utf-8").split("\n") for i in range(len(docs))]


# ------------------------------------------------------------------------------------------- METEOR
_METEOR_SESSION: list[subprocess.Popen[bytes]] = []
_METEOR_LOCK = threading.RLock()


@contextmanager
def meteor_session() -> Iterator[None]:
    """Keep one METEOR JVM for every METEOR computation inside the block (each start costs ~7 s).

    Without it each computation starts and stops its own JVM.  The JVM starts loading when the
    block is entered (``Popen`` returns at once), so a block opened before inference has it warm by
    scoring time.  The process is killed when the block exits, also on errors; an error raised
    inside the block passes through unchanged (never reported as a METEOR failure).  A no-op
    without Java.
    """
    if not java_status()[0] or jar_path(*METEOR_JAR) is None or _METEOR_SESSION:
        yield
        return
    raised: BaseException | None = None
    # niced: while it starts beside inference it must not slow the model down (nor its measured speed)
    with _meteor_process(niceness=10) as proc:
        _METEOR_SESSION.append(proc)
        try:
            yield
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside java_process's handler
            raised = exc
        finally:
            _METEOR_SESSION.pop()
    if raised is not None:
        raise raised


def run_meteor(batches) -> list[tuple[float, list[float]]]:
    """METEOR 1.5 for each ``(hypotheses, references per hypothesis)`` batch: (aggregate, per segment).

    Drives ``meteor-1.5.jar - - -stdio -l en -norm`` as pycocoevalcap does: one SCORE line per
    segment, then one EVAL line with all their statistics, whose answer is the per-segment
    scores and the aggregate over all segments (not their mean).
    """
    with _METEOR_LOCK:
        if _METEOR_SESSION and _METEOR_SESSION[-1].poll() is None:
            return _meteor_protocol(_METEOR_SESSION[-1], batches)
        with _meteor_process() as proc:
            return _meteor_protocol(proc, batches)


def _meteor_process(niceness: int = 0):
    jar = jar_path(*METEOR_JAR)
    if jar is None:
        raise JavaUnavailableError("pycocoevalcap's meteor/meteor-1.5.jar was not found")
    return java_process(["-jar", "-Xmx2G", str(jar), "-", "-", "-stdio", "-l", "en", "-norm"], cwd=jar.parent,
                        what="METEOR (meteor-1.5.jar)", niceness=niceness)


def _meteor_protocol(proc: subprocess.Popen[bytes], batches) -> list[tuple[float, list[float]]]:
    assert proc.stdin is not None and proc.stdout is not None
    stdout = proc.stdout

    def read() -> str:
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the METEOR jar stopped answering (exit status {proc.poll()})")
        return line.decode("utf-8").strip()

    results = []
    try:
        for hyps, refs in batches:
            lines = [" ||| ".join(("SCORE", " ||| ".join(rs), h.replace("|||", "").replace("  ", " ")))
                     for h, rs in zip(hyps, refs)]
            writer = feed_lines(proc, lines)
            stats = [read() for _ in lines]
            writer.join()
            proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
            proc.stdin.flush()
            per_segment = [float(read()) for _ in lines]
            results.append((float(read()), per_segment))
    except BaseException:
        proc.kill()  # its state is unknown now; a session falls back to fresh processes
        raise
    return results


# -------------------------------------------------------------------------------------------- SPICE
def run_spice(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
    """Per-image SPICE "All" F-scores from ``spice-1.0.jar``, run as pycocoevalcap runs it (NaN where
    the jar gives none).  Needs Stanford CoreNLP 3.6.0 already in ``spice/lib``; never downloads.
    Untested on machines without those assets."""
    jar = jar_path(*SPICE_FILES[0])
    if jar is None or any(jar_path(*p) is None for p in SPICE_FILES):
        raise JavaUnavailableError("SPICE needs spice-1.0.jar and Stanford CoreNLP 3.6.0 in pycocoevalcap's spice/lib")
    with tempfile.TemporaryDirectory(prefix="mmbench-spice-") as tmp:
        src, dst = Path(tmp, "in.json"), Path(tmp, "out.json")
        src.write_text(json.dumps([{"image_id": i, "test": h, "refs": list(rs)}
                                   for i, (h, rs) in enumerate(zip(hyps, refs))]), encoding="utf-8")
        run_java(["-jar", "-Xmx8G", str(jar), str(src), "-out", str(dst), "-subset", "-silent"], cwd=jar.parent,
                 what="SPICE (spice-1.0.jar)")
        scores = {item["image_id"]: item["scores"]["All"]["f"] for item in json.loads(dst.read_text("utf-8"))}

    def number(x) -> float:
        try:
            return float(x)
        except (TypeError, ValueError):
            return float("nan")
    return [number(scores.get(i)) for i in range(len(hyps))]
