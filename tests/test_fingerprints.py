"""Fingerprints depend on what determines the outputs, never on where files sit (issue #16 §2):
the same checkpoint, image or task data in another folder is the same model, request and task,
so it shares cache entries and leaderboard groups."""

import hashlib
import os
import shutil

import pytest

from mmbench.cache import request_hash
from mmbench.catalog import ASSETS_DIR
from mmbench.models.resolve import load_model
from mmbench.runner import evaluate
from mmbench.types import GenerateRequest, ImageRef
from tests.fixtures import tiny_models
from tests.helpers import make_caption_task


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    return tiny_models.make_vit_gpt2_captioner(tmp_path_factory.mktemp("ckpt") / "vit_gpt2")


def test_copies_and_spellings_of_a_checkpoint_share_one_fingerprint(tmp_path, captioner, monkeypatch):
    copy = tmp_path / "elsewhere" / "renamed-copy"
    shutil.copytree(captioner, copy)
    monkeypatch.chdir(tmp_path / "elsewhere")
    spellings = [captioner, str(copy), "renamed-copy", "./renamed-copy", os.path.relpath(copy, os.getcwd()) + "/"]
    hashes = {load_model(s).fingerprint()["hash"] for s in spellings}
    assert len(hashes) == 1
    # what determines outputs still counts: a changed config (or weights) is another model
    cfg = copy / "generation_config.json"
    cfg.write_text(cfg.read_text().replace("}", ', "no_repeat_ngram_size": 3}', 1))
    assert load_model(str(copy)).fingerprint()["hash"] not in hashes


def test_a_copied_checkpoint_and_moved_data_are_served_from_the_cache(tmp_path, captioner):
    first = evaluate(model=captioner, tasks=["tiny_caption"], include=[str(make_caption_task(tmp_path / "a"))],
                     output=str(tmp_path / "run1"), meteor=False)
    copy = tmp_path / "b" / "model"
    shutil.copytree(captioner, copy)
    moved = make_caption_task(tmp_path / "b")  # the same images and rows, in another folder
    second = evaluate(model=str(copy), tasks=["tiny_caption"], include=[str(moved)], output=str(tmp_path / "run2"),
                      meteor=False)
    a, b = first["tasks"]["tiny_caption"], second["tasks"]["tiny_caption"]
    assert b["n_cached"] == b["n_requests"] == 6 and b["n_computed"] == 0
    assert a["metrics"] == b["metrics"]
    assert first["model"]["fingerprint"]["hash"] == second["model"]["fingerprint"]["hash"]
    assert a["fingerprint"]["hash"] == b["fingerprint"]["hash"]  # same leaderboard group


def test_an_image_is_identified_by_its_bytes(tmp_path):
    src = tmp_path / "one" / "x.png"
    src.parent.mkdir()
    from PIL import Image

    Image.new("RGB", (4, 4), (200, 10, 10)).save(src)
    dst = tmp_path / "two" / "y.png"
    dst.parent.mkdir()
    shutil.copy(src, dst)
    req = lambda path: GenerateRequest(id="q1", images=(ImageRef(path=str(path)),), prompt="What colour?")  # noqa: E731
    assert request_hash(req(src)) == request_hash(req(dst))
    Image.new("RGB", (4, 4), (10, 200, 10)).save(dst)
    assert request_hash(req(src)) != request_hash(req(dst))
    # a path that is not a regular file (missing, a FIFO) never blocks and keeps its path
    os.mkfifo(tmp_path / "pipe.png")
    assert request_hash(req(tmp_path / "pipe.png")) != request_hash(req(tmp_path / "missing.png"))


def test_the_clipscore_scorer_hash_does_not_depend_on_the_install_path(tmp_path):
    registered = load_model("easyvqa-clip").fingerprint()
    copy = tmp_path / "site-packages-elsewhere" / "easyvqa-clip"
    shutil.copytree(ASSETS_DIR / "models" / "easyvqa-clip", copy)
    assert load_model(str(copy)).fingerprint()["hash"] == registered["hash"]
    # and a model found under two names with no content hash keeps its name in the hash
    a, b = load_model("example-echo"), load_model("example-echo")
    assert a.fingerprint()["hash"] == b.fingerprint()["hash"] and "name" in a.fingerprint()


def test_local_data_globs_hash_contents_not_locations(tmp_path):
    from mmbench.catalog import build_task, include_tasks

    digests = []
    for where in ("first", "second/deeper"):
        tasks = make_caption_task(tmp_path / where, metric="example-length", n=2, name=f"glob_{len(digests)}")
        yaml = tasks / f"glob_{len(digests)}.yaml"
        yaml.write_text(yaml.read_text().replace("data_files: ../data/test.jsonl", "data_files: ../data/*.jsonl"))
        include_tasks(tasks)
        task = build_task(f"glob_{len(digests)}")
        task.load_samples()
        digests.append(task.provenance["data_files_sha256"])
    assert digests[0] == digests[1]


def test_large_file_digests_are_kept_across_processes_and_follow_changes(tmp_path, monkeypatch):
    from mmbench import hashing

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * (2 << 20))
    first = hashing.file_digest(weights)
    assert (tmp_path / "mmbench-cache" / "file-digests.sqlite").is_file()  # conftest points the cache here
    hashing._memo.clear()  # a new process: only the store remembers

    def no_reading(*args, **kwargs):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(hashing, "open", no_reading, raising=False)
    assert hashing.file_digest(weights) == first
    monkeypatch.undo()
    monkeypatch.setenv("MMBENCH_CACHE_DIR", str(tmp_path / "mmbench-cache"))
    weights.write_bytes(b"b" * (2 << 20))  # same size, new bytes and modification time
    os.utime(weights, ns=(1, 1))
    hashing._memo.clear()
    assert hashing.file_digest(weights) == hashlib.sha256(b"b" * (2 << 20)).hexdigest() != first


def test_the_digest_store_can_be_turned_off(tmp_path, monkeypatch):
    from mmbench import hashing

    monkeypatch.setenv("MMBENCH_DIGEST_STORE", "0")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"c" * (2 << 20))
    assert hashing.file_digest(weights) == hashlib.sha256(b"c" * (2 << 20)).hexdigest()
    assert not (tmp_path / "mmbench-cache" / "file-digests.sqlite").exists()
