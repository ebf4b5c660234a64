"""Issue 19, items 4 and 14 / "seeds across GPUs": gradient accumulation gives an update the mean
gradient over its pairs (the last, shorter group of an epoch included), and data-parallel training
over two processes (gloo, on a CPU) gives exactly the gradient of one process on the same batch.
About 20 s."""
import torch
import torch.multiprocessing as mp

from prefalign_lite.bench.shapes import Shape, random_base, random_rows
from prefalign_lite.engine import distributed, losses, models, trainer

SHAPE = Shape("qwen2", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, vocab_size=128, tie_word_embeddings=True,
                            max_position_embeddings=256),
              pairs=5, prompt_tokens=6, completion_tokens=5)


def _update_gradients(n_rows: int, batch_size: int, grad_accumulation: int) -> list[torch.Tensor]:
    """The adapter's gradients at the first optimizer update (as clipping sees them)."""
    torch.manual_seed(0)
    iterates = models.IterateAdapters(random_base(SHAPE, torch.device("cpu"), four_bit=False, dtype=torch.float32))
    iterates.create(1)
    with torch.no_grad():   # a LoRA B of zeros would make every gradient but B's zero
        for name, p in iterates.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    rows = random_rows(n_rows, SHAPE.prompt_tokens, SHAPE.completion_tokens, 128, seed=1)
    seen = []
    real = torch.nn.utils.clip_grad_norm_

    def record(params, max_norm):
        if not seen:
            seen.extend(p.grad.detach().clone() for p in params)
        return real(params, max_norm)

    torch.nn.utils.clip_grad_norm_ = record
    try:
        cfg = trainer.TrainConfig(batch_size=batch_size, grad_accumulation=grad_accumulation, max_length=16,
                                  progress=False, bf16=False, gradient_checkpointing=False)
        trainer.PreferenceTrainer(iterates.model, None, losses.Dpo(0.1), lambda: iterates.use(None), cfg).train(rows)
    finally:
        torch.nn.utils.clip_grad_norm_ = real
    return seen


def _close(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in zip(a, b))


def test_an_accumulated_update_is_the_mean_over_its_pairs_even_when_its_passes_differ_in_size():
    """5 pairs in passes of 2, 2 and 1: the old trainer averaged the three pass means (the lone pair
    weighed twice as much as any other)."""
    whole = _update_gradients(5, batch_size=5, grad_accumulation=1)
    assert _close(_update_gradients(5, batch_size=2, grad_accumulation=3), whole)


def _rank(rank: int, world: int, init: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        assert distributed.rank_and_world() == (rank, world)
        torch.save(_update_gradients(4, batch_size=2, grad_accumulation=2), f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_processes_give_the_gradient_of_one(tmp_path):
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_rank, args=(2, init, str(tmp_path / "grads")), nprocs=2, join=True)
    one = _update_gradients(4, batch_size=2, grad_accumulation=2)
    for rank in (0, 1):
        assert _close(torch.load(tmp_path / f"grads.{rank}"), one), rank


def test_the_trainer_runs_under_a_launcher_with_two_cpu_processes(tmp_path):
    """``torchrun --nproc_per_node 2 -m prefalign_lite.engine.distributed``, as ``accelerate launch``
    would start it: both ranks join a gloo group, train one epoch and rank 0 saves the adapter."""
    import json
    import os
    import socket
    import subprocess
    import sys

    from prefalign_lite.settings import resolve

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"Help me with task {i}.", "chosen": "Sure, step by step.",
                                        "rejected": "No."}) + "\n" for i in range(8)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(port), "-m", "prefalign_lite.engine.distributed", str(rows),
                           resolve("standin:qwen2.5-0.5b-instruct"), str(tmp_path / "out"), "--batch-size", "2",
                           "--grad-accumulation", "2", "--max-length", "64"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "iter1" / "adapter_config.json").exists()
