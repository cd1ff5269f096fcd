"""Sharding across processes with torch.distributed (torchrun, accelerate launch).

Under ``torchrun --nproc-per-node N -m mmbench eval ...`` each process evaluates every
N-th pending sample, the outputs are gathered on every rank, and rank 0 alone scores
and writes the run folder.  Outputs are keyed by sample id, so the scored set and its
order are those of a single-process run; only batch composition differs, which greedy
decoding must not depend on (``--check-batch-invariance`` measures it).  GPUs use NCCL,
CPUs gloo.
"""

from __future__ import annotations

import os
from datetime import timedelta
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T], contiguous: bool = False) -> list[T]:
        """This rank's share: every ``world_size``-th item starting at ``rank`` (balanced after length
        sorting), or with ``contiguous`` the rank's slice of about ``len / world_size`` items in a row
        (requests about one image stay together, so a model that shares their work shares it)."""
        if contiguous:
            n = len(items)
            return list(items[self.rank * n // self.world_size:(self.rank + 1) * n // self.world_size])
        return list(items[self.rank::self.world_size])

    def all_gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def close(self, *, ok: bool) -> None:
        """Leave the process group.  After a clean run every rank first waits for rank 0 to finish
        scoring and writing; a rank that exits while another still holds the group open can abort
        (gloo's worker threads are torn down mid-flight: "terminate called without an active
        exception").  After an error there is no barrier (the other ranks may never reach it)."""
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        if ok:
            dist.barrier()
        dist.destroy_process_group()


def setup() -> DistContext | None:
    """Join the process group started by torchrun/accelerate; None when running as one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        # rank 0 scores each task while the others wait at the next collective: allow for long scoring
        timeout = timedelta(seconds=float(os.environ.get("MMBENCH_DIST_TIMEOUT_S", 3 * 3600)))
        dist.init_process_group(backend, timeout=timeout)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)
