"""Data-parallel training across processes (one per GPU), as ``accelerate launch`` or ``torchrun``
starts them: each process holds the same base and adapter, takes its share of every update's
micro-batches (:class:`~.trainer.PreferenceTrainer`: process ``r`` of ``w`` takes micro-batches
``r, r + w, ...`` of the update), and the adapter's gradients are summed over the processes before
the optimizer step; each micro-batch's loss is scaled by its share of the update's pairs, so the
sum is exactly the gradient one process would get on the whole update.

    accelerate launch --num_processes 2 -m prefalign_lite.engine.distributed ROWS.jsonl MODEL OUT
    torchrun --nproc_per_node 2 -m prefalign_lite.engine.distributed ROWS.jsonl MODEL OUT

(on CPU: ``accelerate launch --cpu ...``; gloo is the backend there, NCCL on GPUs). Without a
process group (:mod:`.processes`) it is one plain training run.
"""
from __future__ import annotations

import torch

from . import losses, models, trainer
from .processes import init_from_environment, rank_and_world  # noqa: F401  (the launcher's process group)


def main(argv: list[str] | None = None) -> int:
    """One DPO epoch from ``MODEL`` (a LoRA iterate of the default shape on the base, in 4-bit NF4
    on a GPU and full precision on a CPU) on the plain rows of ``ROWS.jsonl``, with the trainer's
    defaults for everything not given, saving the adapter to ``OUT`` from rank 0: the launchable
    form of the trainer."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m prefalign_lite.engine.distributed")
    parser.add_argument("rows", help="JSONL of {prompt, chosen, rejected}")
    parser.add_argument("model", help="SFT model folder or hub id")
    parser.add_argument("out", help="folder for the trained adapter")
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per process and pass")
    parser.add_argument("--grad-accumulation", type=int, default=trainer.TrainConfig.grad_accumulation)
    parser.add_argument("--max-length", type=int, default=512, help="tokens of prompt + answer")
    parser.add_argument("--learning-rate", type=float, default=trainer.TrainConfig.learning_rate)
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
    trainer.PreferenceTrainer(iterates.model, tokenizer, losses.Dpo(0.1), lambda: iterates.use(None), cfg).train(rows)
    if rank == 0:
        iterates.save(1, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
