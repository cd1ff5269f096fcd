"""Built-in hub caption tasks, run on local fixtures with the same schema as the hub datasets.

Each fixture is a parquet file built here with the column names and types of the
hub dataset at the pinned revision (schemas recorded in the task files); the test
task ``include:``s the built-in definition and swaps only where the data comes from.
"""

import io
import textwrap

import datasets
import numpy as np
import pytest
from PIL import Image

from mmbench.catalog import build_task, builtin_task_dir, include_tasks
from mmbench.errors import DataError, MMBenchError
from mmbench.images import load_image


def _png(seed: int) -> bytes:
    arr = (np.random.RandomState(seed).rand(24, 24, 3) * 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _override(tmp_path, task: str, data_file: str, extra: str = "") -> str:
    src = builtin_task_dir() / "captioning" / f"{task}.yaml"
    (tmp_path / "local.yaml").write_text(textwrap.dedent(f"""
        include: {src}
        name: {task}_local
        dataset: {{path: parquet, data_files: {data_file}, split: train, revision: null}}
    """) + extra)
    include_tasks(tmp_path / "local.yaml")
    return f"{task}_local"


def test_nocaps_schema(tmp_path):
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(i), "path": None} for i in range(3)],
         "image_id": [10, 11, 12],
         "image_open_images_id": ["a", "b", "c"],
         "annotations_ids": [[1, 2], [3, 4], [5, 6]],
         "annotations_captions": [["a dog", "a brown dog"], ["a cat", "cat"], ["a car", "red car"]]},
        features=datasets.Features({"image": datasets.Image(), "image_id": datasets.Value("int32"),
                                    "image_open_images_id": datasets.Value("string"),
                                    "annotations_ids": datasets.Sequence(datasets.Value("int32")),
                                    "annotations_captions": datasets.Sequence(datasets.Value("string"))}))
    ds.to_parquet(str(tmp_path / "nocaps.parquet"))
    task = build_task(_override(tmp_path, "nocaps_val", "nocaps.parquet"))
    samples = task.load_samples()
    assert [s.id for s in samples] == ["10", "11", "12"]
    assert samples[1].references == ("a cat", "cat")
    assert load_image(samples[2].images[0]).size == (24, 24)
    fp = task.fingerprint(samples, model_name="m")
    assert fp["dataset"]["data_files_sha256"] and fp["sample_ids_hash"]


def test_flickr30k_schema(tmp_path):
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(i), "path": None} for i in range(2)],
         "caption": [["two men", "men talking"], ["a dog runs", "dog"]],
         "sentids": [["0", "1"], ["2", "3"]], "img_id": ["0", "1"], "filename": ["1.jpg", "2.jpg"]},
        features=datasets.Features({"image": datasets.Image(), "caption": datasets.Sequence(datasets.Value("string")),
                                    "sentids": datasets.Sequence(datasets.Value("string")),
                                    "img_id": datasets.Value("string"), "filename": datasets.Value("string")}))
    ds.to_parquet(str(tmp_path / "f.parquet"))
    samples = build_task(_override(tmp_path, "flickr30k_full", "f.parquet")).load_samples()
    assert [s.references for s in samples] == [("two men", "men talking"), ("a dog runs", "dog")]


def test_coco_karpathy_schema_reads_images_from_image_root(tmp_path, monkeypatch):
    img_dir = tmp_path / "coco" / "val2014"
    img_dir.mkdir(parents=True)
    (img_dir / "COCO_val2014_000000000042.jpg").write_bytes(_png(1))
    ds = datasets.Dataset.from_dict(
        {"filepath": ["val2014", "val2014"], "sentids": [[1, 2], [3]],
         "filename": ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg"],
         "imgid": [0, 1], "split": ["test", "test"], "sentences": [["A man.", "A person."], ["A bus."]],
         "cocoid": [42, 73], "url": ["http://x/42.jpg", "http://x/73.jpg"]})
    ds.to_parquet(str(tmp_path / "k.parquet"))
    name = _override(tmp_path, "coco_karpathy_test", "k.parquet")
    monkeypatch.delenv("COCO_IMAGES", raising=False)
    with pytest.raises(DataError, match="image_root"):
        build_task(name).load_samples()
    monkeypatch.setenv("COCO_IMAGES", str(tmp_path / "coco"))
    samples = build_task(name).load_samples()
    assert [s.id for s in samples] == ["42", "73"]
    assert load_image(samples[0].images[0]).size == (24, 24)
    with pytest.raises(DataError, match="COCO_val2014_000000000073.jpg.*not found"):
        load_image(samples[1].images[0])  # a missing image fails its own sample only


def test_hub_tasks_pin_revisions():
    for path in (builtin_task_dir() / "captioning").glob("*.yaml"):
        task = build_task(path.stem)
        if task.config.dataset.path and "/" in task.config.dataset.path:
            rev = task.config.dataset.revision
            assert rev and len(rev) == 40 and all(c in "0123456789abcdef" for c in rev), path


def test_uncached_hub_dataset_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(MMBenchError, match="offline"):
        build_task("nocaps_val").load_samples()
