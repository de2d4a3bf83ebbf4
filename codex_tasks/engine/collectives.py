"""Where a process stands in a distributed job (`DistInfo`) and the collectives the trainer calls.

Every rank must call a collective at the same point. Torch is imported inside the functions: a
one-process run never loads `torch.distributed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job (the default: one process, no process group)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = ""


def any_rank(flag: bool, device: Any) -> bool:
    """True on every rank when `flag` is true on any rank."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_object(obj: Any, device: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, device=device if getattr(device, "type", "") == "cuda" else None)
    return box[0]


def gather_to_main(obj: Any, device: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere)."""
    import torch.distributed as dist

    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    # NCCL moves the pickled bytes through the current CUDA device (set by the trainer)
    dist.gather_object(obj, out, dst=0)
    return out
