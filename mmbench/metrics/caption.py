"""COCO caption metrics with pycocoevalcap 1.2's exact rules, tokenising once.

:func:`score_captions` gives what ``COCOEvalCap.evaluate()`` gives (corpus value and
per-image values, equal within 1e-6) for BLEU-1..4, METEOR, ROUGE-L, CIDEr-D and, when
its assets are present, SPICE:

* Every caption is PTB-tokenised once (:mod:`mmbench.metrics.ptb`; references and
  predictions as the two separate tokenizer calls pycocoevalcap makes).
* BLEU (``Bleu(4)``, option ``"closest"``, tiny=1e-15 / small=1e-9 smoothing, corpus
  value from the summed counts), ROUGE-L (beta 1.2, max precision and max recall over the
  references, tokens from ``split(" ")`` so an empty caption is one empty token) and
  CIDEr-D (``Cider``: n=1..4, sigma 6, document frequencies from the references of the
  evaluated images, ``log(max(1, df))``, clipped tf-idf, length penalty on the bigram
  counts, x10) are computed here, with numpy, rather than by pycocoevalcap's much slower
  per-n-gram Python loops (re-implemented, not imported: pycocoevalcap's classes cannot
  share one tokenisation or n-gram table and spend most of their time in Python dicts).
* METEOR is the official ``meteor-1.5.jar`` (needs Java); its corpus value is the jar's
  aggregate over all segments, not the mean of the per-image values.
* SPICE runs the official ``spice-1.0.jar`` only if Stanford CoreNLP 3.6.0 is already in
  pycocoevalcap's ``spice/lib`` folder (pycocoevalcap downloads it on first use; mmbench
  never downloads anything).  That path cannot be tested on machines without the assets.

Example::

    >>> v = score_captions(["a dog runs"], [["a dog is running", "a running dog"]], meteor=False)
    >>> round(v.corpus["BLEU-1"], 4), v.unavailable["METEOR"]
    (0.6667, 'disabled')
"""

from __future__ import annotations

import os
from itertools import chain
from typing import Sequence

import numpy as np

from mmbench.metrics import java as _java
from mmbench.metrics import ptb
from mmbench.metrics.java import meteor_session
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import MetricValues

__all__ = ["CAPTION_METRICS", "score_captions", "bleu", "rouge_l", "cider_d", "meteor_jar", "meteor_jar_batches",
           "meteor_session", "spice_status"]

CAPTION_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE")
_IMPL = "mmbench (pycocoevalcap 1.2 rules)"
_TOKENIZERS = {"ptb": "python", "ptb-java": "java"}
ONE_IMAGE_WARNING = ("CIDEr-D takes its document frequencies from the references of the evaluated images, so "
                     "with a single image every n-gram has the maximal frequency and CIDEr-D is 0; values on a "
                     "subset are not comparable to values on the full set")


def score_captions(predictions: Sequence[str], references: Sequence[Sequence[str]], *, tokenizer: str = "ptb",
                   meteor: bool | None = None, spice: bool | None = None) -> MetricValues:
    """Score one predicted caption per image against that image's reference captions.

    ``tokenizer``: ``"ptb"`` (pure Python, identical output) or ``"ptb-java"`` (the official
    jar, one JVM run).  ``meteor``: None runs METEOR iff Java is available, False skips it
    (reported unavailable, reason ``"disabled"``), True requires it.  ``spice``: None runs
    SPICE iff its CoreNLP 3.6.0 assets are present locally, False skips, True requires.
    Raises ValueError (naming the index) for mismatched lengths, an image without
    references, or a non-string caption.
    """
    preds, refs = _validate(predictions, references)
    if tokenizer not in _TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; use one of {sorted(_TOKENIZERS)}")
    tok_backend = _TOKENIZERS[tokenizer]
    flat_refs, tok_preds = ptb.tokenize_documents([[r for rs in refs for r in rs], preds], backend=tok_backend)
    tok_refs, start = [], 0
    for rs in refs:
        tok_refs.append(flat_refs[start:start + len(rs)])
        start += len(rs)

    tok_name = "ptb-" + tok_backend
    ours = {"tokenizer": tok_name, "implementation": _IMPL}
    corpus: dict[str, float] = {}
    per_image: dict[str, Sequence[float]] = {}
    backend: dict[str, dict[str, str]] = {}
    unavailable: dict[str, str] = {}

    layout = _Layout(tok_preds, tok_refs)
    b_corpus, b_images = bleu(tok_preds, tok_refs, _layout=layout)
    for k in range(4):
        corpus[f"BLEU-{k + 1}"] = b_corpus[k]
        per_image[f"BLEU-{k + 1}"] = b_images[:, k].tolist()
        backend[f"BLEU-{k + 1}"] = dict(ours)

    warnings: list[str] = [ONE_IMAGE_WARNING] if len(preds) == 1 else []
    jars = (("METEOR", meteor, _meteor_status, meteor_jar, "meteor-1.5.jar"),
            ("SPICE", spice, spice_status, _spice_jar, "spice-1.0.jar"))

    corpus["ROUGE-L"], per_image["ROUGE-L"] = rouge_l(tok_preds, tok_refs)
    backend["ROUGE-L"] = dict(ours)
    corpus["CIDEr-D"], per_image["CIDEr-D"] = cider_d(tok_preds, tok_refs, _layout=layout)
    backend["CIDEr-D"] = dict(ours)

    for name, wanted, status, run, jar in jars:
        if wanted is False:
            unavailable[name] = "disabled"
            continue
        ok, reason = status()
        if not ok:
            if wanted:
                raise _java.JavaUnavailableError(f"{name} was requested but cannot run: {reason}")
            unavailable[name] = reason or "unavailable"
            continue
        try:
            corpus[name], per_image[name] = run(tok_preds, tok_refs)
        except (OSError, RuntimeError) as exc:
            if wanted:
                raise
            unavailable[name] = f"{jar} failed: {exc}"
            warnings.append(f"{name} could not be computed: {exc}")
            continue
        backend[name] = {"tokenizer": tok_name, "implementation": jar, "java": _java.java_version() or "unknown"}

    names = [m for m in CAPTION_METRICS if m in corpus]
    per_sample = tuple({m: float(per_image[m][i]) for m in names} for i in range(len(preds)))
    return MetricValues(corpus={m: float(corpus[m]) for m in names}, per_sample=per_sample,
                        unavailable=unavailable, backend=backend, warnings=tuple(warnings))


def _validate(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    if isinstance(predictions, str) or isinstance(references, str):
        raise ValueError("predictions and references must be sequences (one entry per image), not a str")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists; "
                         "they must pair up one to one")
    if len(predictions) == 0:
        raise ValueError("no captions to score")
    for i, p in enumerate(predictions):
        if not isinstance(p, str):
            raise ValueError(f"predictions[{i}] is {type(p).__name__}, not str")
    out: list[list[str]] = []
    for i, rs in enumerate(references):
        if isinstance(rs, str):
            raise ValueError(f"references[{i}] is a str; expected a list of reference captions")
        rs = list(rs)
        if not rs:
            raise ValueError(f"references[{i}] is empty: every image needs at least one reference caption")
        for k, r in enumerate(rs):
            if not isinstance(r, str):
                raise ValueError(f"references[{i}][{k}] is {type(r).__name__}, not str")
        out.append(rs)
    return list(predictions), out


# --------------------------------------------------------------------------------------------- n-grams
class _Ngrams:
    """All 1..4-grams (whitespace tokens, as ``str.split()``) of a list of captions, with counts.

    Entry arrays, one entry per (caption, n-gram): ``cap`` (caption index), ``gid`` (global
    n-gram id), ``order`` (n - 1) and ``cnt``.  ``lens``: words per caption.
    """

    def __init__(self, texts: Sequence[str], n: int = 4) -> None:
        ids, lens, n_words = _word_ids(texts)
        self.lens = lens
        cap_of = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
        remaining = lens[cap_of] - (np.arange(len(ids)) - np.repeat(np.cumsum(lens) - lens, lens))
        caps, gids, orders, cnts = [], [], [], []
        prev, offset, width = ids, 0, n_words + 1
        for k in range(n):  # a (k+1)-gram is the k-gram at the same position plus one word
            pos = np.nonzero(remaining > k)[0]
            if k == 0:  # word ids are already compact
                uniq, local = np.arange(n_words), ids
            else:
                uniq, local = _unique_inverse(prev[pos] * width + ids[pos + k])
            prev = np.full(len(ids), -1, dtype=np.int64)
            prev[pos] = local
            stride = max(len(uniq), 1)
            pair, count = np.unique(cap_of[pos] * stride + local, return_counts=True)
            caps.append(pair // stride)
            gids.append(pair % stride + offset)
            orders.append(np.full(len(pair), k, dtype=np.int64))
            cnts.append(count)
            offset += len(uniq)
        self.n_grams = max(offset, 1)  # multiplier for (caption or image, n-gram) keys
        self.cap, self.gid = np.concatenate(caps), np.concatenate(gids)
        self.order, self.cnt = np.concatenate(orders), np.concatenate(cnts).astype(np.float64)


def _word_ids(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(word id of every ``str.split()`` token of ``texts`` in order, tokens per text, distinct words).

    Splits one string joined with a separator token rather than each text (a third of the time
    on COCO-size inputs); ids count from 0 in order of first appearance.
    """
    sep = "\x00"
    if not texts or sep in "".join(texts):  # the separator must not occur in the captions
        words = list(map(str.split, texts))
        vocab = {w: i for i, w in enumerate(dict.fromkeys(chain.from_iterable(words)))}
        ids = np.fromiter(map(vocab.__getitem__, chain.from_iterable(words)), dtype=np.int64)
        return ids, np.fromiter(map(len, words), dtype=np.int64, count=len(words)), len(vocab)
    flat = f" {sep} ".join(texts).split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(chain((sep,), flat)))}
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
    at = np.flatnonzero(ids == 0)  # separator k ends text k
    lens = np.diff(np.concatenate(([-1], at, [len(ids)]))) - 1
    return np.delete(ids, at) - 1, lens, len(vocab) - 1


def _unique_inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, return_inverse=True)`` via one sort."""
    order = np.argsort(a)
    s = a[order]
    first = np.empty(len(s), dtype=bool)
    first[:1] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    inverse = np.empty(len(a), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return s[first], inverse


def _unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` via a sort (numpy 2's default hash-based version is far slower on int64 keys)."""
    s = np.sort(a)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


class _Layout:
    """Predictions (captions 0..N-1) then references in one n-gram table, the ref -> image map, and
    the join of reference entries with the prediction entries of the same image and n-gram."""

    def __init__(self, preds: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
        self.n = n = len(preds)
        self.nrefs = np.fromiter(map(len, refs), dtype=np.int64, count=n)
        self.table = t = _Ngrams(list(preds) + [r for rs in refs for r in rs])
        self.image_of_ref = np.repeat(np.arange(n, dtype=np.int64), self.nrefs)
        self.first_ref = np.cumsum(self.nrefs) - self.nrefs
        is_ref = t.cap >= n
        self.hyp, self.ref = np.nonzero(~is_ref)[0], np.nonzero(is_ref)[0]
        self.ref_key = self.image_of_ref[t.cap[self.ref] - n] * t.n_grams + t.gid[self.ref]  # (image, n-gram)
        hyp_key = t.cap[self.hyp] * t.n_grams + t.gid[self.hyp]  # unique: one prediction per image
        order = np.argsort(hyp_key)
        hyp_sorted = hyp_key[order]
        in_hyp = np.zeros(t.n_grams, dtype=bool)  # n-grams some prediction has: look up only those
        in_hyp[t.gid[self.hyp]] = True
        cand = np.nonzero(in_hyp[t.gid[self.ref]])[0]
        keys = self.ref_key[cand]
        at = np.minimum(np.searchsorted(hyp_sorted, keys), max(len(hyp_sorted) - 1, 0))
        found = hyp_sorted[at] == keys if len(hyp_sorted) else np.zeros(len(cand), bool)
        self.match_ref = self.ref[cand[found]]  # reference entries whose n-gram the prediction also has
        self.match_hyp = self.hyp[order[at[found]]] if len(hyp_sorted) else self.hyp[:0]


# --------------------------------------------------------------------------------------------- BLEU
#: columns of :func:`bleu_statistics`: hypothesis length, closest reference length, then the
#: number of hypothesis n-grams (guess) and of clipped matches (correct) for n = 1..4
BLEU_STAT_COLUMNS = ("testlen", "reflen", "guess1", "guess2", "guess3", "guess4",
                     "correct1", "correct2", "correct3", "correct4")
_SMALL, _TINY = 1e-9, 1e-15


def bleu_statistics(preds: Sequence[str], refs: Sequence[Sequence[str]], *, _layout: _Layout | None = None
                    ) -> np.ndarray:
    """Per-image sufficient statistics of pycocoevalcap's corpus BLEU, shape ``(N, 10)``
    (:data:`BLEU_STAT_COLUMNS`), on tokenised captions.  Corpus BLEU is a function of their
    column sums (:func:`bleu_from_statistics`), so a bootstrap can resample images and
    recompute it exactly."""
    lay = _layout or _Layout(preds, refs)
    table, n = lay.table, lay.n
    # clip each prediction count by the largest count of that n-gram among the image's references
    max_ref = np.zeros(len(table.cnt))
    np.maximum.at(max_ref, lay.match_hyp, table.cnt[lay.match_ref])
    hyp = lay.hyp
    clipped = np.minimum(table.cnt[hyp], max_ref[hyp])
    correct = np.bincount(table.cap[hyp] * 4 + table.order[hyp], weights=clipped,
                          minlength=n * 4).astype(np.float64).reshape(n, 4)
    testlen = table.lens[:n].astype(np.float64)
    guess = np.maximum(testlen[:, None] - np.arange(4)[None, :], 0)
    reflen = _closest_reflen(table.lens[:n], table.lens[n:], lay).astype(np.float64)
    return np.column_stack([testlen, reflen, guess, correct])


def bleu_from_statistics(totals: np.ndarray) -> np.ndarray:
    """Corpus BLEU-1..4 from summed :func:`bleu_statistics` (shape ``(..., 10)`` -> ``(..., 4)``),
    exactly as pycocoevalcap's ``BleuScorer.compute_score`` (option "closest") combines them."""
    totals = np.asarray(totals, dtype=np.float64)
    testlen, reflen = totals[..., 0], totals[..., 1]
    guess, correct = totals[..., 2:6], np.round(totals[..., 6:10])
    out = np.empty(totals.shape[:-1] + (4,))
    acc = np.ones(totals.shape[:-1])
    for k in range(4):
        acc = acc * ((correct[..., k] + _TINY) / (guess[..., k] + _SMALL))
        out[..., k] = acc ** (1.0 / (k + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.where(ratio < 1, ratio, 1.0)), 1.0)
    return out * penalty[..., None]


def bleu(preds: Sequence[str], refs: Sequence[Sequence[str]], *, _layout: _Layout | None = None
         ) -> tuple[list[float], np.ndarray]:
    """pycocoevalcap ``Bleu(4)`` on tokenised captions: (corpus BLEU-1..4, per-image array of shape (N, 4))."""
    stats = bleu_statistics(preds, refs, _layout=_layout)
    testlen, reflen, guess, correct = stats[:, 0], stats[:, 1], stats[:, 2:6], stats[:, 6:10]
    n = len(stats)
    per_image = np.empty((n, 4))
    acc = np.ones(n)
    for k in range(4):
        acc = acc * ((correct[:, k] + _TINY) / (guess[:, k] + _SMALL))
        per_image[:, k] = acc ** (1.0 / (k + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    short = ratio < 1
    per_image[short] *= np.exp(1 - 1 / ratio[short])[:, None]
    return [float(v) for v in bleu_from_statistics(stats.sum(axis=0))], per_image


def caption_bleu_statistics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """:func:`bleu_statistics` of raw captions, tokenised as :func:`score_captions` does (PTB,
    pure Python: token-for-token the official jar's output)."""
    preds, refs = _validate(predictions, references)
    flat_refs, tok_preds = ptb.tokenize_documents([[r for rs in refs for r in rs], preds], backend="python")
    tok_refs, start = [], 0
    for rs in refs:
        tok_refs.append(flat_refs[start:start + len(rs)])
        start += len(rs)
    return bleu_statistics(tok_preds, tok_refs)


def _closest_reflen(testlen: np.ndarray, reflens: np.ndarray, lay: _Layout) -> np.ndarray:
    """Per image, the reference length closest to the test length (the shorter one on a tie)."""
    big = int(reflens.max(initial=0)) + 1
    key = np.abs(reflens - testlen[lay.image_of_ref]) * big + reflens
    return np.minimum.reduceat(key, lay.first_ref) % big


# --------------------------------------------------------------------------------------------- ROUGE-L
def rouge_l(preds: Sequence[str], refs: Sequence[Sequence[str]], beta: float = 1.2) -> tuple[float, list[float]]:
    """pycocoevalcap ``Rouge`` on tokenised captions: (mean, per-image).  Tokens are ``split(" ")``."""
    scores = []
    b2 = beta ** 2
    for cand, rs in zip(preds, refs):
        tc = cand.split(" ")
        masks: dict[str, int] = {}
        for i, t in enumerate(tc):
            masks[t] = masks.get(t, 0) | (1 << i)
        full = (1 << len(tc)) - 1
        prec_max = rec_max = 0.0
        for ref in rs:
            tr = ref.split(" ")
            v = full
            for m in filter(None, map(masks.get, tr)):  # bit-parallel LCS length (Allison-Dix / Hyyro)
                u = v & m
                v = (v + u) | (v - u)
            lcs = len(tc) - (v & full).bit_count()
            prec_max = max(prec_max, lcs / float(len(tc)))
            rec_max = max(rec_max, lcs / float(len(tr)))
        if prec_max != 0 and rec_max != 0:
            scores.append(((1 + b2) * prec_max * rec_max) / float(rec_max + b2 * prec_max))
        else:
            scores.append(0.0)
    return float(np.mean(np.array(scores))), scores


# --------------------------------------------------------------------------------------------- CIDEr-D
def cider_d(preds: Sequence[str], refs: Sequence[Sequence[str]], sigma: float = 6.0, *,
            _layout: _Layout | None = None) -> tuple[float, np.ndarray]:
    """pycocoevalcap ``Cider`` (CIDEr-D) on tokenised captions: (mean, per-image array)."""
    lay = _layout or _Layout(preds, refs)
    table, n, nrefs = lay.table, lay.n, lay.nrefs
    # document frequency: the number of images whose references contain the n-gram
    df = np.bincount(_unique(lay.ref_key) % table.n_grams, minlength=table.n_grams).astype(np.float64)
    ref_len = np.log(float(n))
    weight = table.cnt * (ref_len - np.log(np.maximum(1.0, df[table.gid])))
    ncap = len(table.lens)
    norm = np.sqrt(np.bincount(table.cap * 4 + table.order, weights=weight ** 2, minlength=ncap * 4)
                   .astype(np.float64)).reshape(ncap, 4)
    length = np.maximum(table.lens - 1, 0).astype(np.float64)  # pycocoevalcap's "length": the bigram count
    # clipped products, only for n-grams the prediction and the reference share
    w_hyp, w_ref = weight[lay.match_hyp], weight[lay.match_ref]
    contrib = np.minimum(w_hyp, w_ref) * w_ref
    nref_total = ncap - n
    val = np.bincount((table.cap[lay.match_ref] - n) * 4 + table.order[lay.match_ref], weights=contrib,
                      minlength=nref_total * 4).astype(np.float64).reshape(nref_total, 4)
    nh, nr = norm[lay.image_of_ref], norm[n:]
    ok = (nh != 0) & (nr != 0)
    val[ok] = val[ok] / (nh[ok] * nr[ok])
    delta = length[lay.image_of_ref] - length[n:]
    val *= (np.e ** (-(delta ** 2) / (2 * sigma ** 2)))[:, None]
    scores = np.add.reduceat(val, lay.first_ref, axis=0).mean(axis=1) / nrefs * 10.0
    return float(np.mean(scores)), scores


# --------------------------------------------------------------------------------------------- METEOR
def _meteor_status() -> tuple[bool, str | None]:
    ok, reason = ptb.java_status()
    if not ok:
        return False, reason
    if _java.jar_path(*_java.METEOR_JAR) is None:
        return False, "pycocoevalcap's meteor/meteor-1.5.jar was not found"
    return True, None


def meteor_jar(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """METEOR 1.5 through the official jar, driven like pycocoevalcap (``-stdio -l en -norm``).

    Returns (the jar's aggregate over all segments, per-image scores).  Raises
    JavaUnavailableError without Java or the jar.
    """
    return meteor_jar_batches([(preds, refs)])[0]


def meteor_jar_batches(batches: Sequence[tuple[Sequence[str], Sequence[Sequence[str]]]]
                       ) -> list[tuple[float, list[float]]]:
    """:func:`meteor_jar` for several independent sets of captions, in one JVM (which takes ~7 s to start)."""
    return _java.run_meteor(batches)


# --------------------------------------------------------------------------------------------- SPICE
def spice_status() -> tuple[bool, str | None]:
    """Whether SPICE can run: Java plus spice-1.0.jar and Stanford CoreNLP 3.6.0 already in spice/lib."""
    missing = [os.path.join(*p) for p in _java.SPICE_FILES if _java.jar_path(*p) is None]
    if missing:
        return False, ("SPICE needs Stanford CoreNLP 3.6.0 in pycocoevalcap's spice/lib, which pycocoevalcap "
                       "downloads on first use; mmbench never downloads. Missing: " + ", ".join(missing))
    return ptb.java_status()


def _spice_jar(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """SPICE as pycocoevalcap computes it: the mean of the jar's per-image "All" F-scores."""
    per_image = _java.run_spice(preds, refs)
    return float(np.mean(np.array(per_image))), per_image


COCO_CAPTION = MetricSpec(
    name="coco-caption", fn=score_captions, version="1", primary="CIDEr-D",
    description="BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (+SPICE if its assets exist), as pycocoevalcap 1.2",
    outputs=(Output("BLEU-?", aggregation="corpus"),  # corpus BLEU: summed n-gram statistics, not a mean
             Output("METEOR", aggregation="corpus"),  # the jar's aggregate over all segments
             Output("ROUGE-L"), Output("CIDEr-D"), Output("SPICE")),
    run_options=("tokenizer", "meteor"))
