"""The ``mmbench`` command line.  Each command is a thin wrapper over one Python function."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmbench import __version__
from mmbench.cli_errors import command
from mmbench.errors import MMBenchError
from mmbench.leaderboard.cli import leaderboard_app

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="mmbench: evaluate vision-language models with numbers you can trust.")
score_app = typer.Typer(help="Re-score prediction files without running a model.")
app.add_typer(score_app, name="score")
app.add_typer(leaderboard_app, name="leaderboard")
console = Console(stderr=True)
out = Console()


class Kind(str, Enum):
    tasks = "tasks"
    models = "models"
    metrics = "metrics"
    loaders = "loaders"


def print_task(task: Any, title: str, *, caption: str | None = None, table: bool = True, digits: int = 4,
               rank_digits: int = 2, with_backend: bool = False) -> None:
    """How a :class:`~mmbench.results.TaskResult` is shown, by ``mmbench eval`` and every
    ``mmbench score`` command: a table on stdout of metric and value (``digits`` decimals,
    ``*_rank`` keys ``rank_digits``; with ``with_backend`` how each was computed), then the
    unavailable metrics with their reasons (in the backend column, if there is one); then the
    warnings on stderr.  Without ``table`` (``--json``, whose object goes to stdout alone) the
    unavailable metrics go to stderr too."""
    if table:
        grid = Table(title=title, title_justify="left", caption=caption)
        grid.add_column("metric")
        grid.add_column("value", justify="right")
        if with_backend:
            grid.add_column("backend", style="dim")
        for metric, value in task.metrics.items():
            cells = [metric, f"{value:.{rank_digits if metric.endswith('_rank') else digits}f}"]
            if with_backend:
                cells.append(", ".join(f"{k}={v}" for k, v in task.metric_backends.get(metric, {}).items()))
            grid.add_row(*cells)
        for metric, reason in task.metrics_unavailable.items():  # the reason where it has room
            grid.add_row(metric, *(["[dim]unavailable[/]", f"[dim]{escape(reason)}[/]"] if with_backend
                                   else [f"[dim]unavailable: {escape(reason)}[/]"]))
        out.print(grid)
    else:
        for metric, reason in task.metrics_unavailable.items():
            console.print(f"[dim]{metric} unavailable: {escape(reason)}[/]", highlight=False, soft_wrap=True)
    for warning in task.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


def _print_scored(values: Any, title: str, *, metrics: list[str], family: str, as_json: bool,
                  json_keys: tuple[str, ...] | None = None, **table_format: Any) -> None:
    """What every ``mmbench score`` command prints: the values (``MetricValues`` of the metrics
    named ``metrics``) as a :class:`~mmbench.results.TaskResult` through :func:`print_task`, or
    with ``as_json`` its metrics (``json_keys`` only, if given) as one JSON object on stdout."""
    from mmbench.results import TaskResult

    task = TaskResult.from_values(values, metrics=metrics, family=family)
    print_task(task, title, table=not as_json, **table_format)
    if as_json:
        corpus = task.metrics if json_keys is None else {k: task.metrics[k] for k in json_keys}
        sys.stdout.write(json.dumps(corpus) + "\n")


def _parse_model_args(items: list[str]) -> dict[str, Any]:
    out_args: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise MMBenchError(f"--model-arg expects key=value, got {item!r}")
        try:
            out_args[key] = json.loads(value)
        except json.JSONDecodeError:
            out_args[key] = value
    return out_args


class _PlainProgress:
    """Progress for logs (``| tee``, nohup, a scheduler's log file): one flushed line when a step
    starts, then at most one line per ``every`` seconds and one when it is done."""

    def __init__(self, every: float = 10.0):
        self.every = every

    def __enter__(self) -> "_PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def factory(self, description: str, total: int):
        import time

        state = {"done": 0, "last": time.monotonic(), "start": time.monotonic()}
        self._line(f"{description}: 0/{total}")

        def advance(n: int) -> None:
            state["done"] += n
            now = time.monotonic()
            if state["done"] >= total or now - state["last"] >= self.every:
                state["last"] = now
                rate = state["done"] / max(now - state["start"], 1e-9)
                self._line(f"{description}: {state['done']}/{total}" + (f" ({rate:.1f}/s)" if total > 1 else ""))
        return advance

    @staticmethod
    def _line(text: str) -> None:
        import time

        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
        sys.stderr.flush()


def _progress():
    """A live progress bar on a terminal, plain timestamped lines otherwise."""
    if not console.is_terminal:
        plain = _PlainProgress()
        return plain, plain.factory
    return _rich_progress()


def _rich_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=console, transient=False)

    def factory(description: str, total: int):
        task_id = progress.add_task(description, total=total)
        return lambda n: progress.advance(task_id, n)

    return progress, factory


def _speed(task: Any) -> str:
    if task.samples_per_s is not None:
        return f"{task.samples_per_s} samples/s"
    if task.n_computed == 0 and task.n_cached:
        return "all from the prediction cache (no model time)"
    return "no samples computed"


def print_results(results: Any, *, debug: bool = False) -> None:
    """One table per task of a run (a :class:`~mmbench.results.RunResult` or its JSON form); with
    ``debug`` the first failed sample's traceback, read from the run's failures file."""
    from mmbench.results import RunResult

    run = results if isinstance(results, RunResult) else RunResult.from_json(results)
    out_dir = run.config.get("output")
    for note in run.notes:
        console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    for name, task in run.tasks.items():
        print_task(task, f"{name}  ·  {run.model_name}", rank_digits=4,
                   caption=f"{task.n_samples} samples, {task.n_failed} failed, {task.n_cached} from cache · "
                           f"{_speed(task)} · fingerprint {task.fingerprint_hash}")
        if task.batch_invariance is not None:
            inv = task.batch_invariance
            console.print(f"batch invariance: {inv['mismatches']} of {inv['n_checked']} outputs differ between "
                          f"batch size 1 and {inv['batch_size']}", highlight=False)
        for failure in task.failures[:5]:
            console.print(f"[red]failed[/] {escape(failure['id'])}: {escape(failure['error'])}", highlight=False,
                          soft_wrap=True)
        if task.failures_file and out_dir:
            console.print(f"all {task.n_failed} failures: {out_dir}/{task.failures_file}", highlight=False,
                          soft_wrap=True)
            if debug:
                _print_first_traceback(f"{out_dir}/{task.failures_file}")


def _print_first_traceback(path: str) -> None:
    from mmbench.io import read_jsonl

    for _, line in read_jsonl(path):
        if line.get("traceback"):
            console.print(f"first traceback ({escape(str(line.get('id')))}):", highlight=False)
            console.print(line["traceback"], markup=False, highlight=False, soft_wrap=True)
            return
    console.print("(no failure has a traceback: they are data errors, described above)", highlight=False)


@command(app, "eval")
def eval_command(
    model: Annotated[Optional[str], typer.Option(
        help="Registered model name, local checkpoint/LoRA directory, or hub id. Without --model and --tasks: "
             "the default run (each reference model on its easy-VQA task).")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated task names (`mmbench list tasks`).")]
    = None,
    adapter: Annotated[Optional[str], typer.Option(help="Force an adapter (hf-captioner, hf-vlm, ...).")] = None,
    batch_size: Annotated[str, typer.Option(help="Samples per model call, or 'auto' (largest that fits).")] = "8",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")] = "auto",
    limit: Annotated[Optional[int], typer.Option(help="Only the first N samples of each task (marked as a subset).")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed for Python, NumPy and torch.")] = 0,
    output: Annotated[Optional[str], typer.Option(help="Run folder (default runs/<timestamp>-<model>).")] = None,
    include: Annotated[Optional[list[str]], typer.Option(help="Extra folder of task YAML files (repeatable).")]
    = None,
    on_error: Annotated[str, typer.Option(help="continue: record failed samples; fail: stop at the first.")]
    = "continue",
    tokenizer: Annotated[str, typer.Option(help="Caption tokenizer: ptb (pure Python) or ptb-java (official jar).")]
    = "ptb",
    cache: Annotated[bool, typer.Option(help="Reuse and store finished samples (resume after a crash).")] = True,
    cache_dir: Annotated[Optional[str], typer.Option(help="Cache folder (default $MMBENCH_CACHE_DIR or "
                                                         "~/.cache/mmbench).")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (HF adapters).")] = False,
    quantize: Annotated[Optional[str], typer.Option(
        help="Quantize the model while it loads (HF adapters): int8 or int4 (torchao weight-only, CPU and GPU), "
             "bnb-int8 or bnb-nf4 (bitsandbytes, CUDA only). Fingerprinted: never shares cache or leaderboard "
             "rows with the full-precision model.")] = None,
    check_batch_invariance: Annotated[bool, typer.Option(
        help="Also run up to 16 samples per task at batch size 1 and report how many outputs differ.")] = False,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow a checkpoint's own Python code to run.")] = False,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision (commit sha) of --model.")] = None,
    model_arg: Annotated[Optional[list[str]], typer.Option(help="Extra adapter argument key=value (repeatable).")]
    = None,
    threads: Annotated[Optional[int], typer.Option(
        help="torch CPU threads (default: one per core). On a shared or busy machine 1 is often much faster.")]
    = None,
    max_image_pixels: Annotated[Optional[int], typer.Option(
        help="Images above this many pixels are decoded reduced (JPEG) or refused as that sample's error "
             "(default 64,000,000).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Print the first failed sample's full traceback.")]
    = False,
) -> None:
    """Evaluate a model on tasks; write results.json, predictions/ (and failures/) to the run folder.

    Exit status: 0 when every task scored at least one sample; 1 when some task's samples all
    failed (everything computed is still written); 2 for a usage or input error; 130 when
    interrupted (finished batches are in the prediction cache: the same command resumes)."""
    from mmbench.runner import EvalConfig, evaluate, evaluate_default_suite

    default_run = model is None and tasks is None
    if not default_run and (model is None or tasks is None):
        raise MMBenchError("pass both --model and --tasks (or neither, for the default run)")
    cfg = EvalConfig(model=model or "", tasks=[tasks] if tasks is not None else [], adapter=adapter, batch_size=batch_size,
                     device=device, dtype=dtype, limit=limit, seed=seed, output=output, include=include or [],
                     on_error=on_error, tokenizer=tokenizer, trust_remote_code=trust_remote_code,
                     cache=cache, cache_dir=cache_dir, check_batch_invariance=check_batch_invariance, compile=compile,
                     revision=revision, model_args=_parse_model_args(model_arg or []), threads=threads,
                     max_image_pixels=max_image_pixels, quantize=quantize)
    progress, factory = _progress()
    try:
        with progress:
            runs = evaluate_default_suite(cfg, progress=factory) if default_run else [evaluate(cfg, progress=factory)]
    except KeyboardInterrupt:
        console.print("[yellow]interrupted.[/] Finished batches are in the prediction cache: run the same "
                      "command again to resume." if cache else "[yellow]interrupted.[/]", soft_wrap=True)
        raise typer.Exit(130) from None
    dead = []
    for results in runs:
        if results.get("rank", 0) != 0:
            return  # under torchrun, rank 0 reports
        print_results(results, debug=debug)
        console.print(f"results: {results['config']['output']}/results.json", highlight=False)
        dead += [f"{results['model']['name']} on {name}" for name, task in results["tasks"].items()
                 if task["n_samples"] and task["n_failed"] == task["n_samples"]]
    if dead:
        console.print(f"[bold red]error:[/] every sample failed in {len(dead)} task(s): {escape('; '.join(dead))}. "
                      "Their errors are in the run folder's failures/ (the first traceback with --debug).",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@command(app, "list")
def list_command(kind: Annotated[Kind, typer.Argument(help="tasks, models, metrics or loaders (dataset loaders)")],
                 include: Annotated[Optional[list[str]], typer.Option(help="Extra task folder.")] = None) -> None:
    """List what is registered, with a one-line description each (a plugin that cannot be loaded is
    listed as "broken plugin: <its error>")."""
    from mmbench.catalog import list_registered

    rows = list_registered(kind.value, include=include or [])
    table = Table(show_header=True)
    table.add_column(kind.value[:-1])
    table.add_column("description")
    table.add_column("source", style="dim")
    for name, description, source in rows:
        table.add_row(name, description, source)
    out.print(table)


@command(app, "pin")
def pin_command(
    task_files: Annotated[list[str], typer.Argument(help="Task YAML files whose hub dataset revision to pin.")],
    force: Annotated[bool, typer.Option(help="Move an already pinned revision to the current commit.")] = False,
) -> None:
    """Write each hub task's current dataset commit into its file (`revision: "<sha>"`), keeping the
    file's comments; needs the hub (and HF_TOKEN for gated datasets)."""
    from mmbench.pin import pin_task_file

    for path in task_files:
        sha, previous = pin_task_file(path, force=force)
        out.print(f"{escape(path)}: revision {sha}" + (f" (was {escape(str(previous))})" if previous else ""))


@command(app, "validate")
def validate_command(
    tasks: Annotated[str, typer.Option(help="Comma-separated task names (`mmbench list tasks`).")],
    include: Annotated[Optional[list[str]], typer.Option(help="Extra folder of task YAML files (repeatable).")]
    = None,
    model: Annotated[Optional[str], typer.Option(
        help="Show the prompts as this model gets them (its chat template, from the processor: no weights "
             "are loaded) and check it can serve the tasks.")] = None,
    adapter: Annotated[Optional[str], typer.Option(help="Force an adapter for --model, as in eval.")] = None,
    n: Annotated[int, typer.Option("--n", help="Samples checked per task (rows, images, prompts).")] = 3,
) -> None:
    """Check task files and data before a run: columns, row errors, images, prompt placeholders;
    print the exact prompts of the first samples.  Loads no model weights.  Exit code 2 on any problem."""
    from mmbench.validate import validate_tasks

    reports = validate_tasks(tasks, include=include or [], n=n, model=model, adapter=adapter)
    for report in reports:
        out.print(f"[bold]{escape(report.task)}[/]  [dim]{escape(report.source)}[/]", highlight=False,
                  soft_wrap=True)
        if report.data_source:
            out.print(f"  data: {escape(report.data_source)}", highlight=False, soft_wrap=True)
        if report.source:  # the task was built
            out.print(f"  checked: {report.n_checked} samples, {report.n_images} images decoded", highlight=False)
        for problem in report.problems:
            out.print(f"  [bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        for note in report.notes:
            out.print(f"  [dim]note: {escape(note)}[/]", highlight=False, soft_wrap=True)
        for request_id, text in report.prompts:
            out.print(f"  prompt {escape(request_id)}:", highlight=False, soft_wrap=True)
            out.print("\n".join(f"    {line}" for line in text.split("\n")), markup=False, highlight=False,
                      soft_wrap=True)
    bad = [r.task for r in reports if not r.ok]
    if bad:
        console.print(f"[bold red]{len(bad)} of {len(reports)} task(s) have problems:[/] {escape(', '.join(bad))}",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    console.print(f"{len(reports)} task(s) ok", highlight=False)


@command(app, "compare")
def compare_command(
    base: Annotated[str, typer.Argument(help="The base run: a run folder or its results.json.")],
    candidates: Annotated[list[str], typer.Argument(help="One or more candidate runs (folders or results.json).")],
    out_dir: Annotated[Optional[str], typer.Option("--out", help="Write compare.json, compare.md and compare.html "
                                                                 "here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON object on stdout "
                                                         "(docs/compare.md) instead of tables.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and permutation resamples.")] = 0,
    n_boot: Annotated[int, typer.Option(help="Resamples for the intervals and the permutation tests.")] = 2000,
    flip_threshold: Annotated[float, typer.Option(
        help="A graded per-sample score above this counts as right, for flips (0/1 scores: 1 is right).")] = 0.0,
    max_items: Annotated[int, typer.Option(help="Flipped items listed per direction and task (counts are "
                                                "always complete).")] = 200,
    task_data: Annotated[bool, typer.Option(help="Rebuild the tasks' samples for questions and image thumbnails "
                                                 "of flipped items.")] = True,
) -> None:
    """Compare candidate runs with a base run: per task and metric the difference, a paired 95%
    interval and a paired test (Holm-corrected), the items that flipped, and the cost.  Tasks
    whose fingerprints differ are not compared (the output says what differs)."""
    from mmbench.compare import compare_runs, write_report
    from mmbench.compare.report import finite, json_view, print_terminal

    result = compare_runs(base, candidates, seed=seed, n_boot=n_boot, flip_threshold=flip_threshold,
                          max_items=max_items, task_data=task_data)
    if out_dir is not None:
        paths = write_report(result, out_dir)
    if as_json:
        sys.stdout.write(json.dumps(finite(json_view(result)), ensure_ascii=False, allow_nan=False) + "\n")
    else:
        print_terminal(result, out)
    if out_dir is not None:
        console.print(f"wrote {paths['markdown']}, {paths['json']}, {paths['html']}", highlight=False,
                      soft_wrap=True)


@command(score_app, "captioning")
def score_captioning_command(
    predictions: Annotated[str, typer.Option(
        help="JSONL: {image_id|id, prediction|caption} per line (a run's predictions/<task>.jsonl as it is), "
             "or a COCO results JSON array [{image_id, caption}].")],
    references: Annotated[Optional[str], typer.Option(
        help="JSONL: {image_id|id, references: [...]} per line, or a COCO captions file {images, annotations: "
             "[{image_id, id, caption}]} (then the predictions' images are scored, as COCOEvalCap does). "
             "Default: the predictions' own references.")] = None,
    tokenizer: Annotated[str, typer.Option(help="ptb (pure Python) or ptb-java (official jar).")] = "ptb",
    no_meteor: Annotated[bool, typer.Option("--no-meteor", help="Skip METEOR (it needs Java, ~7 s).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object of metric -> value.")] = False,
) -> None:
    """Score caption predictions with pycocoevalcap's metrics (BLEU, METEOR, ROUGE-L, CIDEr-D).

    A caption sample is identified by image_id, else id (both present and different: an error)."""
    from mmbench.scoring import score_captioning

    values = score_captioning(predictions, references, tokenizer=tokenizer, meteor=False if no_meteor else None)
    _print_scored(values, "captioning", metrics=["coco-caption"], family="captioning", as_json=as_json, digits=6,
                  with_backend=True)


@command(score_app, "vqa")
def score_vqa_command(
    predictions: Annotated[str, typer.Option(
        help="JSONL: {question_id|id, prediction|answer} per line (a run's predictions/<task>.jsonl as it is), "
             "or a VQA results JSON array [{question_id, answer}].")],
    references: Annotated[Optional[str], typer.Option(
        "--references", "--annotations",
        help="JSONL: {question_id|id, answers: [...], answer_type?, question_type?} per line, or an official VQA "
             "annotations file {annotations: [...]}. Default: the predictions' own references.")] = None,
    questions: Annotated[Optional[str], typer.Option(
        help="Official VQA questions file {questions: [...]}, checked against the annotations (same question "
             "and image ids).")] = None,
    metric: Annotated[Optional[str], typer.Option(
        help="vqa-accuracy (official, 10 human answers) or exact-match. Default: the metric the predictions "
             "file was scored with (its scores), else vqa-accuracy.")] = None,
    answers_per_question: Annotated[Optional[int], typer.Option(
        help="Required answers per question (0: any). Default: 10 for vqa-accuracy against --references, "
             "not checked otherwise.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object of metric -> value, as results.json.")]
    = False,
) -> None:
    """VQA answer scores (official VQA accuracy, GT-Vision-Lab/VQA rules, or exact match), overall and per
    answer/question type, as fractions.

    A VQA sample is identified by question_id, else id (both present and different: an error)."""
    from mmbench.scoring import VQA_METRICS, score_vqa_files

    values = score_vqa_files(predictions, references, questions=questions, metric=metric,
                             answers_per_question="auto" if answers_per_question is None else answers_per_question)
    # the metric score_vqa_files chose (--metric, else the one the file records), as its corpus keys say
    computed = next((m for m, key in VQA_METRICS.items() if key in values.corpus), metric or "vqa-accuracy")
    _print_scored(values, "VQA", metrics=[computed], family="vqa", as_json=as_json)


@command(score_app, "retrieval")
def score_retrieval_command(
    image_embeddings: Annotated[str, typer.Option(help="Image embeddings, a 2-D .npy array (one row per image).")],
    text_embeddings: Annotated[str, typer.Option(help="Text embeddings, a 2-D .npy array (one row per caption).")],
    text_to_image: Annotated[str, typer.Option(help="JSON list: the image row of each text row.")],
    image_groups: Annotated[Optional[str], typer.Option(
        help="JSON list: a group label per image; images of a group are interchangeable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=(
        "Print {t2i,i2t}_R@1,5,10, {t2i,i2t}_P@1,5,10, {t2i,i2t}_mAP and {t2i,i2t}_R-precision as fractions."))]
    = False,
) -> None:
    """Recall@k both ways from precomputed embeddings, as CLIP_benchmark, plus precision@k,
    R-precision and mAP (pessimistic ties; docs/retrieval.md).

    t2i: a text queries the images (hit if its image is in the top k); i2t: an image queries
    the texts (hit if any of its captions is in the top k)."""
    from mmbench.scoring import RETRIEVAL_JSON_KEYS, score_retrieval_files

    values = score_retrieval_files(image_embeddings, text_embeddings, text_to_image, image_groups=image_groups)
    _print_scored(values, "retrieval", metrics=["retrieval-recall"], family="retrieval", as_json=as_json,
                  json_keys=RETRIEVAL_JSON_KEYS)


@command(score_app, "zeroshot")
def score_zeroshot_command(
    labels: Annotated[str, typer.Option(help="JSON list: the true class index of each image row.")],
    image_embeddings: Annotated[Optional[str], typer.Option(
        help="Image embeddings, a 2-D .npy array (one row per image).")] = None,
    class_embeddings: Annotated[Optional[str], typer.Option(
        help="Classifier, a 2-D .npy array: one row per class, averaged over templates and normalised.")] = None,
    class_scores: Annotated[Optional[str], typer.Option(
        help="Instead of embeddings: images x classes scores (.npy; a likelihood run's class_scores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {acc1, acc5, mean_per_class_recall}.")] = False,
) -> None:
    """Zero-shot classification acc@1, acc@5 and mean per-class recall, as CLIP_benchmark (pessimistic ties)."""
    from mmbench.scoring.zeroshot import ZEROSHOT_JSON_KEYS, score_zeroshot_files

    values = score_zeroshot_files(labels, image_embeddings=image_embeddings, class_embeddings=class_embeddings,
                                  class_scores=class_scores)
    _print_scored(values, "zero-shot classification", metrics=["zeroshot-classification"], family="zeroshot",
                  as_json=as_json, json_keys=tuple(k for k in ZEROSHOT_JSON_KEYS if k in values.corpus))


@command(score_app, "winoground")
def score_winoground_command(
    scores: Annotated[str, typer.Option(
        help='JSONL: {"id", "c0_i0", "c0_i1", "c1_i0", "c1_i1"[, "tag"]} per line (caption j with image k; '
             "a run's predictions/<task>.scores.jsonl).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {text_score, image_score, group_score}.")] = False,
) -> None:
    """Winoground text, image and group scores with the official strict inequalities (a tie fails)."""
    from mmbench.scoring.compositionality import WINOGROUND_JSON_KEYS, score_winoground_files

    _print_scored(score_winoground_files(scores), "Winoground", metrics=["winoground"], family="compositionality",
                  as_json=as_json, json_keys=WINOGROUND_JSON_KEYS)


@command(score_app, "caption-choice")
def score_caption_choice_command(
    scores: Annotated[str, typer.Option(
        help='JSONL: {"id", "scores": [...], "correct"?, "group"?, "split"?} per line, scores in the official '
             "option order (a run's predictions/<task>.scores.jsonl).")],
    min_group_count: Annotated[int, typer.Option(help="macro_accuracy leaves out smaller groups (ARO VG-A: 25).")]
    = 0,
    exclude_group: Annotated[Optional[list[str]], typer.Option(
        help="A group macro_accuracy leaves out (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """Caption-choice accuracy (SugarCrepe, ARO): argmax in the official option order, first listed wins a tie."""
    from mmbench.scoring.compositionality import score_caption_choice_files

    values = score_caption_choice_files(scores, min_group_count=min_group_count,
                                        exclude_groups=tuple(exclude_group or ()))
    _print_scored(values, "caption choice", metrics=["caption-choice"], family="compositionality", as_json=as_json)


@command(score_app, "consistency")
def score_consistency_command(
    predictions: Annotated[Optional[str], typer.Option(
        help="Caption predictions JSONL ({image_id, prediction[, references]}; mmbench's own files work).")] = None,
    images: Annotated[Optional[str], typer.Option(
        help="Folder of <image_id>.<png|jpg|...> files, or a JSONL of {image_id, image: path}.")] = None,
    task: Annotated[Optional[str], typer.Option(help="Take the images from this task's samples instead.")] = None,
    pairs: Annotated[Optional[str], typer.Option(
        help="JSONL of {image: path, prompt: text}: score generated images against their prompts.")] = None,
    scorer: Annotated[str, typer.Option(
        help="Model that scores: a CLIP for clipscore (the paper: CLIP ViT-B/32), the PAC-S CLIP for pacs, a "
             "generative VLM for vqascore, a BLIP ITM head for itm.")] = "openai/clip-vit-base-patch32",
    method: Annotated[str, typer.Option(
        help="clipscore (CLIPScore/RefCLIPScore), pacs (PAC-S/RefPAC-S, w=2.0), vqascore (P('Yes'), t2v_metrics' "
             "template) or itm (BLIP P(match)).")] = "clipscore",
    no_references: Annotated[bool, typer.Option("--no-references", help="No RefCLIPScore / RefPAC-S.")]
    = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the method's values as numbers.")] = False,
) -> None:
    """Image-text consistency of captions or prompt/image pairs: CLIPScore and RefCLIPScore (Hessel et al.
    2021, as jmhessel/clipscore), PAC-S, VQAScore or ITM (--method)."""
    from mmbench.scoring import score_consistency_files
    from mmbench.scoring.consistency import METHODS

    values = score_consistency_files(predictions=predictions, images=images, task=task, pairs=pairs,
                                     scorer=scorer, references=not no_references, device=device, method=method)
    _print_scored(values, f"consistency ({escape(method)}, scorer {escape(scorer)})", metrics=[METHODS[method][0]],
                  family="consistency", as_json=as_json)


_REFERENCES_OWN = " Default: the predictions' own references and meta (a run's predictions/<task>.jsonl)."
_PREDICTIONS_HELP = ("JSONL: {question_id|id, prediction|answer} per line (a run's predictions/<task>.jsonl as it is), "
                     "or a JSON array of such objects.")


@command(score_app, "anls")
def score_anls_command(
    predictions: Annotated[str, typer.Option(help=_PREDICTIONS_HELP)],
    references: Annotated[Optional[str], typer.Option(
        help="JSONL: {question_id|id, answers: [...]} per line." + _REFERENCES_OWN)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {anls} as a JSON object.")] = False,
) -> None:
    """ANLS (tau 0.5) as the official DocVQA / InfographicVQA evaluation: lower-cased, spaces collapsed,
    best over the reference answers."""
    from mmbench.scoring import score_anls_files

    _print_scored(score_anls_files(predictions, references), "ANLS", metrics=["anls"], family="vqa",
                  as_json=as_json)


@command(score_app, "relaxed-accuracy")
def score_relaxed_command(
    predictions: Annotated[str, typer.Option(help=_PREDICTIONS_HELP)],
    references: Annotated[Optional[str], typer.Option(
        help="JSONL: {question_id|id, answer | answers: [...], split?} per line." + _REFERENCES_OWN)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {relaxed_accuracy, relaxed_accuracy/<split>}.")]
    = False,
) -> None:
    """ChartQA relaxed accuracy (numbers within 5% of the reference, exact match otherwise; pix2struct's
    relaxed_correctness), overall and per split."""
    from mmbench.scoring import score_relaxed_files

    _print_scored(score_relaxed_files(predictions, references), "relaxed accuracy", metrics=["relaxed-accuracy"],
                  family="vqa", as_json=as_json)


@command(score_app, "pope")
def score_pope_command(
    predictions: Annotated[str, typer.Option(help=_PREDICTIONS_HELP)],
    references: Annotated[Optional[str], typer.Option(
        help="JSONL: {question_id|id, answer: yes|no, split?} per line (split: random, popular, adversarial)."
             + _REFERENCES_OWN)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print {accuracy, precision, recall, f1, yes_ratio, f1_mean?, by_split: {split: {...}}}; "
                       "an unavailable value (no yes answer: precision) is null.")] = False,
) -> None:
    """POPE: the official evaluate.py parsing (no/No/not as a word of the first sentence means no), then
    accuracy, precision, recall, F1 and yes ratio ("yes" positive), overall and per split."""
    from mmbench.scoring import pope_json, score_pope_files

    values = score_pope_files(predictions, references)
    if not as_json:
        _print_scored(values, "POPE", metrics=["pope"], family="vqa", as_json=False)
        return
    from mmbench.results import TaskResult

    print_task(TaskResult.from_values(values, metrics=["pope"], family="vqa"), "POPE", table=False)  # stderr notes
    sys.stdout.write(json.dumps(pope_json(values)) + "\n")


@command(score_app, "multiple-choice")
def score_multiple_choice_command(
    predictions: Annotated[str, typer.Option(help=_PREDICTIONS_HELP)],
    references: Annotated[Optional[str], typer.Option(
        help='JSONL: {question_id|id, options: {"A": text, "B": text, ...}, answer: letter, group?, category?} '
             "per line; group: the original question of each rotation (circular evaluation)." + _REFERENCES_OWN)]
    = None,
    circular: Annotated[bool, typer.Option(
        "--circular", help="Circular evaluation: a group counts only if every rotation is right "
                           "(circular_accuracy), and answer_changed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """Multiple-choice accuracy with MMBench's answer matching (VLMEvalKit can_infer, exact matching):
    an answer naming no option is counted in unparsed and scored wrong, never guessed."""
    from mmbench.scoring import score_multiple_choice_files

    _print_scored(score_multiple_choice_files(predictions, references, circular=circular), "multiple choice",
                  metrics=["multiple-choice"], family="vqa", as_json=as_json)


def version_callback(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_callback(ctx: typer.Context,
                  version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                                        help="Print the version.")] = False) -> None:
    """With no command, run the default evaluation (the reference captioner on easy-VQA captions)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(eval_command)


def main() -> None:
    """The ``mmbench`` console command: run it, then end the process without interpreter teardown
    (:mod:`mmbench.process_exit`: 1.3-1.9 s saved per command)."""
    from mmbench.process_exit import exit_now

    try:
        app()
    except SystemExit as exc:  # typer ends every command this way
        exit_now(exc.code)
    exit_now(0)


if __name__ == "__main__":
    main()
