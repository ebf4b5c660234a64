"""TRL's ``DPOTrainer`` timed on the benchmark's model and batch (its own training loop, its own
collator, a callback timing each optimizer step). Imported only when the benchmark reaches it."""
from __future__ import annotations

import itertools
import logging
import statistics
import tempfile
import time

import torch

from .shapes import PeakMemory, synchronize

log = logging.getLogger(__name__)

TRL_DEFAULTS_NOTE = ("TRL 1.16's DPOConfig defaults: bf16=True (autocast, also on a CPU) and "
                     "gradient_checkpointing=True (reentrant off); the CPU run keeps bf16 and switches "
                     "checkpointing off, the GPU run keeps both")


def _stub_tokenizer():
    """A four-word tokenizer: TRL wants a processing class for its pad token, the batches are ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<pad>": 0, "<eos>": 1, "<unk>": 2, "a": 3}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def measure_trl_dpo(base, lora_config, rows: list[dict], pairs: int, max_length: int, warmup: int, steps: int,
                    device: torch.device, bf16: bool, checkpointing: bool, beta: float = 0.1, seed: int = 0) -> dict:
    """Seconds per optimizer step (median after ``warmup``) and peak memory of ``DPOTrainer.train``
    with ``max_steps = warmup + steps`` on batches of ``pairs`` pre-tokenised ``rows``. ``base`` is
    the plain (4-bit) model and ``lora_config`` the adapter TRL puts on it (its usual QLoRA path:
    ``peft_config=``; its reference is then the base with the adapter disabled). TRL wraps and
    patches ``base``, so run this last."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    from ..engine.models import unpack_cpu_4bit

    unpack_cpu_4bit(base)  # sampling on a CPU left bitsandbytes' inference layout, which TRL cannot train on
    collate = DataCollatorForPreference(pad_token_id=0, max_length=max_length)
    batches = [rows[lo:lo + pairs] for lo in range(0, len(rows) - pairs + 1, pairs)]
    feed = itertools.cycle(batches)

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            synchronize(device)
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            synchronize(device)
            self.times.append(time.perf_counter() - self.t0)

    n_steps = warmup + steps
    with tempfile.TemporaryDirectory(prefix="prefalign-bench-trl-") as out:
        args = DPOConfig(output_dir=out, beta=beta, per_device_train_batch_size=pairs, max_steps=n_steps,
                         learning_rate=1e-5, lr_scheduler_type="constant", logging_steps=10 ** 6, save_strategy="no",
                         report_to=[], use_cpu=device.type == "cpu", bf16=bf16, gradient_checkpointing=checkpointing,
                         max_length=max_length, disable_tqdm=True, dataloader_num_workers=0, seed=seed,
                         remove_unused_columns=False)
        dummy = Dataset.from_list([{"prompt": "a", "chosen": "a", "rejected": "a"}] * (pairs * n_steps))
        timer = StepTimer()
        trainer = DPOTrainer(model=base, args=args, peft_config=lora_config, train_dataset=dummy, processing_class=_stub_tokenizer(),
                             data_collator=lambda _examples: collate(next(feed)), callbacks=[timer])
        trainer.remove_callback(PrinterCallback)  # its metrics dict would land on stdout
        with PeakMemory(device) as memory:
            trainer.train()
    measured = timer.times[warmup:] or timer.times
    return {"step_s": statistics.median(measured), "peak_gb": memory.peak_gb, "peak_delta_gb": memory.delta_gb,
            "bf16": bf16, "gradient_checkpointing": checkpointing, "steps_timed": len(measured)}
