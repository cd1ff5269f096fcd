"""Hugging Face Hub formats: per-model ``.eval_results/*.yaml`` files, a dataset card, and the upload.

``export_hub(board, out)`` writes::

    out/README.md                                   dataset card of the board's results dataset
    out/leaderboard.csv, out/leaderboard.json       the board's rows (as ``build`` writes them)
    out/models/<model>/.eval_results/<task>.yaml    one file per model x task, for the model's repo

Each ``.eval_results`` file follows the Hub's evaluation-results format (a YAML list of
results: ``dataset.id`` (a Hub dataset id, required), ``dataset.task_id``,
``dataset.revision``, ``value``, ``source.url``/``source.name``, ``notes``); the notes carry
what the format has no field for: the metric and its direction, the interval, the mmbench
task fingerprint and any failed samples.  A task whose Hub dataset id is unknown (the
fingerprint names none and ``dataset_ids`` has none) is skipped and reported, never written
with a made-up id; unranked rows (no successful samples) are never exported.

``push_board(folder, repo)`` uploads a folder (this export, or a built board) to the dataset
repo ``repo`` with ``HfApi().upload_folder``; ``dry_run`` lists the files and the target
instead.  Any Hub error becomes one :class:`~mmbench.errors.MMBenchError` line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    return slug[:100]


def _dataset_id(fingerprint: dict[str, Any], task: str, dataset_ids: dict[str, str]) -> str | None:
    if task in dataset_ids:
        return dataset_ids[task]
    ds = fingerprint.get("dataset") or {}
    for key in ("hub_id", "path", "name"):
        value = ds.get(key) if isinstance(ds, dict) else None
        if isinstance(value, str) and REPO_ID.match(value) and not Path(value).exists():
            return value
    return None


def eval_result(task: dict, group: dict, row: dict, *, dataset_id: str, fingerprint: dict[str, Any],
                level: float, n_boot: int, source_url: str | None) -> dict[str, Any]:
    """One ``.eval_results`` entry: the row's primary metric on the task."""
    m = group["primary_metric"]
    cell = row["metrics"][m]
    direction = group["higher_is_better"].get(m)
    notes = [f"mmbench metric {m} ({'higher' if direction else 'lower'} is better)"]
    if cell["ci"]:
        notes.append(f"{int(level * 100)}% CI [{cell['ci'][0]:.6g}, {cell['ci'][1]:.6g}] (bootstrap over images, "
                     f"{n_boot} resamples)")
    else:
        notes.append(f"no interval ({cell.get('ci_note') or 'none computed'})")
    notes.append(f"task fingerprint {group['fingerprint_hash']}")
    if group["subset_limit"] is not None:
        notes.append(f"subset: first {group['subset_limit']} samples")
    notes += row["flags"]
    dataset: dict[str, Any] = {"id": dataset_id, "task_id": task["task"]}
    revision = (fingerprint.get("dataset") or {}).get("revision")
    if isinstance(revision, str) and revision:
        dataset["revision"] = revision
    entry: dict[str, Any] = {"dataset": dataset, "value": float(cell["value"])}
    if source_url:
        entry["source"] = {"url": source_url, "name": "mmbench leaderboard"}
    entry["notes"] = "; ".join(notes)
    return entry


def dataset_card(board: dict[str, Any], *, repo: str | None, title: str) -> str:
    """README.md of the board's results dataset: YAML metadata, then what the files are and the tables."""
    import yaml

    from mmbench.leaderboard.tables import to_markdown

    meta = {"pretty_name": title, "tags": ["leaderboard", "evaluation", "mmbench", "vision-language"],
            "configs": [{"config_name": "default", "data_files": [{"split": "results", "path": "leaderboard.csv"}]}]}
    tables = to_markdown(board).split("\n", 1)[1]  # drop the "# Leaderboard" heading
    where = f" (`{repo}`)" if repo else ""
    return ("---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n"
            f"# {title}\n\n"
            f"Results dataset{where} of an mmbench leaderboard: one row per model and task in "
            "`leaderboard.csv` / `leaderboard.json` (metric values, intervals, ranks, tie flags, failures, "
            "throughput, memory, parameters) and, under `models/<model>/.eval_results/`, each model's results in "
            "the Hub's evaluation-results format, ready to copy into the model's repository. Rows are ranked only "
            "within groups of identical task fingerprints; see the notes under each table.\n"
            + tables)


def export_hub(board: dict[str, Any], out: str | Path, *, repo: str | None = None,
               dataset_ids: dict[str, str] | None = None, title: str = "mmbench leaderboard results") -> dict[str, Any]:
    """Write the Hub files for ``board`` under ``out``; return ``{"files": [...], "skipped": [reason, ...]}``."""
    import yaml

    from mmbench.io import atomic_write_json, atomic_write_text
    from mmbench.leaderboard.tables import to_csv, to_json_obj
    from mmbench.results import RunResult

    if repo is not None and not REPO_ID.match(repo):
        raise MMBenchError(f"--repo must be ORG/NAME, got {repo!r}")
    dataset_ids = dict(dataset_ids or {})
    out = Path(out)
    source_url = f"https://huggingface.co/datasets/{repo}" if repo else None
    files: list[str] = []
    skipped: list[str] = []
    per_model: dict[str, list[tuple[str, list[dict]]]] = {}
    slugs: dict[str, str] = {}
    for task in board["tasks"]:
        for group in task["groups"]:
            for row in group["rows"]:
                if not row["ranked"]:
                    skipped.append(f"{row['model']} on {task['task']}: not ranked ({row['unranked_reason']})")
                    continue
                fingerprint = RunResult.load(row["results"]).tasks[task["task"]].fingerprint
                dataset_id = _dataset_id(fingerprint, task["task"], dataset_ids)
                if dataset_id is None:
                    skipped.append(f"{row['model']} on {task['task']}: no Hub dataset id (pass --dataset-id "
                                   f"{task['task']}=ORG/NAME)")
                    continue
                entry = eval_result(task, group, row, dataset_id=dataset_id, fingerprint=fingerprint,
                                    level=board["level"], n_boot=board["n_boot"], source_url=source_url)
                slug = slugs.setdefault(row["model"], _slug(row["model"]))
                if list(slugs.values()).count(slug) > 1:
                    slug = slugs[row["model"]] = f"{slug}-{len(slugs)}"
                name = task["task"] if len(task["groups"]) == 1 else f"{task['task']}_group{group['index']}"
                per_model.setdefault(slug, []).append((_slug(name), [entry]))
    for slug, entries in per_model.items():
        for name, data in entries:
            rel = f"models/{slug}/.eval_results/{name}.yaml"
            atomic_write_text(out / rel, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
            files.append(rel)
    atomic_write_text(out / "README.md", dataset_card(board, repo=repo, title=title))
    atomic_write_text(out / "leaderboard.csv", to_csv(board))
    atomic_write_json(out / "leaderboard.json", to_json_obj(board))
    files += ["README.md", "leaderboard.csv", "leaderboard.json"]
    return {"files": sorted(files), "skipped": skipped}


def upload_plan(folder: str | Path, repo: str) -> dict[str, Any]:
    """What ``push`` uploads: ``{"target", "url", "files"}`` (every regular file under ``folder``)."""
    if not REPO_ID.match(repo):
        raise MMBenchError(f"--repo must be ORG/NAME, got {repo!r}")
    root = Path(folder)
    if not root.is_dir():
        raise MMBenchError(f"{folder}: not a folder")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    if not files:
        raise MMBenchError(f"{folder}: no files to upload")
    return {"target": f"datasets/{repo}", "url": f"https://huggingface.co/datasets/{repo}", "files": files}


def push_board(folder: str | Path, repo: str, *, dry_run: bool = False, endpoint: str | None = None,
               token: str | None = None) -> dict[str, Any]:
    """Upload ``folder`` to the dataset repo ``repo`` (created if missing); with ``dry_run`` only
    return the plan.  A failure (no network, no token, refused) raises a one-line MMBenchError."""
    plan = upload_plan(folder, repo)
    if dry_run:
        return plan
    try:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=endpoint, token=token)
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset",
                          commit_message="Upload mmbench leaderboard")
    except Exception as exc:  # noqa: BLE001 - every Hub/network error is reported as one line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise MMBenchError(f"could not push to {plan['url']}: {type(exc).__name__}: {first}") from None
    return plan
