"""Running the same training entry point on 1 process or many (torchrun, DistributedDataParallel).

`torchrun --nproc_per_node N -m m3el_lib.training ...` sets RANK/WORLD_SIZE/LOCAL_RANK and
MASTER_ADDR/PORT; `init_distributed` reads them and joins the process group: NCCL when each
process has its own GPU, gloo on CPU. Without those variables it is a plain 1-process run.
Multi-node runs are torchrun's business (`--nnodes`, `--rdzv-endpoint`), not ours.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among `world_size`, its device, the backend used."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: str) -> DistInfo:
    """Join the process group that torchrun describes in the environment (if any).

    `device` is "cpu" or "cuda" (resolved by `config.resolve_device`); under torchrun with CUDA
    each process takes the GPU of its LOCAL_RANK.
    """
    world_size = env_world_size()
    if world_size <= 1:
        return DistInfo(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device, backend = f"cuda:{local_rank}", "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=backend)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over all processes (in place; returned for chaining)."""
    if info.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_flag(value: bool, info: DistInfo) -> bool:
    """Rank 0's decision (e.g. "stop early"), shared with every process."""
    if not info.distributed:
        return value
    flag = torch.tensor([1 if value else 0], dtype=torch.int64, device=info.device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())
