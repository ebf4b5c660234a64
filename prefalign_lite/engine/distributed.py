"""Data-parallel training across processes (one per GPU), as ``accelerate launch`` or ``torchrun``
starts them: each process holds the same base and adapter, takes its share of every update's
micro-batches (:class:`~.trainer.PreferenceTrainer`: process ``r`` of ``w`` takes micro-batches
``r, r + w, ...`` of the update), and the adapter's gradients are summed over the processes before
the optimizer step; each micro-batch's loss is scaled by its share of the update's pairs, so the
sum is exactly the gradient one process would get on the whole update.

    accelerate launch --num_processes 2 -m prefalign_lite.engine.distributed ROWS.jsonl MODEL OUT
    torchrun --nproc_per_node 2 -m prefalign_lite.engine.distributed ROWS.jsonl MODEL OUT

(on CPU: ``accelerate launch --cpu ...``; gloo is the backend there, NCCL on GPUs). Without a
process group every function here is the single-process identity.
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


def main(argv: list[str] | None = None) -> int:
    """One DPO epoch from ``MODEL`` (LoRA r = 16 on a full-precision base) on the plain rows of
    ``ROWS.jsonl``, saving the adapter to ``OUT`` from rank 0: the launchable form of the trainer."""
    import argparse
    import json

    from . import losses, models, trainer

    parser = argparse.ArgumentParser(prog="python -m prefalign_lite.engine.distributed")
    parser.add_argument("rows", help="JSONL of {prompt, chosen, rejected}")
    parser.add_argument("model", help="SFT model folder or hub id")
    parser.add_argument("out", help="folder for the trained adapter")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accumulation", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    args = parser.parse_args(argv)
    rank, world = init_from_environment()
    rows = [json.loads(line) for line in open(args.rows, encoding="utf-8") if line.strip()]
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    _, tokenizer = models.load_pretrained(args.model, tokenizer_only=True)
    iterates = models.IterateAdapters(models.load_base(args.model, four_bit=device.type == "cuda", device=device))
    torch.manual_seed(0)   # the same LoRA initialisation in every process
    iterates.create(1)
    cfg = trainer.TrainConfig(batch_size=args.batch_size, grad_accumulation=args.grad_accumulation,
                              max_length=args.max_length, learning_rate=args.learning_rate, progress=rank == 0,
                              stage=f"DDP rank {rank}/{world}")
    trainer.PreferenceTrainer(iterates.model, tokenizer, losses.dpo(0.1), lambda: iterates.use(None), cfg).train(rows)
    if rank == 0:
        iterates.save(1, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
