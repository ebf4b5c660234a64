"""The process group of data-parallel training (one process per GPU, as ``accelerate launch`` or
``torchrun`` starts them): which process this is, joining the group, and summing gradients over it.
Without a process group every function here is the single-process identity. The trainer reads it;
:mod:`.distributed` is the launcher.
"""
from __future__ import annotations

import os

import torch


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` without an initialised process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment() -> tuple[int, int]:
    """Join the process group the launcher describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``; ``LOCAL_RANK`` picks the GPU) when there is more than one process; returns
    :func:`rank_and_world`."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank_and_world()


def sum_gradients(params: list[torch.nn.Parameter]) -> None:
    """Sum each parameter's gradient over the processes, in place (a process that had no
    micro-batch in this update contributes zeros)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
