"""DDP under ``torchrun``: process-group setup from the environment torchrun provides."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> Dist:
    """Join the torchrun job if ``WORLD_SIZE > 1`` (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    import torch.distributed as tdist

    dist = Dist(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not tdist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        tdist.init_process_group(backend=backend)
    return dist


def teardown(dist: Dist) -> None:
    if dist.enabled:
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.barrier()
            tdist.destroy_process_group()


def barrier(dist: Dist) -> None:
    if dist.enabled:
        torch.distributed.barrier()
