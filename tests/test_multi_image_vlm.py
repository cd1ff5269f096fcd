"""Several images per request reach an HF VLM in order (MMMU-style questions): the processor gets
each request's images in the request's order, one image placeholder per image, and a batch mixing
one- and two-image requests gives the answers each request gets alone."""

import numpy as np
import pytest
from PIL import Image

from mmbench.models.resolve import load_model
from mmbench.types import GenerateRequest, GenerationSettings
from tests.fixtures import tiny_models


def _img(value: int) -> Image.Image:
    return Image.fromarray(np.full((32, 32, 3), value, dtype="uint8"))


@pytest.fixture(scope="module", params=["llava", "idefics3"])
def vlm(request, tmp_path_factory):
    make = {"llava": tiny_models.make_llava, "idefics3": tiny_models.make_idefics3}[request.param]
    return request.param, load_model(make(tmp_path_factory.mktemp(request.param) / "ckpt"), device="cpu")


def _req(i: str, n: int) -> GenerateRequest:
    return GenerateRequest(id=i, images=(), prompt="<image 1> or <image 2>: which is darker?",
                           generation=GenerationSettings(max_new_tokens=4))


def test_images_reach_the_processor_in_order(vlm):
    kind, model = vlm
    dark, light = _img(10), _img(240)
    prompt = model.render_prompt("which is darker?", 2)
    assert prompt.count("<image>") == 2  # one placeholder per image, before the text
    # the generation inputs (adapters that also score route GenerateRequests through _generate_inputs)
    prep = getattr(model, "_generate_inputs", model._preprocess)
    ab = prep([_req("q", 2)], [[dark, light]])
    ba = prep([_req("q", 2)], [[light, dark]])
    pix_ab, pix_ba = ab["pixel_values"], ba["pixel_values"]
    one = prep([_req("q", 1)], [[dark]])["pixel_values"]
    if kind == "llava":  # a flat batch of images: request order, then image order
        assert pix_ab.shape[0] == 2
        assert np.allclose(pix_ab[0].numpy(), one[0].numpy()) and np.allclose(pix_ab[1].numpy(), pix_ba[0].numpy())
    else:  # idefics3: one list of images per text, each image split into its patches
        assert pix_ab.shape[1] == 2 * one.shape[1]
        n = one.shape[1]
        assert np.allclose(pix_ab[0, :n].numpy(), one[0].numpy())
        assert np.allclose(pix_ab[0, n:].numpy(), pix_ba[0, :n].numpy())


def test_mixed_image_counts_in_one_batch(vlm):
    _, model = vlm
    a, b, c = _img(10), _img(240), _img(120)
    reqs = [_req("two", 2), _req("one", 1)]
    def answer(rs, ims):
        return model._forward(rs, model._preprocess(rs, ims))

    together = answer(reqs, [[a, b], [c]])
    alone = answer([reqs[0]], [[a, b]]) + answer([reqs[1]], [[c]])
    assert together == alone
