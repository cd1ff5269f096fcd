"""The one place the command line turns a user's mistake into a clean exit.

Every ``mmbench`` command is registered with :func:`command`: an :class:`MMBenchError` (bad
input, an unknown name, a missing file) prints one ``error:`` line on stderr and exits with
status 2, never a traceback.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import typer
from rich.console import Console
from rich.markup import escape

from mmbench.errors import MMBenchError

stderr = Console(stderr=True)


def fail(exc: Exception | str) -> None:
    """Print ``error: <message>`` on stderr and exit with status 2."""
    stderr.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def command(app: typer.Typer, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@command(app, "eval")``: register a typer command whose MMBenchErrors exit cleanly."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)  # typer reads the options from the wrapped signature and annotations
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except MMBenchError as exc:
                fail(exc)
        return app.command(name)(run)
    return register
