"""The tiny chat model of the embedded world: a word-level tokenizer built locally with
``tokenizers`` (with a chat template), a Llama-style causal LM of 0.38M parameters trained from
scratch with TRL's ``SFTTrainer`` on noisy demonstrations, saved with ``save_pretrained`` and
loaded back by path — the same ``from_pretrained`` call a hub id goes through.

The SFT model is cached under a key made from its configuration, so notebooks, the pipeline and
the tests build it once. It is built in a temporary folder and renamed when complete.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.files import building_folder, cache_root
from . import tasks as world

log = logging.getLogger(__name__)

SPECIAL = {"pad": "<pad>", "unk": "<unk>", "eos": "<eos>", "user": "<|user|>", "assistant": "<|assistant|>"}
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|> {{ message['content'] }} "
    "{% elif message['role'] == 'assistant' %}<|assistant|> {{ message['content'] }} <eos> "
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    """Everything that decides the SFT model; its hash is the cache key."""

    hidden_size: int = 96
    intermediate_size: int = 192
    num_layers: int = 4
    num_heads: int = 4
    max_length: int = 64
    n_demos: int = 64000
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    world_version: int = 4

    def key(self) -> str:
        """The configuration, the vocabulary and the first demonstrations: a change to the world's
        demonstrators changes the key (and the SFT model is trained again)."""
        sample = json.dumps(world.sft_demonstrations(200, seed=self.seed))
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True) + "|" + "|".join(world.VOCAB) + "|" + sample
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_tokenizer():
    """Word-level tokenizer over the world's vocabulary, with the chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = list(SPECIAL.values()) + world.VOCAB
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=SPECIAL["unk"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=SPECIAL["pad"], unk_token=SPECIAL["unk"], eos_token=SPECIAL["eos"],
        additional_special_tokens=[SPECIAL["user"], SPECIAL["assistant"]])
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"  # generation pads on the left
    return tokenizer


def build_model(config: TinyConfig, tokenizer):
    """A randomly initialised Llama-style causal LM sized by ``config``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    llama = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads, max_position_embeddings=config.max_length * 2,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None)
    return LlamaForCausalLM(llama)


def sft_model_path(config: TinyConfig = TinyConfig(), root: Path | None = None) -> Path:
    """The folder of the SFT model for ``config``, training it first if it is not cached."""
    root = Path(root) if root else cache_root()
    target = root / f"tiny-sft-{config.key()}"
    if (target / "config.json").exists():
        return target
    with building_folder(target, exist_ok=True) as scratch:  # another process may finish first
        train_sft(config, scratch)
    return target


def train_sft(config: TinyConfig, out: Path) -> dict:
    """SFT from scratch with TRL on ``config.n_demos`` noisy demonstrations (loss on the completion
    only); saves model, tokenizer and ``sft_stats.json`` into ``out``."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tokenizer = build_tokenizer()
    model = build_model(config, tokenizer)
    demos = Dataset.from_list(world.sft_demonstrations(config.n_demos, seed=config.seed))
    args = SFTConfig(
        output_dir=str(out / "trainer"), num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, lr_scheduler_type="cosine", warmup_steps=0.05,
        max_length=config.max_length, logging_steps=50, save_strategy="no", report_to=[], seed=config.seed,
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=not log.isEnabledFor(logging.INFO),
        # TRL defaults both to True; on a CPU bf16 autocast is ~5x slower and checkpointing recomputes
        # every forward, for a model that fits in memory many times over.
        bf16=False, gradient_checkpointing=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=demos, processing_class=tokenizer)
    start = time.perf_counter()
    # One thread, whatever the caller's: CPU kernels sum in a different order with more threads, and
    # the SFT model (hence every committed number) must be the same bits in the pipeline's
    # one-thread jobs, in the tests and in a notebook.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = trainer.train()
    finally:
        torch.set_num_threads(threads)
    stats = {"sft_seconds": round(time.perf_counter() - start, 1), "train_loss": round(result.training_loss, 4),
             "parameters": sum(p.numel() for p in model.parameters()), "config": dataclasses.asdict(config)}
    shutil.rmtree(out / "trainer", ignore_errors=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "sft_stats.json").write_text(json.dumps(stats, indent=1))
    log.info("SFT done: %s", stats)
    return stats
