"""A summary across tasks: each model's standing per task family.

Metric values of different tasks (or of different comparable groups of one task) are never
averaged: they are on different scales and from different data.  What is summarised is each
model's *rank within its comparable group*, for the groups of a family that rank at least two
models, as the mean rank and the number of tasks it was evaluated on.

>>> board = {"tasks": [
...     {"task": "a", "family": "vqa", "groups": [{"index": 1, "rows": [
...         {"model": "x", "rank": 1, "ranked": True}, {"model": "y", "rank": 2, "ranked": True}]}]},
...     {"task": "b", "family": "vqa", "groups": [{"index": 1, "rows": [
...         {"model": "y", "rank": 1, "ranked": True}, {"model": "x", "rank": 1, "ranked": True}]}]}]}
>>> [(m["model"], m["mean_rank"], m["n_tasks"]) for m in family_summaries(board)[0]["models"]]
[('x', 1.0, 2), ('y', 1.5, 2)]
"""

from __future__ import annotations

from typing import Any


def family_summaries(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Per family with two or more tasks: ``{"family", "columns": [{"task", "group", "n_ranked"}],
    "models": [{"model", "ranks": [rank | None per column], "mean_rank", "n_ranked", "n_tasks"}]}``,
    models ordered by mean rank (models ranked nowhere last)."""
    families: dict[str, list[dict]] = {}
    for task in board["tasks"]:
        families.setdefault(task["family"], []).append(task)
    out = []
    for family, tasks in families.items():
        if len(tasks) < 2:
            continue
        columns, ranks_by_model, tasks_by_model = [], {}, {}
        for task in tasks:
            for group in task["groups"]:
                for r in group["rows"]:
                    tasks_by_model.setdefault(r["model"], set()).add(task["task"])
                ranked = [r for r in group["rows"] if r["ranked"]]
                if len({r["model"] for r in ranked}) < 2:  # ranks nothing against anything
                    continue
                col = len(columns)
                columns.append({"task": task["task"], "group": group["index"], "n_groups": len(task["groups"]),
                                "n_ranked": len(ranked)})
                for r in ranked:
                    best = ranks_by_model.setdefault(r["model"], {}).get(col)
                    ranks_by_model[r["model"]][col] = r["rank"] if best is None else min(best, r["rank"])
        models = []
        for model, n_tasks in ((m, len(t)) for m, t in tasks_by_model.items()):
            ranks = [ranks_by_model.get(model, {}).get(c) for c in range(len(columns))]
            got = [x for x in ranks if x is not None]
            models.append({"model": model, "ranks": ranks, "mean_rank": sum(got) / len(got) if got else None,
                           "n_ranked": len(got), "n_tasks": n_tasks})
        models.sort(key=lambda m: (m["mean_rank"] is None, m["mean_rank"] or 0, -m["n_ranked"], m["model"]))
        out.append({"family": family, "tasks": [t["task"] for t in tasks], "columns": columns, "models": models})
    return out


def category_groups(board: dict[str, Any]) -> list[tuple[dict, dict, str]]:
    """``(task, group, prefix)`` for every group with a category breakdown (two or more categories)."""
    return [(task, group, prefix) for task in board["tasks"] for group in task["groups"]
            for prefix, keys in group.get("categories", {}).items() if len(keys) >= 2]
