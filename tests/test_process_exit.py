"""mmbench.process_exit: the console command ends without interpreter teardown, but with
everything a normal exit does that anyone could observe (atexit handlers, flushed output,
finished threads, the status)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmbench.process_exit import exit_code

SCRIPT = """
import atexit, sys, threading, time
from mmbench.process_exit import exit_now
atexit.register(lambda: print("atexit ran", flush=False))
def late():
    time.sleep(0.2)
    print("thread done", flush=False)
threading.Thread(target=late).start()
sys.stdout.write("buffered, not flushed")
exit_now({code!r})
"""


def test_exit_code_mapping(capsys):
    assert (exit_code(None), exit_code(0), exit_code(2)) == (0, 0, 2)
    assert exit_code("bad input") == 1 and capsys.readouterr().err == "bad input\n"


@pytest.mark.parametrize("fast", ["1", "0"])
@pytest.mark.parametrize("code", [0, 3])
def test_exit_now_keeps_what_a_normal_exit_does(fast, code):
    import os

    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(code=code)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "MMBENCH_FAST_EXIT": fast})
    assert proc.returncode == code
    assert proc.stdout.startswith("buffered, not flushed")
    assert "thread done" in proc.stdout and "atexit ran" in proc.stdout
    assert proc.stdout.index("thread done") < proc.stdout.index("atexit ran")  # as Python orders them


def test_console_command_status_is_kept(tmp_path):
    """A usage error still exits 2 through the console entry point."""
    proc = subprocess.run([sys.executable, "-m", "mmbench", "eval", "--model", "easyvqa-majority", "--tasks", "no_such_task",
                           "--output",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no_such_task" in (proc.stdout + proc.stderr)
