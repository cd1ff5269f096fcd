"""CoCa through open_clip (``--adapter open-clip-coca``), on a tiny CoCa built from a custom
open_clip model config with random weights (saved to a local safetensors file, as a user's
checkpoint would be): greedy captions token for token equal to open_clip's own ``CoCa.generate``,
the contrastive embeddings equal to ``encode_image`` / ``encode_text``, CLIPScore with CoCa as the
scorer, and ``mmbench eval`` end to end on a captioning and a retrieval task.

Needs open_clip (``pip install open_clip_torch``; imported over mmbench's torchvision stand-in
where torchvision does not import): skipped without it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from mmbench.models.torchvision_shim import import_open_clip

try:
    open_clip, _ = import_open_clip()
except ImportError:
    pytest.skip("open_clip is not installed", allow_module_level=True)

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mmbench.errors import ModelLoadError  # noqa: E402
from mmbench.models.open_clip_coca import greedy_caption_tokens  # noqa: E402
from mmbench.models.resolve import load_model  # noqa: E402
from mmbench.types import EmbedRequest, GenerateRequest, GenerationSettings, ImageRef  # noqa: E402

NAME = "TinyCoCaTest"
TINY = {"embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16,
                       "attentional_pool": True, "attn_pooler_queries": 16, "attn_pooler_heads": 2,
                       "output_tokens": True},
        "text_cfg": {"context_length": 20, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                     "embed_cls": True, "output_tokens": True},
        "multimodal_cfg": {"context_length": 20, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                           "attn_pooler_heads": 2},
        "custom_text": True}
EOT = 49407


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(config path, weights path): random weights, with the end token made likely where the decoder's
    state points along one direction, so some captions end early and some run to the budget."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("coca")
    config = folder / f"{NAME}.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model(NAME)
    model.eval()
    with torch.no_grad():  # open_clip initialises the decoder's output projection to zeros (all logits tie)
        proj = model.text_decoder.text_projection
        proj.normal_(std=proj.shape[0] ** -0.5)
        # the end token takes the place of the token greedy decoding picks most often after the 4th step
        preprocess = open_clip.image_transform(32, is_train=False)
        pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in _images()])
        late = greedy_caption_tokens(model, pixels, 12, sot=49406, eot=EOT, min_seq_len=0)[:, 4:]
        proj[:, EOT] = proj[:, int(late.flatten().mode().values)] * 1.01
    weights = folder / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return str(config), str(weights)


def _load(tiny, **kw):
    config, weights = tiny
    return load_model(NAME, adapter="open-clip-coca", device="cpu", model_config=config, pretrained=weights, **kw)


def _images(n=6):
    from easy_vqa import get_test_image_paths

    paths = get_test_image_paths()
    return [paths[i] for i in range(n)]


def _open_clip_generate(model, pixels, max_new_tokens, min_seq_len, monkeypatch):
    """open_clip's own CoCa.generate, top_k=1, with the transformers names its module failed to import
    under transformers 5 (BeamSearchScorer is gone; the others exist) put back."""
    import transformers
    from open_clip import coca_model

    for name in ("LogitsProcessorList", "TopKLogitsWarper", "RepetitionPenaltyLogitsProcessor",
                 "MinLengthLogitsProcessor", "MaxLengthCriteria", "StoppingCriteriaList"):
        monkeypatch.setattr(coca_model, name, getattr(transformers, name), raising=False)
    monkeypatch.setattr(coca_model, "_has_transformers", True)
    monkeypatch.setitem(coca_model.GENERATION_TYPES, "top_k", transformers.TopKLogitsWarper)
    # seq_len counts the start token, and open_clip forces its last token to be the end token
    out = model.generate(pixels, generation_type="top_k", top_k=1, seq_len=max_new_tokens + 2,
                         min_seq_len=min_seq_len)
    return out[:, 1:max_new_tokens + 1]


@pytest.mark.parametrize("min_seq_len", [5, 2])
def test_greedy_captions_equal_open_clip_generate(tiny, monkeypatch, min_seq_len):
    adapter = _load(tiny, min_seq_len=min_seq_len)
    pixels = torch.stack([adapter.preprocess(Image.open(p).convert("RGB")) for p in _images()])
    ours = greedy_caption_tokens(adapter.model, pixels, 12, sot=49406, eot=EOT, min_seq_len=min_seq_len)
    ref = _open_clip_generate(adapter.model, pixels, 12, min_seq_len, monkeypatch)
    ours = torch.nn.functional.pad(ours, (0, ref.shape[1] - ours.shape[1]), value=adapter.model.pad_id)
    assert torch.equal(ours, ref)
    ended = [(row == EOT).nonzero()[0, 0].item() + 1 for row in ref if (row == EOT).any()]
    assert len(ended) == len(ref) and len(set(ended)) > 1  # every caption ends, at different lengths
    assert min(ended) >= min_seq_len - 1  # the end token was barred until min_seq_len (start token included)


def test_adapter_serves_captions_and_embeddings(tiny):
    adapter = _load(tiny)
    paths = _images(4)
    gen = GenerationSettings(max_new_tokens=10)
    outs = adapter.generate([GenerateRequest(id=str(i), images=(ImageRef(path=p),), prompt="Describe.",
                                             generation=gen) for i, p in enumerate(paths)])
    pixels = torch.stack([adapter.preprocess(Image.open(p).convert("RGB")) for p in paths])
    tokens = greedy_caption_tokens(adapter.model, pixels, 10, sot=49406, eot=EOT)
    assert [o.error for o in outs] == [None] * 4
    assert [o.text for o in outs] == [adapter.decode(row) for row in tokens.tolist()]
    assert [adapter.generate([GenerateRequest(id="x", images=(ImageRef(path=p),), generation=gen)])[0].text
            for p in paths] == [o.text for o in outs]  # batch of one == batched
    texts = ["a red circle", "a blue triangle on a plain background"]
    emb = adapter.embed([EmbedRequest(id="i", images=(ImageRef(path=paths[0]),))]
                        + [EmbedRequest(id=t, text=t) for t in texts])
    with torch.no_grad():
        img = adapter.model.encode_image(pixels[:1])
        txt = adapter.model.encode_text(adapter.tokenizer(texts))
    assert np.allclose(emb[0].embedding, (img / img.norm(dim=-1, keepdim=True))[0].numpy(), atol=1e-6)
    assert np.allclose(np.stack([e.embedding for e in emb[1:]]), (txt / txt.norm(dim=-1, keepdim=True)).numpy(),
                       atol=1e-6)
    beams = adapter.generate([GenerateRequest(id="b", images=(ImageRef(path=paths[0]),),
                                              generation=GenerationSettings(num_beams=3))])
    assert "decodes greedily" in beams[0].error


def test_fingerprint_pins_weights_and_config_not_paths(tiny, tmp_path):
    import shutil

    fp = _load(tiny).fingerprint()
    assert fp["adapter"] == "open-clip-coca" and fp["state_dict_sha256"] and fp["model_config_sha256"]
    moved = tmp_path / "elsewhere.safetensors"
    shutil.copy(tiny[1], moved)
    assert _load((tiny[0], str(moved))).fingerprint()["hash"] == fp["hash"]
    assert _load(tiny, min_seq_len=3).fingerprint()["hash"] != fp["hash"]
    with pytest.raises(ModelLoadError, match="registers model 'TinyCoCaTest', but --model is 'Other'"):
        load_model("Other", adapter="open-clip-coca", model_config=tiny[0])


def test_clip_models_are_refused(tiny, tmp_path):
    config = tmp_path / "TinyClipNotCoCa.json"
    config.write_text(json.dumps({"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32,
                                                                  "head_width": 16, "patch_size": 16},
                                  "text_cfg": {"context_length": 20, "vocab_size": 49408, "width": 32,
                                               "heads": 2, "layers": 1}}))
    with pytest.raises(ModelLoadError, match="not a CoCa model: use --adapter open-clip"):
        load_model("TinyClipNotCoCa", adapter="open-clip-coca", model_config=str(config), device="cpu")


def test_coca_as_the_clipscore_scorer(tiny):
    from mmbench.metrics.clipscore import CLIPSCORE_PROMPT, clip_score, clipscore_metric

    adapter = _load(tiny)
    paths = _images(3)
    captions = ["a red circle", "a teal rectangle", "a gray triangle"]
    values = clipscore_metric(captions, [[c] for c in captions], images=[ImageRef(path=p) for p in paths],
                              load_embedder=lambda spec, device: adapter, scorer="tiny-coca", device="cpu",
                              with_references=False)
    with torch.no_grad():
        img = adapter.model.encode_image(torch.stack([adapter.preprocess(Image.open(p).convert("RGB"))
                                                      for p in paths])).numpy()
        txt = adapter.model.encode_text(adapter.tokenizer([CLIPSCORE_PROMPT + c for c in captions])).numpy()
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    expected, _ = clip_score(img, txt)
    assert values.corpus["CLIPScore"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_eval_end_to_end_caption_and_retrieval(tiny, tmp_path):
    """``mmbench eval`` on easy-VQA captioning (CLIPScore by the reference CLIP; the COCO metrics,
    which need Java, are other tests' business) and a local retrieval shard."""
    import textwrap

    from mmbench.catalog import include_tasks
    from mmbench.runner import evaluate
    from mmbench.tasks.config import builtin_task_dir
    from tests.helpers import read_jsonl
    from tests.test_retrieval_task import _local_task

    config, weights = tiny
    retrieval = _local_task(tmp_path, "wds_coca")
    (tmp_path / "cap.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'captioning' / 'easyvqa_caption.yaml'}
        name: easyvqa_caption_coca_test
        metrics: [clipscore]
    """))
    include_tasks(tmp_path / "cap.yaml")
    res = evaluate(model=NAME, adapter="open-clip-coca", tasks=["easyvqa_caption_coca_test", retrieval],
                   include=[str(tmp_path / f"{retrieval}.yaml")], limit=6, batch_size=4,
                   output=str(tmp_path / "run"), model_args={"model_config": config, "pretrained": weights},
                   device="cpu")
    cap, ret = res["tasks"]["easyvqa_caption_coca_test"], res["tasks"][retrieval]
    assert cap["n_failed"] == 0 and ret["n_failed"] == 0
    assert "CLIPScore" in cap["metrics"] and "t2i_R@1" in ret["metrics"]
    preds = read_jsonl(tmp_path / "run" / cap["predictions"])
    adapter = _load(tiny)
    direct = adapter.generate([GenerateRequest(id=p["id"], images=(ImageRef(path=_image_path(p["id"])),),
                                               generation=GenerationSettings(max_new_tokens=16)) for p in preds])
    assert len(preds) == 6 and [p["prediction"] for p in preds] == [d.text for d in direct]
    assert res["model"]["fingerprint"]["state_dict_sha256"] == adapter.fingerprint()["state_dict_sha256"]


def _image_path(sample_id: str) -> str:
    from easy_vqa import get_test_image_paths

    return get_test_image_paths()[int(sample_id.rsplit("-", 1)[-1])]
