"""This process's place in a torchrun job, and the few collectives the trainer needs.

Not distributed (no torchrun), every helper here is a no-op: rank 0 of a world of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from fer_tui.errors import FerError


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> Dist:
        return cls(
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )


def init_distributed(dist: Dist, device: torch.device) -> torch.device:
    if not dist.enabled:
        return device
    import torch.distributed as td

    if device.type == "cuda":
        count = torch.cuda.device_count()
        if dist.local_rank >= count:
            raise FerError(
                f"torchrun started {dist.local_rank + 1}+ processes on this machine "
                f"but it has {count} GPU(s): pass --nproc_per_node {count} (at most "
                f"one process per GPU)"
            )
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if not td.is_initialized():
        # device_id binds the process group to this rank's GPU up front (no guessing later)
        extra = {"device_id": device} if device.type == "cuda" else {}
        td.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            rank=dist.rank,
            world_size=dist.world,
            **extra,
        )
    return device


def close_distributed(dist: Dist) -> None:
    if not dist.enabled:
        return
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


def all_sum(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    if dist.enabled:
        import torch.distributed as td

        td.all_reduce(t)
    return t


def broadcast(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Rank 0's `t` on every rank (in place); a no-op in a single process."""
    if dist.enabled:
        import torch.distributed as td

        td.broadcast(t, src=0)
    return t
