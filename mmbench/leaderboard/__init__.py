"""Leaderboards: results files in, comparable tables out.

``build_leaderboard(paths, out_dir)`` writes ``README.md``, ``leaderboard.csv``,
``leaderboard.json``, ``index.html`` and the per-sample files its sample browser loads
(``samples/``, ``thumbs/``); ``show_leaderboard(paths)`` returns the same tables for the
terminal.  Modules: :mod:`.load` (read and validate), :mod:`.stats` (bootstrap),
:mod:`.tables` (grouping, ranking, Markdown/CSV/JSON), :mod:`.format` (number formats),
:mod:`.summary` (across tasks), :mod:`.charts` (SVG), :mod:`.samples` (sample files),
:mod:`.html` (the page), :mod:`.hub` (Hugging Face Hub files and upload).
See docs/leaderboards.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mmbench.errors import MMBenchError


def make_board(paths: Iterable[str | Path], *, seed: int = 0, n_boot: int = 1000,
               skip_invalid: bool = False) -> dict[str, Any]:
    """Load, validate, group and rank the runs under ``paths`` (see :func:`.tables.build_board`)."""
    from mmbench.leaderboard.load import load_runs
    from mmbench.leaderboard.tables import build_board

    if n_boot < 100:
        raise MMBenchError("--n-boot must be at least 100")
    runs, rejected = load_runs(paths, skip_invalid=skip_invalid)
    if not runs:
        raise MMBenchError("no valid results files" + (f" ({len(rejected)} rejected)" if rejected else ""))
    return build_board(runs, seed=seed, n_boot=n_boot, rejected=rejected)


def build_leaderboard(paths: Iterable[str | Path], out_dir: str | Path, *, seed: int = 0, n_boot: int = 1000,
                      skip_invalid: bool = False, samples: bool = True, thumbnails: bool = True) -> dict[str, Any]:
    """Write README.md, leaderboard.csv, leaderboard.json and index.html to ``out_dir``, with the
    sample browser's files (``samples/``, and ``thumbs/`` when the tasks' images can be found)
    unless ``samples`` is False; return the board.

    Every input file is validated first; an invalid one raises ``DataError`` naming it
    (or, with ``skip_invalid``, is listed under "Rejected files") before anything is written.
    """
    import shutil

    from mmbench.io import atomic_write_json, atomic_write_text
    from mmbench.leaderboard.html import to_html
    from mmbench.leaderboard.samples import write_samples
    from mmbench.leaderboard.tables import to_csv, to_json_obj, to_markdown

    board = make_board(paths, seed=seed, n_boot=n_boot, skip_invalid=skip_invalid)
    out = Path(out_dir)
    index = None
    if samples:
        if (out / "samples").is_dir():  # the build owns this folder: no chunk of an earlier board stays
            shutil.rmtree(out / "samples")
        index = write_samples(board, out, thumbnails=thumbnails)
    atomic_write_text(out / "README.md", to_markdown(board))
    atomic_write_text(out / "leaderboard.csv", to_csv(board))
    atomic_write_json(out / "leaderboard.json", to_json_obj(board))
    atomic_write_text(out / "index.html", to_html(board, index))
    return board


def board_tables(board: dict[str, Any]) -> list[Any]:
    """rich Tables for ``board``; every string from a results file is markup-escaped."""
    from rich.markup import escape
    from rich.table import Table

    from mmbench.leaderboard.tables import group_title, table_cells

    tables = []
    for task in board["tasks"]:
        for group in task["groups"]:
            header, rows = table_cells(group)
            table = Table(title=escape(f"{group_title(task, group)} · ranked by {group['primary_metric']}"),
                          title_justify="left", caption=escape(" ".join(group["notes"])) or None,
                          caption_justify="left")
            for i, name in enumerate(header):
                table.add_column(escape(name), justify="left" if i < 2 else "right", overflow="fold",
                                 min_width=12 if i == 1 else None)
            for cells in rows:
                table.add_row(*(f"[bold]{escape(t)}[/bold]" if best else escape(t) for t, best in cells))
            tables.append(table)
    return tables


def show_leaderboard(paths: Iterable[str | Path], *, seed: int = 0, n_boot: int = 1000,
                     skip_invalid: bool = False) -> list[Any]:
    """The leaderboard's tables as rich Tables (one per task and comparable group)."""
    return board_tables(make_board(paths, seed=seed, n_boot=n_boot, skip_invalid=skip_invalid))


__all__ = ["board_tables", "build_leaderboard", "make_board", "show_leaderboard"]
