"""``mmbench leaderboard build|show|export|push``: thin commands over :mod:`mmbench.leaderboard`.

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
    samples: Annotated[bool, typer.Option(help="Write the per-sample files the page's sample browser loads.")] = True,
    thumbnails: Annotated[bool, typer.Option(help="Copy small thumbnails of the tasks' images (when found).")] = True,
) -> None:
    """Write a leaderboard (Markdown, CSV, JSON and an HTML page with a sample browser) from results files."""
    from mmbench.leaderboard import build_leaderboard

    board = build_leaderboard(results, out, seed=seed, n_boot=n_boot, skip_invalid=skip_invalid, samples=samples,
                              thumbnails=thumbnails)
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


def _dataset_ids(pairs: list[str]) -> dict[str, str]:
    from mmbench.errors import MMBenchError

    out = {}
    for pair in pairs:
        task, sep, dataset = pair.partition("=")
        if not sep or not task or not dataset:
            raise MMBenchError(f"--dataset-id takes TASK=ORG/NAME, got {pair!r}")
        out[task] = dataset
    return out


@command(leaderboard_app, "export")
def export_command(
    results: _Paths,
    hub: Annotated[str, typer.Option("--hub", help="Folder for the Hub files: dataset card, CSV/JSON, "
                                                   "models/<model>/.eval_results/<task>.yaml.")],
    repo: Annotated[str | None, typer.Option(help="The results dataset ORG/NAME (the source link of each result).")]
    = None,
    dataset_id: Annotated[list[str] | None, typer.Option(help="TASK=ORG/NAME: the Hub dataset a task evaluates "
                                                              "(repeatable).")] = None,
    seed: _Seed = 0,
    n_boot: _NBoot = 1000,
    skip_invalid: _Skip = False,
) -> None:
    """Write the Hugging Face Hub files of a leaderboard (evaluation-results YAML per model, a dataset card)."""
    from mmbench.leaderboard import make_board
    from mmbench.leaderboard.hub import export_hub

    board = make_board(results, seed=seed, n_boot=n_boot, skip_invalid=skip_invalid)
    _report_rejected(board)
    report = export_hub(board, hub, repo=repo, dataset_ids=_dataset_ids(dataset_id or []))
    for reason in report["skipped"]:
        _err.print(f"[yellow]skipped:[/] {escape(reason)}", highlight=False, soft_wrap=True)
    _err.print(f"{len(report['files'])} files in {escape(hub)}", highlight=False, soft_wrap=True)


@command(leaderboard_app, "push")
def push_command(
    folder: Annotated[str, typer.Argument(help="The folder to upload (an export --hub folder or a built board).")],
    repo: Annotated[str, typer.Option("--repo", help="Target dataset repository, ORG/NAME.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files and the target; upload nothing.")]
    = False,
) -> None:
    """Upload a leaderboard folder to a Hugging Face Hub dataset repository (huggingface_hub)."""
    from mmbench.leaderboard.hub import push_board

    plan = push_board(folder, repo, dry_run=dry_run)
    if dry_run:
        _out.print(f"would upload {len(plan['files'])} files to {escape(plan['target'])} ({plan['url']}):",
                   highlight=False, soft_wrap=True)
        for f in plan["files"]:
            _out.print(f"  {escape(f)}", highlight=False, soft_wrap=True)
    else:
        _err.print(f"uploaded {len(plan['files'])} files to {plan['url']}", highlight=False, soft_wrap=True)
