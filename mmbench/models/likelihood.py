"""Log-likelihood scoring (:class:`~mmbench.types.ScoreRequest`) shared by the HF adapters.

A score request with ``k`` continuations becomes ``k`` rows (image(s), context,
continuation).  A family builds, for a batch of rows, token ids that are **right-padded**
(so every row's real tokens sit at positions ``0..len-1``, as at batch size 1, and no
position id or rotary phase moves with the batch) and a boolean mask of the continuation's
target positions; :func:`sum_logprobs` then sums the log-softmax of the logits at exactly
those positions.  Padding is never a target and, being after every real token, is never
attended to by a real token of a causal decoder, so batch composition changes a score only
by float noise (``docs/likelihood.md``: measured below 1e-5 on the tiny fixtures in float32).

:class:`ScoringMixin` puts this in front of an adapter's own ``_preprocess``/``_forward``:
a batch of generate requests goes to the adapter as before, score requests to the family's
``_score_inputs``/``_score_rows``, and a mixed batch is split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from mmbench.types import ScoreRequest


@dataclass
class ScoreRows:
    """The rows of a batch of score requests: ``owner[r]`` is the index of row r's request,
    ``context[r]`` / ``continuation[r]`` its texts, ``images[r]`` its decoded images."""

    owner: list[int]
    context: list[str | None]
    continuation: list[str]
    images: list[list[Any]]


def expand_rows(requests: Sequence[ScoreRequest], images: Sequence[list[Any]]) -> ScoreRows:
    rows = ScoreRows([], [], [], [])
    for i, (req, imgs) in enumerate(zip(requests, images)):
        if not req.continuations:
            raise ValueError(f"score request {req.id!r} has no continuation to score")
        for cont in req.continuations:
            if not isinstance(cont, str):
                raise ValueError(f"score request {req.id!r}: a continuation is {type(cont).__name__}, not text")
            rows.owner.append(i)
            rows.context.append(req.prompt)
            rows.continuation.append(cont)
            rows.images.append(imgs)
    return rows


def regroup(n_requests: int, owner: Sequence[int], row_scores: Sequence[tuple[float, int]]) -> list[list]:
    """Row scores -> one list of ``(sum, n)`` per request, continuations in order."""
    out: list[list] = [[] for _ in range(n_requests)]
    for i, score in zip(owner, row_scores):
        out[i].append(score)
    return out


def right_pad(sequences: Sequence[Sequence[int]], targets: Sequence[Sequence[bool]], pad_id: int):
    """``(input_ids, attention_mask, target_mask)`` tensors, right-padded to the longest row."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    target = torch.zeros((len(sequences), width), dtype=torch.bool)
    for r, (seq, tgt) in enumerate(zip(sequences, targets)):
        ids[r, :len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[r, :len(seq)] = 1
        target[r, :len(tgt)] = torch.tensor(list(tgt), dtype=torch.bool)
    return ids, mask, target


def sum_logprobs(logits: Any, input_ids: Any, target: Any) -> list[tuple[float, int]]:
    """Per row, the sum of ``log p(input_ids[t] | < t)`` over the positions ``t`` where
    ``target`` is true, and how many there are.  ``logits[:, t]`` is the prediction made at
    position ``t`` (for token ``t + 1``), as transformers' causal LM heads return them; the
    log-softmax is taken in float32 whatever the model's dtype."""
    import torch

    tokens = input_ids[:, 1:].to(logits.device)
    where = target[:, 1:].to(logits.device)
    rows, cols = where.nonzero(as_tuple=True)  # only the target positions: no (B, L, V) log-softmax
    logp = torch.log_softmax(logits[:, :-1][rows, cols].float(), dim=-1)
    picked = logp.gather(-1, tokens[rows, cols].unsqueeze(-1)).squeeze(-1).double()
    sums = torch.zeros(logits.shape[0], dtype=torch.float64, device=logits.device).index_add_(0, rows, picked)
    counts = where.sum(dim=1)
    return [(float(t), int(n)) for t, n in zip(sums.cpu(), counts.cpu())]


class ScoringMixin:
    """Route score requests of a batch to ``_score_inputs`` (CPU) and ``_score_rows`` (model),
    everything else to ``_generate_inputs`` / ``_generate_outputs`` (what an adapter without
    scoring calls ``_preprocess`` / ``_forward``).  Put it first in the bases."""

    def _preprocess(self, requests: Sequence[Any], images: Sequence[list[Any]]) -> Any:
        score_idx = [i for i, r in enumerate(requests) if isinstance(r, ScoreRequest)]
        other_idx = [i for i, r in enumerate(requests) if not isinstance(r, ScoreRequest)]
        parts = {}
        if other_idx:
            parts["other"] = (other_idx, self._generate_inputs([requests[i] for i in other_idx],
                                                             [images[i] for i in other_idx]))
        if score_idx:
            rows = expand_rows([requests[i] for i in score_idx], [images[i] for i in score_idx])
            parts["score"] = (score_idx, rows, self._score_inputs(rows))
        return parts

    def _forward(self, requests: Sequence[Any], inputs: Any) -> list[Any]:
        import torch

        out: list[Any] = [None] * len(requests)
        if "other" in inputs:
            idx, prepared = inputs["other"]
            for i, value in zip(idx, self._generate_outputs([requests[i] for i in idx], prepared)):
                out[i] = value
        if "score" in inputs:
            idx, rows, prepared = inputs["score"]
            with torch.inference_mode():
                row_scores = self._score_rows(prepared)
            for i, value in zip(idx, regroup(len(idx), rows.owner, row_scores)):
                out[i] = value
        return out

    # -- what a family implements ---------------------------------------------
    def _generate_inputs(self, requests: Sequence[Any], images: Sequence[list[Any]]) -> Any:
        return super()._preprocess(requests, images)

    def _generate_outputs(self, requests: Sequence[Any], inputs: Any) -> list[Any]:
        return super()._forward(requests, inputs)

    def _score_inputs(self, rows: ScoreRows) -> Any:
        raise NotImplementedError

    def _score_rows(self, inputs: Any) -> list[tuple[float, int]]:
        raise NotImplementedError
