"""Regenerate ``cases.json`` by running jmhessel/clipscore's own scoring functions.

Usage (see README.md for the commit)::

    python tests/data/clipscore/make_cases.py /path/to/clipscore/clipscore.py

The official file is loaded from the given path (it is not part of this
repository).  No CLIP model is run: the official ``get_clip_score`` and
``get_refonlyclipscore`` accept precomputed image features, and the one function
that would run the text encoder, ``extract_all_captions``, is replaced by a
stand-in that returns the given feature rows unchanged.  The official functions
then do the rest: normalisation, clipping, the w = 2.5 rescaling, the max over
references, the means.  As in the official ``main``, the candidate features
returned by ``get_clip_score`` are the ones given to ``get_refonlyclipscore``,
and RefCLIPScore per caption is the harmonic mean of the two per-caption
outputs (``main`` needs images on disk and CLIP, so that one formula is
evaluated here, on the official outputs).

Modules the official file imports but the scoring path never uses (``clip``, and
``torchvision``/``sklearn`` where they are not installed) are replaced by empty
stand-ins.  With numpy >= 1.21 the official code never calls sklearn.

Needs numpy, torch, tqdm, pillow, packaging; no model, no network.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np
from packaging import version

OUT = Path(__file__).with_name("cases.json")


def _stand_in(name: str, **attrs) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


def load_official(path: Path):
    assert version.parse(np.__version__) >= version.parse("1.21"), "the sklearn branch would need real sklearn"
    _stand_in("clip")  # the OpenAI CLIP package: only used to load the model and tokenize
    try:
        import torchvision.transforms  # noqa: F401
    except ImportError:
        unused = {n: None for n in ("Compose", "Resize", "CenterCrop", "ToTensor", "Normalize")}
        _stand_in("torchvision", transforms=None)
        _stand_in("torchvision.transforms", **unused)
    try:
        import sklearn.preprocessing  # noqa: F401
    except ImportError:
        _stand_in("sklearn")
        _stand_in("sklearn.preprocessing", normalize=None)
    sys.path.insert(0, str(path.parent))  # its generation_eval_utils (imported, unused here)
    try:
        import generation_eval_utils  # noqa: F401
    except ImportError:
        _stand_in("generation_eval_utils")
    spec = importlib.util.spec_from_file_location("official_clipscore", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The text encoder is the only model step on this path: features are given instead.
    module.extract_all_captions = lambda captions, model, device, **kwargs: np.vstack(captions)
    return module


def run_official(module, image, caption, references, w):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, per, normalised_captions = module.get_clip_score(None, image, caption, "cpu", w=w)
        ref_mean, ref_per = module.get_refonlyclipscore(
            None, [list(r) for r in references], normalised_captions, "cpu")
        ref_per = np.asarray(ref_per)
        with np.errstate(divide="ignore", invalid="ignore"):
            refclip = 2 * per * ref_per / (per + ref_per)
    return {
        "CLIPScore": float(mean),
        "CLIPScore_per": [float(v) for v in per],
        "max_reference_cosine_per": [float(v) for v in ref_per],
        "RefCLIPScore": None if np.isnan(np.mean(refclip)) else float(np.mean(refclip)),  # JSON null for NaN
        "RefCLIPScore_per": [None if np.isnan(v) else float(v) for v in refclip],
        "dtype": str(per.dtype),
    }


# ----------------------------------------------------------------------------- cases


def rounded(x, dtype=np.float32):
    """4 decimals: the JSON stores these short decimals and both sides cast them to ``dtype`` alike."""
    return np.asarray(np.round(x, 4).tolist(), dtype=dtype)


def as_json(x: np.ndarray) -> list:
    """Shortest decimals that read back as the same ``x.dtype`` values (checked)."""
    out = [[float(np.format_float_positional(v, unique=True)) for v in row] for row in np.atleast_2d(x)]
    assert np.array_equal(np.asarray(out, dtype=x.dtype), np.atleast_2d(x))
    return out


def clip_like(rng, n: int, d: int, ref_counts, dtype=np.float32, flip=()):
    """Features with CLIP-like geometry: a shared direction plus per-item parts.

    Image-caption cosines come out around 0.2-0.4, caption-reference around 0.6-0.9.
    Candidates listed in ``flip`` point away from their image (negative cosine, clipped to 0).
    """
    shared_img, shared_txt = rng.standard_normal(d), rng.standard_normal(d)
    content = rng.standard_normal((n, d))
    image = 0.6 * shared_img + 0.5 * content + 0.6 * rng.standard_normal((n, d))
    caption = 1.0 * shared_txt + 0.5 * content + 0.5 * rng.standard_normal((n, d))
    for i in flip:
        caption[i] = shared_txt - 2.0 * image[i]
    references = [shared_txt + 0.5 * content[i] + 0.6 * rng.standard_normal((m, d)) for i, m in enumerate(ref_counts)]
    if dtype == np.float16:
        scale = 2.0   # CLIP features have norms of ~10: keep magnitudes of that order
        image, caption = image * scale, caption * scale
        references = [r * scale for r in references]
    return rounded(image, dtype), rounded(caption, dtype), [rounded(r, dtype) for r in references]


def build_cases():
    rng = np.random.default_rng(20211104)
    cases = []
    counts = [int(c) for c in rng.integers(1, 6, 12)]
    image, caption, refs = clip_like(rng, 12, 512, counts, flip=(3, 9))
    cases.append(("clip_like_float32", "12 captions, d=512, 1-5 references each; captions 3 and 9 point "
                  "away from their images (CLIPScore clipped to 0)", image, caption, refs, 2.5))
    counts = [int(c) for c in rng.integers(1, 4, 10)]
    image, caption, refs = clip_like(rng, 10, 64, counts)
    cases.append(("clip_like_w1", "10 captions, d=64, w=1.0", image, caption, refs, 1.0))
    image = rounded(rng.standard_normal((12, 32)))
    caption = rounded(rng.standard_normal((12, 32)))
    refs = [rounded(rng.standard_normal((m, 32))) for m in (1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2)]
    cases.append(("independent_gaussian", "12 captions, d=32, all features independent: cosines near 0 "
                  "of both signs, including negative best-reference cosines (official formula unclipped)",
                  image, caption, refs, 2.5))
    counts = [int(c) for c in rng.integers(1, 6, 8)]
    image, caption, refs = clip_like(rng, 8, 256, counts, dtype=np.float16, flip=(5,))
    cases.append(("clip_like_float16", "8 captions, d=256, float16 features as CLIP gives on a GPU: the "
                  "official code normalises in float16, mmbench in float64", image, caption, refs, 2.5))
    image = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
    caption = np.array([[-1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    refs = [np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32), np.array([[0, 1, 1]], dtype=np.float32),
            np.array([[1, 0, 0]], dtype=np.float32)]
    cases.append(("zero_and_exact", "hand-made: caption 0 has CLIPScore 0 and best reference cosine 0 "
                  "(official 0/0 = NaN, mmbench 0); the others have exact values", image, caption, refs, 2.5))
    return cases


def dump(obj, indent: int = 0) -> str:
    """JSON with one line per matrix row, so the file diffs well."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad}  {json.dumps(k)}: {dump(v, indent + 2).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], (list, dict)):
        return pad + "[\n" + ",\n".join(dump(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return pad + json.dumps(obj, allow_nan=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="path to the official clipscore.py")
    args = parser.parse_args()
    source = args.official.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(source) + source).hexdigest()
    module = load_official(args.official)
    cases = []
    for name, description, image, caption, refs, w in build_cases():
        official = run_official(module, image, caption, refs, w)
        cases.append({
            "name": name,
            "description": description,
            "w": w,
            "dtype": str(image.dtype),
            "official": official,
            "image_feats": as_json(image),
            "caption_feats": as_json(caption),
            "reference_feats": [as_json(r) for r in refs],
        })
        print(f"  {name}: CLIPScore {official['CLIPScore']} RefCLIPScore {official['RefCLIPScore']}", file=sys.stderr)
    document = {
        "generated_by": "tests/data/clipscore/make_cases.py",
        "official_file": "clipscore.py",
        "official_git_blob": blob,
        "numpy": np.__version__,
        "cases": cases,
    }
    OUT.write_text(dump(document) + "\n")
    print(f"wrote {len(cases)} cases to {OUT} (official file git blob {blob})", file=sys.stderr)


if __name__ == "__main__":
    main()
