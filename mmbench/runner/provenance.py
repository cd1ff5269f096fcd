"""What a run records about where it ran: library versions, threads, peak memory."""

from __future__ import annotations

import contextlib
import platform
import re
from typing import Any

from mmbench.errors import MMBenchError


def package_version(name: str) -> str | None:
    """An installed distribution's version from its metadata, without importing it (importing
    transformers costs 1-2 s, which a run of an API model or a baseline never needs otherwise)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": package_version("transformers"),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@contextlib.contextmanager
def torch_threads_set(threads: int | None):
    """``torch.set_num_threads(threads)`` for the duration of a run, then the caller's setting again."""
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise MMBenchError(f"--threads must be a whole number of at least 1, not {threads!r}")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def reset_peak_memory() -> bool:
    """Start a task's peak-memory window: Linux resets the process's RSS high-water mark when
    "5" is written to /proc/self/clear_refs (and CUDA keeps its own).  False where that is
    not possible: the peak is then the process's since it started."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_memory(task_window: bool = False) -> dict[str, Any]:
    """Peak resident memory (and GPU memory) of the task when ``task_window`` (see
    :func:`reset_peak_memory`), else of the process so far; ``peak_rss_scope`` says which."""
    import resource

    import torch

    peak_kb = None
    if task_window:
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                found = re.search(r"VmHWM:\s+(\d+) kB", fh.read())
            peak_kb = int(found.group(1)) if found else None
        except OSError:
            peak_kb = None
    scope = "task" if peak_kb is not None else "process"
    if peak_kb is None:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    mem: dict[str, Any] = {"peak_rss_mb": round(peak_kb / 1024, 1), "peak_rss_scope": scope}
    if torch.cuda.is_available():
        mem["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return mem
