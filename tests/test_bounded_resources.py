"""Bounded resources on hostile or odd input: decompression bombs, FIFOs and devices as image
paths, gzipped JSONL lines that expand to GBs, CSV formula injection in headers, file modes."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from mmbench.errors import DataError
from mmbench.images import DEFAULT_MAX_PIXELS, image_limits, load_image, max_image_pixels
from mmbench.types import ImageRef

# PIL warns at open above its own 89 MP threshold; load_image then refuses or reduces the image
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

# ------------------------------------------------------------------ helpers


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def bomb_png(path: Path, width: int, height: int, *, bit_depth: int = 1, color_type: int = 0) -> Path:
    """A valid all-black PNG written row by row (never holding the pixels): 13,000 x 13,000 at
    1 bit is a 20 KB file that PIL decodes into 1 GB."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    row = b"\x00" * (1 + (width * channels * bit_depth + 7) // 8)  # filter byte + zero pixels
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
                     + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def _jpeg(path: Path, size: tuple[int, int], mode: str = "L") -> Path:
    Image.new(mode, size, 90).save(path, format="JPEG", quality=80)
    return path


_PEAK = """
import resource, sys, warnings
warnings.simplefilter("ignore")
from mmbench.errors import DataError
from mmbench.images import load_image
from mmbench.types import ImageRef
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image(ImageRef(path=sys.argv[1]))
    print("decoded", end=" ")
except DataError as exc:
    print("refused", end=" ")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


def _peak_mb(path: Path) -> tuple[str, int]:
    """Decode ``path`` in a fresh process: ("decoded"|"refused", peak RSS growth in MB)."""
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, check=True)
    what, mb = out.stdout.split()
    return what, int(mb)


# ------------------------------------------------------------------ decompression bombs


def test_png_bomb_is_refused_from_the_header_naming_the_file(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png", 13_000, 13_000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DataError, match=r"bomb\.png, field 'image': image is 13000x13000 .*169,000,000 pixels.*"
                                        r"over the 64,000,000-pixel limit"):
        load_image(ImageRef(path=str(bomb)))
    # before: the process grew by ~1 GB decoding it (3.9 GB for an RGBA one)
    assert _peak_mb(bomb) == ("refused", pytest.approx(0, abs=40))


def test_bomb_as_bytes_is_refused_too(tmp_path):
    data = bomb_png(tmp_path / "b.png", 9000, 9000).read_bytes()
    with pytest.raises(DataError, match=r"<\d+ encoded bytes>, field 'image': image is 9000x9000"):
        load_image(ImageRef(data=data))


def test_past_pils_own_cap_is_a_data_error_naming_the_file(tmp_path):
    """Above 2 x PIL.Image.MAX_IMAGE_PIXELS PIL refuses at open, whatever our limit."""
    bomb = bomb_png(tmp_path / "huge.png", 20_000, 20_000)
    with pytest.raises(DataError, match=r"huge\.png, field 'image': image refused by PIL"):
        load_image(ImageRef(path=str(bomb)), max_pixels=10**9)


def test_limit_is_per_call_and_pil_global_untouched(tmp_path):
    pil_cap = Image.MAX_IMAGE_PIXELS
    png = bomb_png(tmp_path / "p.png", 300, 200, bit_depth=8, color_type=2)
    assert load_image(ImageRef(path=str(png))).size == (300, 200)
    with pytest.raises(DataError, match="60,000 pixels.*over the 59,999-pixel limit"):
        load_image(ImageRef(path=str(png)), max_pixels=59_999)
    assert load_image(ImageRef(path=str(png)), max_pixels=60_000).size == (300, 200)
    with pytest.raises(ValueError, match="positive integer"):
        load_image(ImageRef(path=str(png)), max_pixels=0)
    assert Image.MAX_IMAGE_PIXELS == pil_cap and max_image_pixels() == DEFAULT_MAX_PIXELS


def test_oversize_jpeg_is_reduced_while_decoding(tmp_path):
    jpg = _jpeg(tmp_path / "big.jpg", (4000, 3000))
    assert load_image(ImageRef(path=str(jpg)), max_pixels=3_000_000).size == (2000, 1500)  # 1/2
    assert load_image(ImageRef(path=str(jpg)), max_pixels=200_000).size == (500, 375)  # 1/8
    with pytest.raises(DataError, match=r"big\.jpg.*over the 100,000-pixel limit"):  # 1/8 is not enough
        load_image(ImageRef(path=str(jpg)), max_pixels=100_000)
    out = load_image(ImageRef(data=jpg.read_bytes()), max_pixels=3_000_000)
    assert out.size == (2000, 1500) and out.mode == "RGB"
    assert load_image(ImageRef(path=str(jpg))).size == (4000, 3000)  # under the limit: untouched


def test_decoded_in_memory_image_over_the_limit_is_refused():
    with pytest.raises(DataError, match=r"<in-memory image>.*over the 100-pixel limit"):
        load_image(ImageRef(pil=Image.new("RGB", (20, 20))), max_pixels=100)


def test_image_limits_reach_worker_threads_and_restore(tmp_path):
    png = bomb_png(tmp_path / "p.png", 100, 100)
    ref = ImageRef(path=str(png))
    with ThreadPoolExecutor(max_workers=1) as pool:  # started before the block, like a long-lived pool
        with image_limits(5_000) as limit:
            assert limit == 5_000 and max_image_pixels() == 5_000
            with pytest.raises(DataError, match="over the 5,000-pixel limit"):
                pool.submit(load_image, ref).result()
            errors: list[Exception] = []
            t = threading.Thread(target=lambda: errors.append(pytest.raises(DataError, load_image, ref).value))
            t.start()
            t.join()
            assert "5,000-pixel" in str(errors[0])
            with image_limits(20_000):  # nests
                assert pool.submit(load_image, ref).result().size == (100, 100)
            assert max_image_pixels() == 5_000
        assert pool.submit(load_image, ref).result().size == (100, 100)
    assert max_image_pixels() == DEFAULT_MAX_PIXELS
    with pytest.raises(ValueError):
        with image_limits(-1):
            pass


@pytest.mark.slow
def test_large_jpeg_at_the_default_limit_peaks_low(tmp_path):
    """A 108 MP JPEG: before, decoded at full size (857 MB peak); now at 1/2 scale (~240 MB)."""
    jpg = _jpeg(tmp_path / "big.jpg", (12_000, 9_000), mode="RGB")
    assert load_image(ImageRef(path=str(jpg))).size == (6000, 4500)
    what, mb = _peak_mb(jpg)
    assert what == "decoded" and mb < 400


# ------------------------------------------------------------------ regular files only


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def load():
        try:
            load_image(ImageRef(path=str(fifo)))
        except BaseException as exc:  # noqa: BLE001
            result.append(exc)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader so the test process can exit
        with open(fifo, "wb"):
            pass
        pytest.fail("load_image blocked on a FIFO")
    assert isinstance(result[0], DataError)
    assert str(result[0]) == f"{fifo}, field 'image': not a regular file (a FIFO)"


@pytest.mark.parametrize("path, kind", [("/dev/zero", "a character device"), ("/tmp", "a directory")])
def test_devices_and_directories_are_refused(path, kind):
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    with pytest.raises(DataError, match=f"^{path}, field 'image': not a regular file \\({kind}\\)$"):
        load_image(ImageRef(path=path))


def test_symlink_to_a_regular_file_is_read(tmp_path):
    png = bomb_png(tmp_path / "p.png", 8, 8)
    (tmp_path / "link.png").symlink_to(png)
    assert load_image(ImageRef(path=str(tmp_path / "link.png"))).size == (8, 8)


# ------------------------------------------------------------------ JSONL lines, bounded while read


def _one_huge_line_gz(path: Path, mib: int = 1024) -> Path:
    """A ~1 MB .gz holding one JSON line of ``mib`` MiB, written as concatenated gzip members
    (one compressed 1 MiB chunk repeated: nothing of the line's size is ever in memory)."""
    chunk = gzip.compress(b"a" * 2**20, 9)
    with path.open("wb") as fh:
        fh.write(gzip.compress(b'{"id": "0", "prediction": "ok"}\n{"id": "1", "prediction": "'))
        for _ in range(mib):
            fh.write(chunk)
        fh.write(gzip.compress(b'"}\n'))
    return path


def _peak_traced(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_read_jsonl_bounds_a_gzipped_huge_line(tmp_path):
    from mmbench.io import MAX_LINE_CHARS, read_jsonl

    gz = _one_huge_line_gz(tmp_path / "preds.jsonl.gz")  # 1 GiB line: before, 2 GB and 8 s to fail
    assert gz.stat().st_size < 2 * 2**20
    seen: list[int] = []

    def read():
        with pytest.raises(DataError) as info:
            for lineno, _ in read_jsonl(gz):
                seen.append(lineno)
        assert str(info.value) == f"{gz}:2: line is longer than {MAX_LINE_CHARS:,} characters; not read"

    assert _peak_traced(read) < 4 * MAX_LINE_CHARS  # a 16 MiB line and a few chunks, not 1 GiB
    assert seen == [1]


def test_read_jsonl_line_limit_is_exact_and_plain_files_too(tmp_path):
    from mmbench.io import read_jsonl

    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "a"}\n' + '{"id": "' + "b" * 100 + '"}\n')
    assert [n for n, _ in read_jsonl(f, max_line_chars=111)] == [1, 2]  # 110 characters + newline
    with pytest.raises(DataError, match=r"p\.jsonl:2: line is longer than 110 characters"):
        list(read_jsonl(f, max_line_chars=110))


def test_non_utf8_is_a_data_error_naming_the_file(tmp_path):
    from mmbench.io import read_jsonl

    f = tmp_path / "latin1.jsonl"
    f.write_bytes('{"id": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.jsonl:1: not UTF-8 text"):
        list(read_jsonl(f))


def test_leaderboardprediction_lines_are_bounded(tmp_path, monkeypatch):
    from mmbench.leaderboard import load

    gz = _one_huge_line_gz(tmp_path / "t.jsonl.gz", mib=64)
    with pytest.raises(DataError, match=r"t\.jsonl\.gz:2: line is longer than 16,777,216 characters"):
        list(load.prediction_lines(gz))
    small = tmp_path / "s.jsonl"
    small.write_text('{"id": "0"}\n{"id": "' + "x" * 50 + '"}\n')
    monkeypatch.setattr("mmbench.io.MAX_LINE_CHARS", 40)
    with pytest.raises(DataError, match=r"s\.jsonl:2: line is longer than 40 characters"):
        list(load.prediction_lines(small))


def test_leaderboard_build_names_the_long_line(tmp_path):
    from tests.test_leaderboard import fake_run

    from mmbench.leaderboard import make_board

    run = fake_run(tmp_path / "r", "m", [0.5, 0.5])
    jsonl = run / "predictions" / "t.jsonl"
    _one_huge_line_gz(run / "predictions" / "t.jsonl.gz", mib=20)
    jsonl.unlink()
    with pytest.raises(DataError, match=r"t\.jsonl\.gz:2: line is longer than"):
        make_board([run], n_boot=100)


# ------------------------------------------------------------------ CSV injection in header cells


@pytest.mark.parametrize("metric", ['=HYPERLINK("http://evil","x")', "+1+cmd|' /C calc'!A0", "@SUM(1)", "-2+3"])
def test_csv_header_cells_are_escaped(tmp_path, metric):
    import csv

    from tests.test_leaderboard import fake_run

    from mmbench.leaderboard import make_board
    from mmbench.leaderboard.tables import to_csv

    fake_run(tmp_path / "r", "=cmd()", [0.25, 0.75], metric=metric)
    text = to_csv(make_board([tmp_path / "r"], n_boot=100))
    header, row = list(csv.reader(io.StringIO(text)))
    assert "'" + metric in header and "'" + metric + "_ci_low" in header
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header + row)
    assert "'=cmd()" in row and float(row[header.index("'" + metric)]) == 0.5


# ------------------------------------------------------------------ file modes follow the umask


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_written_files_get_the_umask_like_open(tmp_path, umask):
    """Before, every file was 0600 (tempfile.mkstemp) whatever the umask."""
    from mmbench.io import atomic_write_json, atomic_write_jsonl, atomic_write_text

    with open(tmp_path / "plain.txt", "w") as fh:
        fh.write("x")
    expected = 0o666 & ~umask
    assert os.stat(tmp_path / "plain.txt").st_mode & 0o777 == expected
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "sub" / "results.json", {"a": 1})
    atomic_write_jsonl(tmp_path / "p.jsonl", [{"id": "0"}])
    for name in ("a.txt", "sub/results.json", "p.jsonl"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == expected, name
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_rewrite_keeps_an_existing_files_mode(tmp_path, umask):
    from mmbench.io import atomic_write_text

    f = tmp_path / "leaderboard.csv"
    atomic_write_text(f, "old")
    os.chmod(f, 0o640)
    atomic_write_text(f, "new")
    assert f.read_text() == "new" and os.stat(f).st_mode & 0o777 == 0o640


def test_leaderboard_files_get_the_umask(tmp_path):
    from tests.test_leaderboard import fake_run

    from mmbench.leaderboard import build_leaderboard

    fake_run(tmp_path / "r", "m", [0.25, 0.75])
    old = os.umask(0o022)
    try:
        build_leaderboard([tmp_path / "r"], tmp_path / "lb", n_boot=100)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "lb").rglob("*") if p.is_file()]  # the page, tables and per-sample chunks
    modes = {str(p.relative_to(tmp_path / "lb")): p.stat().st_mode & 0o777 for p in files}
    assert modes and set(modes.values()) == {0o644}, modes
    dirs = {p.stat().st_mode & 0o777 for p in (tmp_path / "lb").rglob("*") if p.is_dir()}
    assert dirs <= {0o755}, dirs


def test_jsonl_rows_are_streamed_and_a_failure_keeps_the_old_file(tmp_path):
    """atomic_write_jsonl writes rows as they come (a predictions file of 200k samples is never one
    string in memory); a row that cannot be written leaves the previous file and no temporary file."""
    import json

    from mmbench.io import atomic_write_jsonl

    target = tmp_path / "p.jsonl"
    atomic_write_jsonl(target, [{"id": "old"}])
    made = []

    def rows():
        for i in range(3):
            made.append(i)
            yield {"id": str(i)}
    atomic_write_jsonl(target, rows())
    assert [json.loads(x)["id"] for x in target.read_text().splitlines()] == ["0", "1", "2"] and made == [0, 1, 2]

    def bad_rows():
        yield {"id": "0"}
        yield {"id": "1", "score": float("nan")}  # allow_nan=False: a ValueError mid-file
    with pytest.raises(ValueError):
        atomic_write_jsonl(target, bad_rows())
    assert [json.loads(x)["id"] for x in target.read_text().splitlines()] == ["0", "1", "2"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
