"""Computing what requests share once (``prefix_reuse``, on by default) gives the outputs of the
unshared path (``prefix_reuse=false``), per adapter family, on the tiny fixtures.

Tolerances: greedy generations are compared as strings and must be equal; log-likelihood sums
within ``SCORE_TOLERANCE`` (1e-4, the runner's batch-invariance tolerance: sharing changes only
the shapes of the matrix products, as a batch size does; measured 0 to 1e-6 here); embeddings
within 1e-5 (the same input encoded in another batch).
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from mmbench.errors import ModelLoadError
from mmbench.models import hf_vlm
from mmbench.models.prefix import continuation_inputs, plan_prefixes, positions, prefill_inputs
from mmbench.models.resolve import VLM_TYPES, load_model
from mmbench.runner import evaluate
from mmbench.runner.batching import batching_key, group_end, overlapped_batches
from mmbench.runner.inference import SCORE_TOLERANCE
from mmbench.distributed import DistContext
from mmbench.types import EmbedRequest, GenerateRequest, GenerationSettings, ImageRef, ScoreRequest
from tests.fixtures import tiny_models, tiny_vlms

BUILDERS = {"llava": tiny_models.make_llava, "idefics3": tiny_models.make_idefics3, **tiny_vlms.BUILDERS,
            "vit_gpt2": tiny_models.make_vit_gpt2_captioner, "blip": tiny_models.make_blip_captioner,
            "git": tiny_models.make_git_captioner, "clip": tiny_models.make_clip}
# short questions: every shared layout stays inside Gemma 3's 64-token test window
QUESTIONS = ["Why?", "What colour is it?", "Is it red?", "Shape?"]
GREEDY = GenerationSettings(max_new_tokens=6)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefix")
    built: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in built:
            built[name] = BUILDERS[name](root / name)
        return built[name]
    return get


def _images(n: int = 3) -> list[ImageRef]:
    return [ImageRef(pil=Image.fromarray((np.random.RandomState(i).rand(32, 32, 3) * 255).astype("uint8")))
            for i in range(n)]


def _questions(images: list[ImageRef], questions: list[str] = QUESTIONS) -> list[GenerateRequest]:
    """Every question about every image, the last image with one question fewer (groups of unequal size)."""
    reqs = [GenerateRequest(f"q{i}_{j}", (img,), prompt=q, generation=GREEDY)
            for i, img in enumerate(images) for j, q in enumerate(questions)]
    return reqs[:-1]


def _pair(checkpoints, family: str):
    path = checkpoints(family)
    return (load_model(path, device="cpu", dtype="float32"),
            load_model(path, device="cpu", dtype="float32", prefix_reuse=False))


# -- the plan ----------------------------------------------------------------------------------


def test_plan_groups_by_image_and_shares_the_longest_common_prefix():
    rows = [[1, 7, 7, 5, 6, 9], [1, 7, 7, 5, 6, 8, 8], [1, 7, 7, 4], [1, 7, 7, 5, 6, 9]]
    plan = plan_prefixes(rows, ["a", "a", "b", "b"], earliest=[3] * 4, latest=[len(r) - 1 for r in rows])
    assert plan.owner == [0, 0, 1, 1] and plan.reps == [0, 2]
    assert plan.prefix_len == [5, 3]  # a: up to where rows part; b: capped by the shortest row's last token


def test_plan_keeps_the_image_in_the_prefix_or_refuses():
    rows = [[1, 7, 7, 2], [1, 7, 7, 3]]
    # the prompts part before the image ends: two groups, each shares through its image
    plan = plan_prefixes([[1, 2, 7, 7, 5], [1, 3, 7, 7, 5]], ["a", "a"], earliest=[4, 4], latest=[4, 4])
    assert plan.owner == [0, 1] and plan.prefix_len == [4, 4]
    # an image as a row's last token leaves nothing to continue from: no sharing for the batch
    assert plan_prefixes(rows, ["a", "a"], earliest=[4, 3], latest=[3, 3]) is None


def test_layout_keeps_every_token_at_its_own_position():
    rows = [[1, 7, 7, 5, 6], [1, 7, 7, 5, 8, 8], [1, 9, 4]]
    plan = plan_prefixes(rows, ["a", "a", "b"], earliest=[3, 3, 2], latest=[4, 5, 2])
    reps = {"input_ids": torch.tensor([[1, 7, 7, 5, 6], [1, 9, 4, 0, 0]]),
            "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}
    pre = prefill_inputs(reps, plan.prefix_len, pad_id=0)
    assert pre["input_ids"].tolist() == [[1, 7, 7, 5], [1, 9, 0, 0]]
    ids, mask = continuation_inputs(rows, plan, pre, pad_id=0, side="left")
    pos = positions(mask)
    for r, row in enumerate(rows):  # the real tokens, in order, at positions 0..len-1
        assert ids[r][mask[r].bool()].tolist() == row
        assert pos[r][mask[r].bool()].tolist() == list(range(len(row)))


# -- chat VLMs --------------------------------------------------------------------------------


def test_every_listed_vlm_type_has_a_rule():
    assert not hf_vlm.PREFIX_REUSE & set(hf_vlm.NO_PREFIX_REUSE)
    assert VLM_TYPES <= hf_vlm.PREFIX_REUSE | set(hf_vlm.NO_PREFIX_REUSE)


@pytest.mark.parametrize("family", sorted(hf_vlm.PREFIX_REUSE))
def test_shared_generation_equals_unshared(checkpoints, family):
    on, off = _pair(checkpoints, family)
    assert on.shares_prefixes and not off.shares_prefixes
    requests = _questions(_images())
    prepared = on.prepare(requests).inputs["other"][1]
    assert prepared["__plan__"].n_groups == 3  # the shared path is taken: one prefix per image
    shared, unshared = on.generate(requests), off.generate(requests)
    assert all(o.ok for o in shared + unshared), [o.error for o in shared + unshared]
    assert [o.text for o in shared] == [o.text for o in unshared]
    assert [on.generate([r])[0].text for r in requests[:4]] == [o.text for o in shared[:4]]


@pytest.mark.parametrize("family", sorted(hf_vlm.PREFIX_REUSE))
def test_shared_scores_equal_unshared(checkpoints, family):
    on, off = _pair(checkpoints, family)
    images = _images(2)
    conts = (" red", " a blue circle", "no", " it is a triangle")
    requests = [ScoreRequest(f"s{i}_{j}", (img,), continuations=conts[j:] + conts[:j], prompt=q)
                for i, img in enumerate(images) for j, q in enumerate(QUESTIONS[:2])]
    assert "__plan__" in on.prepare(requests).inputs["score"][2]
    for a, b in zip(on.score(requests), off.score(requests)):
        assert a.ok and b.ok, (a.error, b.error)
        assert [n for _, n in a.scores] == [n for _, n in b.scores]
        assert max(abs(x - y) for (x, _), (y, _) in zip(a.scores, b.scores)) <= SCORE_TOLERANCE


def test_a_layout_wider_than_the_sliding_window_runs_unshared(checkpoints):
    """Gemma 3's test window is 64 columns: padding between a prefix and a question would move
    tokens apart, so a batch that does not fit runs whole, with the same outputs."""
    on, off = _pair(checkpoints, "gemma3")
    requests = _questions(_images(2), ["Why?", "What colour is the shape on the left, and is it bigger than "
                                       "the one on the right of the picture?"])
    assert "__plan__" not in on.prepare(requests).inputs["other"][1]
    assert [o.text for o in on.generate(requests)] == [o.text for o in off.generate(requests)]


@pytest.mark.parametrize("family", sorted(set(hf_vlm.NO_PREFIX_REUSE) & set(BUILDERS)))
def test_families_without_reuse_run_whole(checkpoints, family):
    model = load_model(checkpoints(family), device="cpu", dtype="float32")
    assert not model.shares_prefixes and model.info()["prefix_reuse"] is False
    assert "__plan__" not in model.prepare(_questions(_images(1))).inputs["other"][1]


def test_the_switch_is_recorded_but_not_fingerprinted(checkpoints):
    on, off = _pair(checkpoints, "llava")
    assert on.info()["prefix_reuse"] is True and off.info()["prefix_reuse"] is False
    assert on.fingerprint()["hash"] == off.fingerprint()["hash"]
    with pytest.raises(ModelLoadError, match="prefix_reuse takes true or false"):
        load_model(checkpoints("llava"), device="cpu", dtype="float32", prefix_reuse="no")


def test_eval_with_and_without_reuse_writes_equal_predictions(tmp_path, checkpoints):
    data = tmp_path / "data"
    data.mkdir()
    rows = []
    for i in range(3):
        Image.fromarray((np.random.RandomState(i).rand(32, 32, 3) * 255).astype("uint8")).save(data / f"{i}.png")
        rows += [{"question_id": f"{i}_{j}", "image": f"{i}.png", "question": q, "answers": "red"}
                 for j, q in enumerate(QUESTIONS)]
    (data / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny_vqa.yaml").write_text(textwrap.dedent("""
        name: tiny_vqa
        family: vqa
        dataset: {path: json, data_files: ../data/q.jsonl, split: train}
        generation: {max_new_tokens: 6}
        metrics: [exact-match]
    """))
    runs = {}
    for reuse in (True, False):
        out = tmp_path / f"run_{reuse}"
        res = evaluate(model=checkpoints("llava"), tasks=["tiny_vqa"], include=[str(tmp_path / "tasks")],
                       output=str(out), batch_size=5, cache=False, model_args={"prefix_reuse": reuse})
        lines = (out / res["tasks"]["tiny_vqa"]["predictions"]).read_text().splitlines()
        runs[reuse] = (res, {row["id"]: row["raw_output"] for row in map(json.loads, lines)})
    (res_on, preds_on), (res_off, preds_off) = runs[True], runs[False]
    assert preds_on == preds_off and len(preds_on) == 12
    assert res_on["model"]["prefix_reuse"] is True and res_off["model"]["prefix_reuse"] is False
    assert res_on["model"]["fingerprint"]["hash"] == res_off["model"]["fingerprint"]["hash"]
    assert res_off["config"]["model_args"] == {"prefix_reuse": False}


# -- captioners and embedders --------------------------------------------------------------------


def _count_calls(module) -> list[int]:
    """The batch size of every forward call of ``module``."""
    sizes: list[int] = []
    module.register_forward_hook(lambda _m, args, kwargs, _out: sizes.append(
        (args[0] if args else kwargs["pixel_values"]).shape[0]), with_kwargs=True)
    return sizes


@pytest.mark.parametrize("family", ["vit_gpt2", "blip", "git"])
@pytest.mark.parametrize("equal_rows", [True, False])
def test_captioner_encodes_each_image_once(checkpoints, family, equal_rows):
    on, off = _pair(checkpoints, family)
    images = _images(2)
    conts = ("a red circle", "a blue square", "green", "a big yellow triangle on the left")
    # two requests per image (requests about one image share its encoding too); equal or unequal row counts
    requests = [ScoreRequest(f"s{i}", (images[i % 2],), continuations=conts if equal_rows else conts[:1 + i],
                             prompt="a" if i == 3 else None) for i in range(4)]
    encoders = {"vit_gpt2": lambda m: m.encoder, "blip": lambda m: m.vision_model, "git": lambda m: m.git.image_encoder}
    calls_on, calls_off = _count_calls(encoders[family](on.model)), _count_calls(encoders[family](off.model))
    shared, unshared = on.score(requests), off.score(requests)
    n_rows = sum(len(r.continuations) for r in requests)
    # GIT encodes each image once when every image has as many rows (its forward repeats the features)
    assert calls_on == ([2] if family != "git" or equal_rows else [n_rows]) and calls_off == [n_rows]
    for a, b in zip(shared, unshared):
        assert a.ok and b.ok, (a.error, b.error)
        assert [n for _, n in a.scores] == [n for _, n in b.scores]
        assert max(abs(x - y) for (x, _), (y, _) in zip(a.scores, b.scores)) <= SCORE_TOLERANCE


def test_embedder_encodes_each_distinct_input_once(checkpoints):
    on, off = _pair(checkpoints, "clip")
    images = _images(2)
    requests = ([EmbedRequest(f"i{k}", images=(images[k % 2],)) for k in range(5)]
                + [EmbedRequest(f"t{k}", text=["a red circle", "a blue square"][k % 2]) for k in range(5)])
    calls_on = _count_calls(on.model.vision_model)
    calls_off = _count_calls(off.model.vision_model)
    shared, unshared = on.embed(requests), off.embed(requests)
    assert calls_on == [2] and calls_off == [5]
    for a, b in zip(shared, unshared):
        assert float(np.max(np.abs(a.embedding - b.embedding))) <= 1e-5
    assert np.array_equal(shared[0].embedding, shared[2].embedding)


# -- the runner ------------------------------------------------------------------------------------


def test_runner_puts_requests_about_one_image_together_for_a_sharing_model():
    a, b = ImageRef(path="/data/a.png"), ImageRef(path="/data/b.png")
    requests = [GenerateRequest("1", (a,), prompt="short"), GenerateRequest("2", (b,), prompt="a long question"),
                GenerateRequest("3", (a,), prompt="a much longer question"), GenerateRequest("4", (b,), prompt="x")]
    by_length = [r.id for r in sorted(requests, key=batching_key)]
    by_image = [r.id for r in sorted(requests, key=lambda r: batching_key(r, True))]
    assert by_length == ["3", "2", "1", "4"]
    assert by_image == ["3", "1", "2", "4"]  # each image's questions together, longest first
    texts = [EmbedRequest(str(k), text=t) for k, t in enumerate(["ab", "cd", "ab", "cd"])]
    assert [r.id for r in sorted(texts, key=lambda r: batching_key(r, True))] == ["0", "2", "1", "3"]
    items = list(range(10))
    shards = [DistContext(rank, 3, rank).shard(items, contiguous=True) for rank in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_batches_of_a_sharing_model_end_where_an_image_ends():
    requests = [GenerateRequest(str(i), (ImageRef(path=f"/data/{p}.png"),)) for i, p in enumerate("aaabbcccccd")]
    assert group_end(requests, 0, 4) == 3  # not a's three and one of b's
    assert group_end(requests, 5, 3) == 8  # c alone fills the batch: split
    assert group_end(requests, 10, 4) == 11

    class Model:
        shares_prefixes = True

        def prepare(self, batch):
            return batch

        def run(self, batch):
            return batch

    timer = {"data_wait_s": 0.0, "forward_s": 0.0}
    sizes = [[r.id for r in batch] for batch, _ in overlapped_batches(Model(), requests, 4, timer)]
    assert sizes == [["0", "1", "2"], ["3", "4"], ["5", "6", "7", "8"], ["9", "10"]]
    Model.auto_batch_cpu = 4  # what "auto" starts at on a CPU comes from the adapter
    if not torch.cuda.is_available():
        assert [len(b) for b, _ in overlapped_batches(Model(), requests, "auto", timer)] == [3, 2, 4, 2]


def test_auto_batch_size_of_a_sharing_vlm(checkpoints):
    on, off = _pair(checkpoints, "llava")
    assert (on.auto_batch_cpu, off.auto_batch_cpu) == (32, 16)

