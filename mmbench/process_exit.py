"""End a command-line process without Python's interpreter teardown.

After ``mmbench eval`` has written everything, a normal interpreter exit spends 1.3-1.9 s
tearing down modules and objects (torch, transformers, open_clip, a model's tensors) that
the process is about to release anyway: measured on 2 CPU cores, an open_clip ViT-B-32 run
(benchmarks/README.md).  :func:`exit_now` runs what a normal exit would (the ``atexit``
handlers, which include ``logging``'s flush and coverage's data file), waits for any
non-daemon thread, flushes stdout and stderr, then ends the process with ``os._exit``.

Only the console entry point uses it (``mmbench.cli.main``); Python callers of
:func:`mmbench.runner.evaluate` and tests that drive the CLI in-process are unaffected.
``MMBENCH_FAST_EXIT=0`` keeps the normal exit (for tools that hook the interpreter's end).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_code(code: object) -> int:
    """``SystemExit.code`` as a process status: None is 0, an int is itself, anything else is
    printed to stderr and gives 1 (what the interpreter does)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def exit_now(code: object = 0) -> NoReturn:
    """End the process with status ``exit_code(code)`` after the ``atexit`` handlers, skipping teardown."""
    status = exit_code(code)
    if os.environ.get("MMBENCH_FAST_EXIT", "1") == "0":
        sys.exit(status)
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # the handlers a normal exit runs, in the same (last-registered-first) order
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be written anyway
            pass
    os._exit(status)
