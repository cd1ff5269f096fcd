"""The bad-input corpus (issue #16, "Done when"): hostile or mistaken input of every kind, run
through the real command line (typer's CliRunner on ``mmbench.cli.app``), each case asserting
the exact behaviour a user gets:

* a **per-sample error** -- the sample's ``error`` in ``predictions/<task>.jsonl`` names the
  file or field, the line's id names the sample, the other samples are scored, exit 0;
* or **one** ``error:`` line naming the file (and line), sample id and field, and exit 2
  (a user or input error) -- never a traceback;
* exit 1 only when a run completed and every sample of a task failed.

One table per kind of input (images, data files, task YAML, score inputs, results files, CLI
options, concurrent runs).  A case is a name, a function that writes its input into its own
folder and returns the command line, the exit status and the fragments the error must hold.
The model is instant (the example plugin's ``example-echo`` captions every image with its size),
so no weights load.  Shared inputs (good images and rows, the image run) are built once per module.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmbench.cli import app
from tests.helpers import CAPTIONS, read_jsonl

# PIL warns at open above its own 89 MP threshold; load_image then refuses the image itself
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

runner = CliRunner()


@dataclass(frozen=True)
class Case:
    """One bad input: ``argv(root, folder)`` writes it under ``folder`` and returns the command line."""

    name: str
    argv: Callable[[Path, Path], list[str]]
    exit: int
    says: tuple[str, ...]  # fragments of the one error line; "{root}"/"{folder}" are filled in


def _invoke(argv: list[str]):
    result = runner.invoke(app, argv)
    # CliRunner catches an uncaught exception: a bug shows as result.exception, not as "Traceback" text
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert "Traceback" not in result.output, result.output
    return result


def _error_line(output: str) -> str:
    """The single ``error:`` line; it is the last line printed."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    return " ".join(errors[0].split())


def _check(case: Case, root: Path, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    result = _invoke(case.argv(root, folder))
    assert result.exit_code == case.exit, result.output
    line = _error_line(result.output)
    for fragment in case.says:
        fragment = fragment.replace("{root}", str(root)).replace("{folder}", str(folder))
        assert fragment in line, (fragment, line)
    return line


# ------------------------------------------------------------------ shared inputs (built once)

def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _bomb_png(path: Path, width: int, height: int) -> None:
    """A valid all-black 1-bit PNG written row by row: 13,000 x 13,000 is a ~20 KB file."""
    row = b"\x00" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


TASK = """\
name: {name}
family: captioning
dataset:
  path: json
  data_files: {data}
  split: train
  columns: {{id: image_id, image: image, references: captions}}
generation: {{max_new_tokens: 6}}
metrics: [example-length]
"""


def _task_file(folder: Path, name: str, data: Path | str, extra: str = "", text: str | None = None) -> Path:
    """A captioning task file ``<name>.yaml`` in ``folder`` (scored by the plugin's example-length)."""
    text = TASK.format(name=name, data=data) if text is None else text
    (folder / f"{name}.yaml").write_text(text + extra)
    return folder / f"{name}.yaml"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """``data/``: six good 32 x 32 PNGs and ``good.jsonl`` (rows img0..img5) the cases share."""
    root = tmp_path_factory.mktemp("corpus")
    data = root / "data"
    data.mkdir()
    rows = []
    for i in range(6):
        rng = np.random.RandomState(i)
        Image.fromarray((rng.rand(32, 32, 3) * 255).astype("uint8")).save(data / f"img{i}.png")
        rows.append({"image_id": f"img{i}", "image": f"img{i}.png", "captions": CAPTIONS[i],
                     "question": "what colour is the shape?"})
    _jsonl(data / "good.jsonl", rows)
    return root


def _eval(model: str, task: str, include: Path, output: Path, *extra: str) -> list[str]:
    # module-scoped runs start before the per-test cache fixture: never the user's cache
    return ["eval", "--model", model, "--tasks", task, "--include", str(include), "--output", str(output),
            "--no-cache", *extra]


def _good_rows(root: Path, n: int = 3) -> list[dict]:
    return [{**r, "image": str(root / "data" / r["image"])} for r in read_jsonl(root / "data" / "good.jsonl")[:n]]


# ------------------------------------------------------------------ images: each bad one is its sample's error

def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: 20 x 10 stored, 10 x 20 shown
    Image.new("RGB", (20, 10), "red").save(path, exif=exif)


def _sixteen_bit(path: Path) -> None:
    Image.fromarray((np.arange(200, dtype=np.uint32).reshape(10, 20) * 300).astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"


def _palette_transparent(path: Path) -> None:
    img = Image.new("P", (12, 8))
    img.putpalette([255, 0, 0, 0, 255, 0] * 128)
    img.save(path, transparency=0)


def _truncated(path: Path) -> None:
    buf = Path(path).with_suffix(".full.png")
    Image.fromarray((np.random.RandomState(7).rand(64, 64, 3) * 255).astype("uint8")).save(buf)
    path.write_bytes(buf.read_bytes()[:300])


#: sample id -> (file name, how to make it, fragments of its error or None when it must be scored)
IMAGES = {
    "truncated": ("truncated.png", _truncated, ("cannot decode image", "truncated")),
    "not_an_image": ("not_an_image.png", lambda p: p.write_text("hello, I am text"),
                     ("cannot decode image (UnidentifiedImageError: not a known image format)",)),
    "bomb": ("bomb.png", lambda p: _bomb_png(p, 13_000, 13_000),
             ("image is 13000x13000 (169,000,000 pixels), over the 64,000,000-pixel limit (--max-image-pixels); "
              + "not decoded",)),
    "fifo": ("fifo.png", lambda p: os.mkfifo(p), ("not a regular file (a FIFO)",)),
    "directory": ("directory.png", lambda p: p.mkdir(), ("not a regular file (a directory)",)),
    "missing": ("missing.png", lambda p: None, ("image file not found",)),
    "exif_rotated": ("exif.jpg", _exif_rotated, None),
    "sixteen_bit": ("deep.png", _sixteen_bit, None),
    "palette_transparency": ("palette.png", _palette_transparent, None),
}
#: what example-echo says about the images that must succeed (EXIF rotation applied: 10 x 20)
IMAGE_CAPTIONS = {"exif_rotated": "an image of 10 by 20 pixels", "sixteen_bit": "an image of 20 by 10 pixels",
                  "palette_transparency": "an image of 12 by 8 pixels"}


@pytest.fixture(scope="module")
def image_run(root: Path) -> tuple[Path, str, dict[str, dict], dict[str, dict]]:
    """One run over three good images and every image case: (images folder, output, predictions
    by id, failures by id)."""
    folder = root / "images"
    folder.mkdir()
    rows = _good_rows(root)
    for sid, (file, make, _) in IMAGES.items():
        make(folder / file)
        rows.append({"image_id": sid, "image": file, "captions": ["a picture"]})
    _jsonl(folder / "data.jsonl", rows)
    _task_file(folder, "corpus_images", "data.jsonl")
    out = root / "images-run"
    result = _invoke(_eval("example-echo", "corpus_images", folder, out))
    assert result.exit_code == 0, result.output  # bad samples recorded, the rest scored
    predictions = {line["id"]: line for line in read_jsonl(out / "predictions" / "corpus_images.jsonl")}
    failures = {line["id"]: line for line in read_jsonl(out / "failures" / "corpus_images.jsonl")}
    return folder, result.output, predictions, failures


@pytest.mark.parametrize("sid", list(IMAGES))
def test_images(image_run, sid):
    folder, _, predictions, failures = image_run
    assert set(predictions) == {"img0", "img1", "img2", *IMAGES}
    assert all(predictions[f"img{i}"]["error"] is None and predictions[f"img{i}"]["scores"] for i in range(3))
    file, _, says = IMAGES[sid]
    line = predictions[sid]
    if says is None:  # odd but valid: decoded correctly and scored
        assert line["error"] is None and line["prediction"] == IMAGE_CAPTIONS[sid], line
        assert line["scores"] == {"mean_length": 7.0} and sid not in failures, line
        return
    # the sample's error names the file and the field; its line and its failure record carry its id
    assert line["error"].startswith(f"{folder / file}, field 'image': "), line
    for fragment in says:
        assert fragment in line["error"], (fragment, line["error"])
    assert line["prediction"] is None
    assert failures[sid]["error"] == line["error"] and failures[sid]["traceback"] is None  # data, not a bug


def test_image_run_names_failures_by_id(image_run):
    folder, output, _, _ = image_run
    assert f"failed truncated: {folder / 'truncated.png'}, field 'image': cannot decode image" in output
    assert "all 6 failures:" in " ".join(output.split())


def test_oversize_image_with_max_image_pixels(root):
    """--max-image-pixels 2000: a 100 x 100 image is that sample's error; the 32 x 32 ones are scored."""
    folder = root / "max-pixels"
    folder.mkdir()
    Image.new("RGB", (100, 100), "blue").save(folder / "big.png")
    _jsonl(folder / "data.jsonl", _good_rows(root, 2) + [{"image_id": "big", "image": "big.png", "captions": ["x"]}])
    _task_file(folder, "corpus_max_pixels", "data.jsonl")
    result = _invoke(_eval("example-echo", "corpus_max_pixels", folder, root / "max-pixels-run",
                           "--max-image-pixels", "2000"))
    assert result.exit_code == 0, result.output
    by_id = {line["id"]: line for line in read_jsonl(root / "max-pixels-run" / "predictions" /
                                                     "corpus_max_pixels.jsonl")}
    assert by_id["big"]["error"] == (f"{folder / 'big.png'}, field 'image': image is 100x100 (10,000 pixels), over "
                                     "the 2,000-pixel limit (--max-image-pixels); not decoded")
    assert by_id["img0"]["error"] is None and by_id["img1"]["prediction"] == "an image of 32 by 32 pixels"


def test_every_image_broken_exits_1_with_everything_written(root):
    folder = root / "all-broken"
    folder.mkdir()
    _jsonl(folder / "data.jsonl", [{"image_id": f"gone{i}", "image": f"gone{i}.png", "captions": ["x"]}
                                   for i in range(2)])
    _task_file(folder, "corpus_all_broken", "data.jsonl")
    out = root / "all-broken-run"
    result = _invoke(_eval("example-echo", "corpus_all_broken", folder, out))
    assert result.exit_code == 1, result.output
    assert _error_line(result.output).startswith("error: every sample failed in 1 task(s): example-echo on "
                                                 "corpus_all_broken.")
    failures = read_jsonl(out / "failures" / "corpus_all_broken.jsonl")
    assert [(f["id"], f["error"]) for f in failures] == [
        (f"gone{i}", f"{folder / f'gone{i}.png'}, field 'image': image file not found") for i in range(2)]
    assert json.loads((out / "results.json").read_text())["tasks"]["corpus_all_broken"]["n_failed"] == 2


# ------------------------------------------------------------------ data files: one line naming file:line and field

def _data_case(name: str, write: Callable[[Path, Path], object], *, data: str = "data.jsonl",
               model: str = "example-echo") -> Callable[[Path, Path], list[str]]:
    """``write(root, folder)`` writes ``folder/data.jsonl``; a task file reads ``data``."""
    def argv(root: Path, folder: Path) -> list[str]:
        write(root, folder)
        _task_file(folder, f"corpus_{name}", data)
        return _eval(model, f"corpus_{name}", folder, folder / "run")
    return argv


def _rows_then(*extra: object) -> Callable[[Path, Path], Path]:
    """The three good rows, then ``extra`` (a dict is a row, a str a raw line)."""
    return lambda root, folder: _jsonl(folder / "data.jsonl", [*_good_rows(root), *extra])


DATA_CASES = [
    Case("malformed_line", _data_case("malformed_line", _rows_then('{"image_id": "x", "image": "img0.png"')), 2,
         ("{folder}/data.jsonl:4: invalid JSON (Expecting ',' delimiter at column 38)",)),
    Case("empty_file", _data_case("empty_file", lambda r, f: (f / "data.jsonl").write_bytes(b"")), 2,
         ("{folder}/data.jsonl: the data file is empty",)),
    Case("glob_matches_nothing", _data_case("glob_matches_nothing", lambda r, f: None, data="shards/*.jsonl"), 2,
         ("{folder}/shards/*.jsonl, field 'data_files': no file matches this pattern",)),
    Case("non_utf8", _data_case("non_utf8", lambda r, f: (f / "data.jsonl").write_bytes(
        (json.dumps(_good_rows(r)[0]) + "\n" + '{"image_id": "caf\xe9"}\n').encode("latin-1"))), 2,
        ("{folder}/data.jsonl:2: not UTF-8 text (invalid continuation byte",)),
    Case("row_without_id", _data_case("row_without_id", _rows_then({"image": "img0.png", "captions": ["x"]})), 2,
         ("{folder}/data.jsonl:4, field 'image_id': the row has no id (the task's id column is 'image_id')",)),
    Case("duplicate_ids", _data_case("duplicate_ids", _rows_then({"image_id": "img1", "image": "img0.png",
                                                                  "captions": ["x"]})), 2,
         ("{folder}/data.jsonl:4, sample 'img1', field 'image_id': duplicate sample id (first at line 2)",)),
    Case("missing_mapped_column", _data_case("missing_mapped_column", lambda r, f: _jsonl(
        f / "data.jsonl", [{k if k != "captions" else "caption": v for k, v in row.items()} for row in _good_rows(r)])),
        2, ("corpus_missing_mapped_column.yaml:7, field 'dataset.columns.references': column 'captions' is not in "
            + "the data (its columns: caption, image, image_id, question)",)),
    Case("line_is_a_list", _data_case("line_is_a_list", _rows_then("[1, 2]")), 2,
         ("{folder}/data.jsonl:4: expected a JSON object per row, got list",)),
]


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.name)
def test_data_files(root, case):
    _check(case, root, root / "data-cases" / case.name)


def test_empty_string_reference_is_that_samples_error(root):
    folder = root / "data-cases" / "empty_reference"
    folder.mkdir(parents=True)
    _rows_then({"image_id": "blank", "image": str(root / "data" / "img0.png"), "captions": ["a red square", ""]})(
        root, folder)
    _task_file(folder, "corpus_empty_reference", "data.jsonl")
    result = _invoke(_eval("example-echo", "corpus_empty_reference", folder, folder / "run"))
    assert result.exit_code == 0, result.output
    by_id = {line["id"]: line for line in read_jsonl(folder / "run" / "predictions" / "corpus_empty_reference.jsonl")}
    assert by_id["blank"]["error"] == "sample 'blank', field 'captions': reference 1 is an empty string"
    assert all(by_id[f"img{i}"]["error"] is None and by_id[f"img{i}"]["scores"] for i in range(3))
    assert "failed blank: sample 'blank', field 'captions': reference 1 is an empty string" in result.output


# ------------------------------------------------------------------ task YAML: one line naming file:line and key

def _yaml_case(name: str, edit: Callable[[str], str], *, files: dict[str, str] | None = None,
               extra: tuple[str, ...] = ()) -> Callable[[Path, Path], list[str]]:
    """The task file ``corpus_<name>.yaml`` is ``edit(TASK)``; ``files`` are more files beside it."""
    def argv(root: Path, folder: Path) -> list[str]:
        task = f"corpus_{name}"
        (folder / f"{task}.yaml").write_text(edit(TASK.format(name=task, data=root / "data" / "good.jsonl")))
        for file, text in (files or {}).items():
            (folder / file).write_text(text.format(data=root / "data" / "good.jsonl"))
        return _eval("example-echo", task, folder, folder / "run", *extra)
    return argv


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)
    return edit


def _append(line: str) -> Callable[[str], str]:
    return lambda text: text + line + "\n"


Y = "{folder}/corpus_%s.yaml"
YAML_CASES = [
    Case("invalid_yaml", _yaml_case("invalid_yaml", _replace("split: train", "split: [train")), 2,
         (Y % "invalid_yaml", "invalid YAML")),
    Case("unknown_top_level_key", _yaml_case("unknown_top_level_key", _append("metricz: [example-length]")), 2,
         (Y % "unknown_top_level_key" + ":10, field 'metricz': unknown keys ['metricz']; allowed: [",)),
    Case("generation_5", _yaml_case("generation_5", _replace("generation: {max_new_tokens: 6}", "generation: 5")),
         2, (Y % "generation_5" + ":8, field 'generation': expected a mapping like {max_new_tokens: 16}, got int 5",)),
    Case("max_new_tokens_many", _yaml_case("max_new_tokens_many", _replace("max_new_tokens: 6",
                                                                            'max_new_tokens: "many"')), 2,
         (Y % "max_new_tokens_many" + ":8, field 'generation.max_new_tokens': expected a positive integer, got str "
          "'many'",)),
    Case("metrics_5", _yaml_case("metrics_5", _replace("metrics: [example-length]", "metrics: 5")), 2,
         (Y % "metrics_5" + ":9, field 'metrics': expected a list of metric names, got int 5",)),
    Case("columns_list", _yaml_case("columns_list", _replace("{id: image_id, image: image, references: captions}",
                                                             "[image_id, image]")), 2,
         (Y % "columns_list" + ":7, field 'dataset.columns': expected a mapping of field -> dataset column, like "
          "{id: question_id}, got list ['image_id', 'image']",)),
    Case("family_7", _yaml_case("family_7", _replace("family: captioning", "family: 7")), 2,
         (Y % "family_7" + ":2, field 'family': expected a string, got int 7",)),
    Case("include_5", _yaml_case("include_5", _append("include: 5")), 2,
         (Y % "include_5" + ":10, field 'include': expected a file or task name, or a list of them, got int 5",)),
    Case("unfilled_placeholder", _yaml_case("unfilled_placeholder", lambda text: text.replace(
        "family: captioning", "family: vqa").replace("references: captions", "question: question, answers: captions")
        + 'prompt: "{questoin} Answer in one word."\n'), 2,
        (Y % "unfilled_placeholder" + ":10, field 'prompt': placeholder {questoin} is not filled by a vqa task (it "
         "fills {question}, {options})",)),
    Case("include_cycle", _yaml_case("include_cycle", _append("include: loop_b.yaml"),
                                     files={"loop_b.yaml": "include: corpus_include_cycle.yaml\n"}), 2,
         ("include cycle:", Y % "include_cycle", "{folder}/loop_b.yaml")),
    Case("include_unknown_name", _yaml_case("include_unknown_name", _append("include: easyvqa_captoin")), 2,
         (Y % "include_unknown_name" + ":10, field 'include': 'easyvqa_captoin' is neither a file next to the task "
          "file nor a built-in task", "easyvqa_caption")),
    Case("unknown_metric", _yaml_case("unknown_metric", _replace("[example-length]", "[coco-captoin]")), 2,
         (Y % "unknown_metric" + ":9, field 'metrics': unknown metric 'coco-captoin'. Did you mean: coco-caption?",)),
    Case("unknown_metric_option", _yaml_case("unknown_metric_option",
                                             _append("metric_options: {example-length: {units: char}}")), 2,
         (Y % "unknown_metric_option" + ":10, field 'metric_options.example-length': unknown option(s) ['units'] "
          "for metric 'example-length' (it takes: unit)",)),
    Case("import_string_loader", _yaml_case("import_string_loader", lambda text: (
        "name: corpus_import_string_loader\nfamily: captioning\ndataset:\n  loader: \"torch.hub:load\"\n"
        "  split: test\nmetrics: [example-length]\n")), 2,
        (Y % "import_string_loader" + ":4, field 'dataset.loader': 'torch.hub:load' is an import string, not a "
         "registered dataset loader: running code named by a task file needs --trust-remote-code",)),
    Case("numeric_key", _yaml_case("numeric_key", _append("7: seven")), 2,
         (Y % "numeric_key" + ":10, field '7': unknown keys ['7']; allowed: [",)),
    Case("two_files_one_name", _yaml_case("two_files_one_name", lambda text: text,
                                          files={"zz_copy.yaml": TASK.replace("{name}", "corpus_two_files_one_name")}),
         2, ("{folder}/zz_copy.yaml:1, field 'name': task 'corpus_two_files_one_name' is defined twice, here and in "
             + Y % "two_files_one_name" + ":1",)),
]


@pytest.mark.parametrize("case", YAML_CASES, ids=lambda c: c.name)
def test_task_yaml(root, case):
    _check(case, root, root / "yaml-cases" / case.name)


# ------------------------------------------------------------------ CLI options: one line naming the option

def _valid_task(root: Path) -> Path:
    folder = root / "valid"
    if not folder.is_dir():
        folder.mkdir()
        _task_file(folder, "corpus_valid", root / "data" / "good.jsonl")
    return folder


def _options(*args: str, model: str = "example-echo", tasks: str = "corpus_valid") -> Callable[[Path, Path], list]:
    """``eval`` of the valid task with ``args``; "{folder}" in an argument is the case's folder."""
    def argv(root: Path, folder: Path) -> list[str]:
        (folder / "a-file").write_text("not a folder")
        return ["eval", "--model", model, "--tasks", tasks, "--include", str(_valid_task(root)), "--no-cache",
                *(a.replace("{folder}", str(folder)) for a in args)]
    return argv


OUT = ("--output", "{folder}/run")
CLI_CASES = [
    Case("limit_negative", _options("--limit", "-1", *OUT), 2,
         ("error: --limit must be a whole number of at least 1, not -1",)),
    Case("limit_zero", _options("--limit", "0", *OUT), 2,
         ("error: --limit must be a whole number of at least 1, not 0",)),
    Case("tasks_comma", _options(*OUT, tasks=","), 2,
         ("error: --tasks ',' names no task: give one or more comma-separated task names",)),
    Case("batch_size_zero", _options("--batch-size", "0", *OUT), 2, ("error: --batch-size must be at least 1",)),
    Case("batch_size_text", _options("--batch-size", "x", *OUT), 2,
         ("error: --batch-size must be a whole number or 'auto', not 'x'",)),
    Case("unknown_task", _options(*OUT, tasks="corpus_valdi"), 2,
         ("error: unknown task 'corpus_valdi'. Did you mean: corpus_valid",)),
    Case("unknown_model", _options(*OUT, model="example-ecko"), 2,
         ("error: --model 'example-ecko' is not a registered model, not an existing directory, and not a hub id",
          "Registered models: ", "example-echo")),
    Case("model_arg_without_equals", _options("--model-arg", "delay", *OUT), 2,
         ("error: --model-arg expects key=value, got 'delay'",)),
    Case("model_arg_unknown_key", _options("--model-arg", "dealy=1", *OUT), 2,
         ("error: unknown --model-arg dealy for 'example-echo' (EchoCaptioner); it accepts: delay, log",)),
    Case("tokenizer_nope", _options("--tokenizer", "nope", *OUT), 2,
         ("error: --tokenizer must be one of ptb, ptb-java, not 'nope'",)),
    Case("output_is_a_file", _options("--output", "{folder}/a-file"), 2,
         ("error: --output {folder}/a-file is a file, not a folder",)),
    Case("cache_dir_is_a_file", _options("--cache", "--cache-dir", "{folder}/a-file", *OUT), 2,
         ("error: --cache-dir {folder}/a-file is a file, not a folder",)),
    Case("threads_zero", _options("--threads", "0", *OUT), 2,
         ("error: --threads must be a whole number of at least 1, not 0",)),
    Case("on_error_maybe", _options("--on-error", "maybe", *OUT), 2,
         ("error: --on-error must be 'continue' or 'fail', not 'maybe'",)),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_cli_options(root, case):
    _check(case, root, root / "cli-cases" / case.name)
    assert not (root / "cli-cases" / case.name / "run").exists()  # refused before anything was written


# ------------------------------------------------------------------ concurrent runs on one --output folder

def test_two_runs_on_one_output_folder(root):
    from mmbench.runner import lock_output

    out = root / "concurrent-run"
    held = lock_output(out)
    try:
        case = Case("concurrent", _options("--output", str(out)), 2, (
            f"error: the output folder {out} is in use by a running evaluation (pid {os.getpid()}); choose another "
            + "--output",))
        _check(case, root, root / "concurrent")
    finally:
        held.release()
    assert not (out / "results.json").exists()
    result = _invoke(_options("--output", str(out))(root, root / "concurrent"))  # free again once released
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ score inputs: one line naming file:line, id, field

TEN = ["yes"] * 10
VQA_REFS = [{"question_id": q, "answers": TEN} for q in (1, 2, 3)]
CAP_REFS = [{"image_id": i, "references": ["a dog", "a brown dog"]} for i in (1, 2)]


def _score(family: str, write: Callable[[Path], dict[str, object]]) -> Callable[[Path, Path], list[str]]:
    """``mmbench score <family>``; ``write(folder)`` writes the inputs and returns option -> value."""
    def argv(root: Path, folder: Path) -> list[str]:
        return ["score", family, *(a for k, v in write(folder).items() for a in (f"--{k}", str(v)))]
    return argv


def _vqa_files(preds: list, refs: list = VQA_REFS) -> Callable[[Path], dict[str, object]]:
    return lambda f: {"predictions": _jsonl(f / "p.jsonl", preds), "references": _jsonl(f / "r.jsonl", refs)}


def _cap_files(preds: list, refs: list = CAP_REFS) -> Callable[[Path], dict[str, object]]:
    return lambda f: {"predictions": _jsonl(f / "p.jsonl", preds), "references": _jsonl(f / "r.jsonl", refs)}


class _Exploit:
    """Unpickling this creates a folder: proof that a loader ran pickled code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _retrieval(images: object, texts: object, mapping: list) -> Callable[[Path], dict[str, object]]:
    def write(f: Path) -> dict[str, object]:
        for name, array in (("img.npy", images), ("txt.npy", texts)):
            if isinstance(array, np.ndarray) and array.dtype == object:
                np.save(f / name, array, allow_pickle=True)
            else:
                np.save(f / name, np.asarray(array, dtype=np.float32))
        (f / "t2i.json").write_text(json.dumps(mapping))
        return {"image-embeddings": f / "img.npy", "text-embeddings": f / "txt.npy", "text-to-image": f / "t2i.json"}
    return write


def _object_array(f: Path) -> dict[str, object]:
    array = np.empty(2, dtype=object)
    array[0], array[1] = _Exploit(f / "pwned"), "x"
    return _retrieval(array, np.eye(2), [0, 1])(f)


def _consistency_missing_image(f: Path) -> dict[str, object]:
    (f / "images").mkdir()
    Image.new("RGB", (8, 8)).save(f / "images" / "a.png")
    return {"predictions": _jsonl(f / "p.jsonl", [{"image_id": "a", "prediction": "x"},
                                                  {"image_id": "b", "prediction": "y"}]),
            "images": f / "images", "scorer": "easyvqa-clip", "device": "cpu"}


SCORE_CASES = [
    Case("captioning_missing_file", _score("captioning", lambda f: {"predictions": f / "nope.jsonl",
                                                                    "references": _jsonl(f / "r.jsonl", CAP_REFS)}),
         2, ("error: {folder}/nope.jsonl: file not found",)),
    Case("captioning_duplicate_ids", _score("captioning", _cap_files(
        [{"image_id": 1, "prediction": "a dog"}, {"image_id": 2, "prediction": "a"},
         {"image_id": 1, "prediction": "b"}])),
        2, ("{folder}/p.jsonl:3, sample '1': duplicate id (first at {folder}/p.jsonl:1)",)),
    Case("vqa_unknown_id", _score("vqa", _vqa_files([{"question_id": q, "prediction": "yes"} for q in (1, 2, 3, 4)])),
         2, ("error: {folder}/p.jsonl, sample '4': 1 prediction id(s) not in the references {folder}/r.jsonl "
             + "(first: '4' at {folder}/p.jsonl:4)",)),
    Case("vqa_missing_id", _score("vqa", _vqa_files([{"question_id": q, "prediction": "yes"} for q in (1, 2)])),
         2, ("error: {folder}/p.jsonl, sample '3': 1 reference id(s) have no prediction (first: '3')",)),
    Case("vqa_non_string_prediction", _score("vqa", _vqa_files(
        [{"question_id": 1, "prediction": "yes"}, {"question_id": 2, "prediction": 5},
         {"question_id": 3, "prediction": "no"}])), 2,
        ("error: {folder}/p.jsonl:2, sample '2', field 'prediction': prediction must be a string, got int",)),
    Case("vqa_wrong_json_shape", _score("vqa", lambda f: {
        "predictions": (f / "p.json").write_text('[{"question_id": 1, "answer": "yes"}, [2, "yes"]]') and f / "p.json",
        "references": _jsonl(f / "r.jsonl", VQA_REFS)}), 2,
        ("error: {folder}/p.json[1]: expected a JSON object, got list",)),
    Case("retrieval_object_array", _score("retrieval", _object_array), 2,
         ("error: {folder}/img.npy: not a readable .npy array of numbers",)),
    Case("retrieval_rows_mismatch", _score("retrieval", _retrieval(np.eye(3), np.eye(3)[:, :3].repeat(2, 0),
                                                                   [0, 1, 2])), 2,
         ("error: {folder}/t2i.json: has 3 entries but {folder}/txt.npy has 6 rows",)),
    Case("retrieval_dimension_mismatch", _score("retrieval", _retrieval(np.eye(3), np.ones((3, 5)), [0, 1, 2])), 2,
         ("error: {folder}/img.npy has dimension 3 but {folder}/txt.npy has dimension 5",)),
    Case("consistency_missing_image", _score("consistency", _consistency_missing_image), 2,
         ("sample 'b', field 'image': no image file named b.<png|jpg|...> in {folder}/images",)),
]


@pytest.mark.parametrize("case", SCORE_CASES, ids=lambda c: c.name)
def test_score_inputs(root, case):
    folder = root / "score-cases" / case.name
    _check(case, root, folder)
    assert not (folder / "pwned").exists()  # an object array is refused, never unpickled


# ------------------------------------------------------------------ results files: one line naming file and field

def _one_huge_line_gz(path: Path, mib: int) -> None:
    """A small .gz holding one JSON line of ``mib`` MiB (concatenated gzip members)."""
    chunk = gzip.compress(b"a" * 2**20, 9)
    with path.open("wb") as fh:
        fh.write(gzip.compress(b'{"id": "0", "prediction": "ok"}\n{"id": "1", "prediction": "'))
        for _ in range(mib):
            fh.write(chunk)
        fh.write(gzip.compress(b'"}\n'))


def _board(command: str, edit: Callable[[dict], object] | None = None, *, raw: str | None = None,
           predictions: Callable[[Path], object] | None = None) -> Callable[[Path, Path], list[str]]:
    """``mmbench leaderboard <command>`` of one run folder whose results.json is edited."""
    def argv(root: Path, folder: Path) -> list[str]:
        from tests.test_leaderboard import fake_run

        run = fake_run(folder, "m", [0.5, 1.0])
        if edit is not None:
            data = json.loads((run / "results.json").read_text())
            edit(data)
            (run / "results.json").write_text(json.dumps(data))
        if raw is not None:
            (run / "results.json").write_text(raw)
        if predictions is not None:
            predictions(run / "predictions")
        out = ["--out", str(folder / "board")] if command == "build" else []
        return ["leaderboard", command, str(run), *out, "--n-boot", "100"]
    return argv


def _huge_gz(predictions: Path) -> None:
    (predictions / "t.jsonl").unlink()
    _one_huge_line_gz(predictions / "t.jsonl.gz", 17)


R = "{folder}/m/results.json"
RESULTS_CASES = [
    Case("nan", _board("show", raw='{"schema_version": 1, "model": {"name": "m"}, "tasks": {"t": {"metrics": '
                                   '{"CIDEr-D": NaN}}}}'), 2,
         ("error: " + R + ": not valid JSON (NaN is not allowed (numbers must be finite))",)),
    Case("wrong_type", _board("show", lambda d: d["tasks"]["t"]["metrics"].update({"CIDEr-D": "0.9"})), 2,
         ("error: " + R + ", field 'tasks.t.metrics.CIDEr-D': expected a number, got a string",)),
    Case("predictions_outside_run", _board("build", lambda d: d["tasks"]["t"].update(
        predictions="../../../etc/passwd")), 2,
        ("error: " + R + ", field 'tasks.t.predictions': must be a path inside the run folder",)),
    Case("schema_version", _board("show", lambda d: d.update(schema_version=99)), 2,
         ("error: " + R + ", field 'schema_version': unsupported schema version 99 (this mmbench reads versions "
          + "1, 2)",)),
    Case("gz_huge_line", _board("build", predictions=_huge_gz), 2,
         ("error: {folder}/m/predictions/t.jsonl.gz:2: line is longer than 16,777,216 characters; not read",)),
]


@pytest.mark.parametrize("case", RESULTS_CASES, ids=lambda c: c.name)
def test_results_files(root, case):
    folder = root / "results-cases" / case.name
    _check(case, root, folder)
    assert not (folder / "board").exists()  # all or nothing
