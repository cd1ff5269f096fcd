"""Shared prefixes: compute once what many requests share, continue each from a key/value cache.

VQA benchmarks ask many questions about one image, and chat templates put the image first:
``<s>USER: <image x196>\\nWhat colour is the shape? ASSISTANT:``.  Every question about that
image starts with the same tokens (the template, the image's tokens, often a few words
more), so the vision tower and the language model's pass over those tokens give the same
keys and values for all of them.  This module plans that sharing for a batch of token rows
and lays out the tensors; the adapter (:mod:`mmbench.models.hf_vlm`) runs the model.

The plan (:func:`plan_prefixes`) groups rows by the content of their images and their tokens
up to the last image token, and gives each group the longest token prefix all its rows
share, capped so that every row keeps at least one token of its own (a row must have a last
token to predict from).  The group's prefix is run once, its cache is copied to every row
of the group (:func:`expand_cache`), and each row continues with its own tokens (its
"suffix").  Prefixes of different groups have different lengths, so the continuation's
rows are laid out as ``[prefix, right-padded to the longest prefix][suffix, padded]``:
padding sits between a row's prefix and its suffix, masked out, and position ids count
real tokens only (``cumsum(mask) - 1``), so every real token keeps the position it has
when its row is run alone.  That is the unshared computation up to float rounding: the same
tokens at the same positions attend to the same tokens; only the shapes of the matrix
products differ (``docs/prefix-reuse.md`` states the tolerance and how it is tested).

>>> p = plan_prefixes([[1, 9, 9, 5, 6], [1, 9, 9, 5, 7, 8], [1, 9, 9, 4]], ["a", "a", "b"],
...                   earliest=[3, 3, 3], latest=[4, 5, 3])
>>> p.owner, p.prefix_len, p.reps
([0, 0, 1], [4, 3], [0, 2])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class PrefixPlan:
    """``owner[r]``: row r's group; ``prefix_len[g]``: tokens group g shares (run once);
    ``reps[g]``: the row whose inputs (images, tokens) run group g's prefix."""

    owner: list[int]
    prefix_len: list[int]
    reps: list[int]

    @property
    def n_groups(self) -> int:
        return len(self.reps)


def plan_prefixes(rows: Sequence[Sequence[int]], keys: Sequence[str], *, earliest: Sequence[int],
                  latest: Sequence[int]) -> PrefixPlan | None:
    """Group ``rows`` (unpadded token ids) whose ``keys`` (image content) are equal and whose
    first ``earliest[r]`` tokens (through the last image token) are equal; each group shares
    the longest common token prefix of its rows, at most ``min(latest)`` of them.

    ``earliest[r]``: the prefix must hold at least this many tokens of row r (all its image
    tokens: the images are computed with the prefix only); ``latest[r]``: at most this many
    (tokens that must be run as the row's own: at least its last one, or the positions whose
    predictions a score needs).  None when some row has ``earliest > latest`` (its image is
    at its very end): the caller then runs the batch without sharing.
    """
    if any(e > lt for e, lt in zip(earliest, latest)):
        return None
    members: dict[tuple, list[int]] = {}
    for r, row in enumerate(rows):
        members.setdefault((keys[r], tuple(row[:earliest[r]])), []).append(r)
    owner = [0] * len(rows)
    prefix_len, reps = [], []
    for g, group in enumerate(members.values()):
        first = rows[group[0]]
        n = earliest[group[0]]
        limit = min(latest[r] for r in group)
        while n < limit and all(rows[r][n] == first[n] for r in group):
            n += 1
        for r in group:
            owner[r] = g
        prefix_len.append(n)
        reps.append(group[0])
    return PrefixPlan(owner, prefix_len, reps)


def last_image_token_end(ids: Sequence[int], image_token_ids: set[int]) -> int:
    """One past the last image token of ``ids`` (0 when it has none)."""
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] in image_token_ids:
            return i + 1
    return 0


def prefill_inputs(rep_inputs: dict[str, Any], prefix_len: Sequence[int], pad_id: int) -> dict[str, Any]:
    """The prefill batch: the representatives' processor outputs (right-padded, one row per
    group) cut to the longest prefix; a row's tokens past its own prefix become masked padding.
    Text-shaped tensors (those shaped like ``input_ids``: the mask, token type ids) are cut
    too; image tensors are kept whole.  Position ids count the real tokens from 0."""
    import torch

    ids = rep_inputs["input_ids"]
    width = max(prefix_len)
    keep = torch.arange(width).unsqueeze(0) < torch.tensor(prefix_len).unsqueeze(1)
    out = {}
    for key, value in rep_inputs.items():
        if hasattr(value, "shape") and tuple(value.shape) == tuple(ids.shape):
            value = value[:, :width].clone()
            if key == "input_ids":
                value[~keep] = pad_id
            elif key == "attention_mask":
                value = value * keep.to(value.dtype)
            else:
                value[~keep] = 0
        out[key] = value
    out["position_ids"] = positions(out["attention_mask"])
    return out


def continuation_inputs(rows: Sequence[Sequence[int]], plan: PrefixPlan, prefill: dict[str, Any], pad_id: int,
                        *, side: str) -> tuple[Any, Any]:
    """``(input_ids, attention_mask)`` of shape ``(n_rows, P + S)``: each row's group prefix
    as prefilled (``P`` wide, its padding masked) and then the row's own tokens, padded to
    the longest suffix ``S`` on ``side`` ("left" for generation: every row's last token is
    the last column; "right" for scoring)."""
    import torch

    suffixes = [row[plan.prefix_len[plan.owner[r]]:] for r, row in enumerate(rows)]
    width_s = max(len(s) for s in suffixes)
    owner = torch.tensor(plan.owner)
    pre_ids, pre_mask = prefill["input_ids"][owner], prefill["attention_mask"][owner].long()
    suf_ids = torch.full((len(rows), width_s), pad_id, dtype=pre_ids.dtype)
    suf_mask = torch.zeros((len(rows), width_s), dtype=torch.long)
    for r, s in enumerate(suffixes):
        span = slice(width_s - len(s), width_s) if side == "left" else slice(0, len(s))
        suf_ids[r, span] = torch.tensor(list(s), dtype=pre_ids.dtype)
        suf_mask[r, span] = 1
    return torch.cat([pre_ids, suf_ids], dim=1), torch.cat([pre_mask, suf_mask], dim=1)


def positions(attention_mask: Any) -> Any:
    """Position ids that count real tokens only: ``cumsum(mask) - 1``, 0 on padding (what
    transformers' ``generate`` derives from the mask)."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 0)


def cache_kwarg(model: Any) -> str:
    """The name the model's ``forward`` and ``generate`` take a key/value cache under:
    ``cache`` from transformers 5.x (``past_key_values`` deprecated), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def output_cache(output: Any) -> Any:
    """The key/value cache of a forward pass's output (``cache`` in 5.x, ``past_key_values`` before)."""
    cache = getattr(output, "cache", None) if "cache" in output else None
    return cache if cache is not None else output["past_key_values"]


def expand_cache(cache: Any, owner: Sequence[int]) -> Any:
    """The cache with one row per continuation row: row r is a copy of group ``owner[r]``'s."""
    import torch

    index = torch.tensor(list(owner), device=_cache_device(cache))
    cache.batch_select_indices(index)
    return cache


def _cache_device(cache: Any) -> Any:
    layers = getattr(cache, "layers", None)
    if layers:
        keys = getattr(layers[0], "keys", None)
        if keys is not None and hasattr(keys, "device"):
            return keys.device
    return None
