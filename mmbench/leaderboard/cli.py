"""``mmbench leaderboard build|show``: thin commands over :mod:`mmbench.leaderboard`.

Mounted by ``mmbench.cli`` with ``app.add_typer(leaderboard_app, name="leaderboard")``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from mmbench.cli_errors import command

leaderboard_app = typer.Typer(help="Compare runs: tables with confidence intervals, grouped by comparability.",
                              no_args_is_help=True)
_err = Console(stderr=True)
_out = Console()

_Paths = Annotated[list[str], typer.Argument(help="results.json files, run folders, or folders of run folders.")]
_Seed = Annotated[int, typer.Option(help="Bootstrap seed (the same seed gives the same intervals).")]
_NBoot = Annotated[int, typer.Option(help="Bootstrap resamples.")]
_Skip = Annotated[bool, typer.Option(help="List invalid results files as rejected instead of stopping.")]


def _report_rejected(board: dict) -> None:
    for item in board["rejected"]:
        _err.print(f"[yellow]rejected:[/] {escape(item['reason'])}", highlight=False, soft_wrap=True)


@command(leaderboard_app, "build")
def build_command(
    results: _Paths,
    out: Annotated[str, typer.Option("--out", help="Folder for README.md, leaderboard.csv/.json, index.html.")],
    seed: _Seed = 0,
    n_boot: _NBoot = 1000,
    skip_invalid: _Skip = False,
) -> None:
    """Write a leaderboard (Markdown, CSV, JSON and a self-contained HTML page) from results files."""
    from mmbench.leaderboard import build_leaderboard

    board = build_leaderboard(results, out, seed=seed, n_boot=n_boot, skip_invalid=skip_invalid)
    _report_rejected(board)
    n_rows = sum(len(g["rows"]) for t in board["tasks"] for g in t["groups"])
    _err.print(f"{n_rows} rows in {sum(len(t['groups']) for t in board['tasks'])} comparable groups: "
               f"{escape(out)}/index.html", highlight=False, soft_wrap=True)


@command(leaderboard_app, "show")
def show_command(results: _Paths, seed: _Seed = 0, n_boot: _NBoot = 1000, skip_invalid: _Skip = False) -> None:
    """Print the leaderboard tables in the terminal."""
    from mmbench.leaderboard import board_tables, make_board

    board = make_board(results, seed=seed, n_boot=n_boot, skip_invalid=skip_invalid)
    _report_rejected(board)
    for table in board_tables(board):
        _out.print(table)
