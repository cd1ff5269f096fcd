"""Every model type mmbench lists as supported (`mmbench.models.resolve`) is evaluated end to end
through `--model <dir>` on a tiny checkpoint built from its config.

The checkpoints have random weights, so their words are gibberish: the tests check the
pipeline - the adapter chosen from config.json, an output for every sample, the same
outputs at batch size 1 and 4, and a second run served from the prediction cache.
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmbench.models.resolve import CAPTIONER_TYPES, EMBEDDING_TYPES, VLM_TYPES
from mmbench.runner import evaluate
from tests.fixtures import tiny_dual_encoders, tiny_vlms
from tests.helpers import make_caption_task, read_jsonl

# types whose fixtures live in tiny_models and whose end-to-end tests are elsewhere
# (test_models_e2e.py: captioners, llava, idefics3; test_retrieval_task.py: clip, siglip, siglip2)
TESTED_ELSEWHERE = {"vision-encoder-decoder", "blip", "git", "llava", "idefics3", "clip", "siglip", "siglip2"}
VLM_CLASSES = {
    "llava_next": "LlavaNextForConditionalGeneration",
    "paligemma": "PaliGemmaForConditionalGeneration",
    "gemma3": "Gemma3ForConditionalGeneration",
    "blip-2": "Blip2ForConditionalGeneration",
    "instructblip": "InstructBlipForConditionalGeneration",
    "idefics2": "Idefics2ForConditionalGeneration",
    "mllama": "MllamaForConditionalGeneration",
}
PLAIN_PROMPT = {"blip-2", "instructblip", "paligemma"}  # no chat template in their checkpoints


class _Checkpoints:
    """Builds each tiny checkpoint on first use, once per session."""

    def __init__(self, root: Path):
        self.root = root
        self.paths: dict[str, str] = {}

    def __getitem__(self, model_type: str) -> str:
        if model_type not in self.paths:
            builder = {**tiny_vlms.BUILDERS, **tiny_dual_encoders.BUILDERS}[model_type]
            self.paths[model_type] = builder(self.root / model_type)
        return self.paths[model_type]


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> _Checkpoints:
    return _Checkpoints(tmp_path_factory.mktemp("families"))


def test_every_listed_type_has_a_tiny_fixture():
    fixtures = set(tiny_vlms.BUILDERS) | set(tiny_dual_encoders.BUILDERS) | TESTED_ELSEWHERE
    listed = CAPTIONER_TYPES | VLM_TYPES | EMBEDDING_TYPES
    assert listed <= fixtures, f"listed as supported without a tiny fixture: {sorted(listed - fixtures)}"
    assert set(tiny_vlms.BUILDERS) <= VLM_TYPES and set(tiny_dual_encoders.BUILDERS) <= EMBEDDING_TYPES
    assert set(VLM_CLASSES) == set(tiny_vlms.BUILDERS)


@pytest.mark.parametrize("model_type", sorted(tiny_vlms.BUILDERS) + sorted(tiny_dual_encoders.BUILDERS))
def test_fixture_is_small_and_records_its_type(checkpoints, model_type):
    path = Path(checkpoints[model_type])
    assert json.loads((path / "config.json").read_text())["model_type"] == model_type
    assert sum(f.stat().st_size for f in path.iterdir()) < 2_000_000


@pytest.mark.parametrize("model_type", sorted(tiny_vlms.BUILDERS))
def test_vlm_family_evaluates_end_to_end(tmp_path, checkpoints, model_type):
    ckpt = checkpoints[model_type]
    tasks = make_caption_task(tmp_path, prompt="Describe the image.")
    kw = dict(model=ckpt, tasks=["tiny_caption"], include=[str(tasks)], meteor=False, batch_size=4)
    res = evaluate(output=str(tmp_path / "run"), check_batch_invariance=True, **kw)
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0, task["failures"]
    assert task["n_samples"] == 6 and task["n_computed"] == 6
    assert task["batch_invariance"]["mismatches"] == 0  # batch 1 and batch 4 (left-padded) agree
    fp = res["model"]["fingerprint"]
    assert fp["adapter"] == "hf-vlm" and fp["model_type"] == model_type and fp["class"] == VLM_CLASSES[model_type]
    assert (fp["chat_template_sha256"] is None) == (model_type in PLAIN_PROMPT)
    preds = read_jsonl(tmp_path / "run" / task["predictions"])
    assert len(preds) == 6 and all(isinstance(p["prediction"], str) for p in preds)

    again = evaluate(output=str(tmp_path / "again"), **kw)["tasks"]["tiny_caption"]
    assert again["n_cached"] == 6 and again["n_computed"] == 0
    assert read_jsonl(tmp_path / "again" / again["predictions"]) == preds


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(i).integers(0, 256, (28 + i, 24, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _retrieval_task(root: Path) -> tuple[str, str]:
    """A 6-image webdataset shard (2 captions each) read by the built-in flickr30k task definition."""
    from mmbench.catalog import builtin_task_dir

    words = ["red", "green", "blue", "circle", "square", "cat", "dog", "on", "a", "the"]
    with tarfile.open(root / "shard.tar", "w") as tar:
        for i in range(6):
            rng = np.random.default_rng(50 + i)
            caps = "\n".join(" ".join(rng.choice(words, size=3 + k)) for k in range(2))
            for name, data in ((f"{i:06d}.jpg", _jpeg(i)), (f"{i:06d}.txt", caps.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (root / "tiny_retrieval.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'retrieval' / 'flickr30k_1k.yaml'}
        name: tiny_retrieval
        dataset: {{path: webdataset, data_files: {{test: shard.tar}}, revision: null}}
    """))
    return "tiny_retrieval", str(root / "tiny_retrieval.yaml")


@pytest.mark.parametrize("model_type", sorted(tiny_dual_encoders.BUILDERS))
def test_dual_encoder_family_evaluates_end_to_end(tmp_path, checkpoints, model_type):
    name, include = _retrieval_task(tmp_path)
    kw = dict(model=checkpoints[model_type], tasks=[name], include=[include])
    res = evaluate(output=str(tmp_path / "run"), batch_size=4, check_batch_invariance=True, **kw)
    task = res["tasks"][name]
    assert task["n_failed"] == 0, task["failures"]
    assert task["n_samples"] == 6 and task["n_requests"] == 6 + 12
    assert task["batch_invariance"]["mismatches"] == 0
    assert set(task["metrics"]) >= {"t2i_R@1", "i2t_R@1"}
    fp = res["model"]["fingerprint"]
    assert fp["adapter"] == "hf-embed" and fp["model_type"] == model_type
    embeddings = np.load(tmp_path / "run" / "predictions" / f"{name}.image_embeddings.npy")
    assert embeddings.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)

    again = evaluate(output=str(tmp_path / "again"), batch_size=5, **kw)["tasks"][name]
    assert again["n_cached"] == again["n_requests"] and again["n_computed"] == 0
    assert again["metrics"] == task["metrics"]


def test_chat_vlm_without_a_chat_template_is_refused(tmp_path, checkpoints):
    """Only the plain-prompt families may lack a chat template; for a chat VLM it is an error, not a guess."""
    import shutil

    from mmbench.errors import ModelLoadError
    from mmbench.models.resolve import load_model

    ckpt = shutil.copytree(checkpoints["llava_next"], tmp_path / "no_template")
    removed = [p for p in ckpt.iterdir() if p.name.startswith("chat_template")]
    assert removed
    for p in removed:
        p.unlink()
    with pytest.raises(ModelLoadError, match="no chat template"):
        load_model(str(ckpt))
