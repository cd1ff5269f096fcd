"""Planning a task's model work: the requests of every sample, checked before any runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.tasks.base import Task
from mmbench.types import GenerateImageRequest, Sample


def image_seed(run_seed: int, request_id: str) -> int:
    """The noise seed of one text-to-image request: the first 8 bytes of
    ``sha256("<run seed>:<request id>")`` as an integer below 2**63 (what ``torch.Generator``
    takes).  It depends on nothing else, so an image is the same whatever batch, shard or
    process it runs in, and another ``--seed`` gives other images.

    >>> image_seed(0, "p1") == image_seed(0, "p1") != image_seed(1, "p1")
    True
    """
    digest = hashlib.sha256(f"{int(run_seed)}:{request_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class Plan:
    """The requests of a task's samples.

    ``by_sample``: sample id -> its requests (one or more: a retrieval sample asks for its
    image and each caption), for samples without a row error; ``requests``: request id ->
    request; ``owner``: request id -> sample id; ``row_errors``: sample id -> why the row
    could not become a sample (never sent to the model, counted as failed).
    """

    samples: list[Sample]
    by_sample: dict[str, list[Any]] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    row_errors: dict[str, str] = field(default_factory=dict)
    #: the task's prompt as the model renders it (chat template applied), for fingerprints
    rendered_prompt: str | None = None


def plan_requests(task: Task, samples: list[Sample], model: Any, seed: int = 0) -> Plan:
    """Build every request; request ids must be unique, and the model must serve each kind.
    A :class:`GenerateImageRequest` gets its noise seed here, from ``seed`` (``--seed``) and its
    id (:func:`image_seed`)."""
    plan = Plan(samples=samples, row_errors={s.id: s.error for s in samples if s.error is not None})
    plan.by_sample = {s.id: [replace(r, seed=image_seed(seed, r.id)) if isinstance(r, GenerateImageRequest) else r
                             for r in task.build_requests(s, model.name)] for s in samples if s.error is None}
    for sid, reqs in plan.by_sample.items():
        for req in reqs:
            if req.id in plan.requests:
                raise MMBenchError(f"task {task.name}: two requests share the id {req.id!r} "
                                   f"(samples {plan.owner[req.id]!r} and {sid!r})")
            plan.requests[req.id] = req
            plan.owner[req.id] = sid
    model.check_serves(list(plan.requests.values()))
    plan.rendered_prompt = model.render_prompt(task.prompt_for(model.name), 1)
    return plan
