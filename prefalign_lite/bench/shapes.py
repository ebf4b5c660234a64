"""The benchmark's ingredients: model shapes of real architectures (randomly initialised, no
weights downloaded), random token-id batches, and a peak-memory meter (CUDA max allocated, or the
process's resident memory sampled on a CPU).

Only torch and transformers are imported here (and bitsandbytes when a base is quantised), so the
benchmark runs on a machine with nothing else of the kit's stack installed.
"""
from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field

import torch

from ..engine import models


@dataclass(frozen=True)
class Shape:
    """A transformers config (``model_type`` + sizes) and the batch it is measured on."""

    model_type: str
    config: dict
    pairs: int                 # preference pairs per training step
    prompt_tokens: int
    completion_tokens: int
    note: str = ""
    sample_batches_gpu: tuple[int, ...] = (64, 128, 256, 512)
    sample_batches_cpu: tuple[int, ...] = (16, 64)
    extra: dict = field(default_factory=dict)

    @property
    def max_length(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# Sizes as published in each model's config.json (hidden, layers, heads, kv-heads, MLP, vocabulary).
SHAPES: dict[str, Shape] = {
    "tiny": Shape("llama", dict(hidden_size=128, intermediate_size=256, num_hidden_layers=6, num_attention_heads=4,
                                num_key_value_heads=4, vocab_size=64, tie_word_embeddings=True,
                                max_position_embeddings=512),
                  pairs=32, prompt_tokens=12, completion_tokens=12,
                  note="the kit's tiny Llama (vocabulary 64 instead of 44), the CPU test shape"),
    "tiny-qwen2-152k": Shape("qwen2", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=2, vocab_size=151936,
                                           tie_word_embeddings=True, max_position_embeddings=4096),
                             pairs=8, prompt_tokens=256, completion_tokens=256,
                             note="two thin layers with Qwen2.5's 152K vocabulary: where the logits dominate memory"),
    "qwen2.5-0.5b": Shape("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                        num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                                        tie_word_embeddings=True, rope_theta=1000000.0, max_position_embeddings=32768),
                          pairs=8, prompt_tokens=256, completion_tokens=256),
    "llama-3.2-1b": Shape("llama", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                        num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
                                        tie_word_embeddings=True, rope_theta=500000.0, max_position_embeddings=131072),
                          pairs=8, prompt_tokens=256, completion_tokens=256),
    "mistral-7b": Shape("mistral", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                        num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
                                        tie_word_embeddings=False, rope_theta=1000000.0, sliding_window=None,
                                        max_position_embeddings=32768),
                        pairs=4, prompt_tokens=512, completion_tokens=512),
    # the configs' judges (sequence classifiers: their embedding, no output head but a scalar one)
    "skywork-reward-v2-llama-3.1-8b": Shape("llama", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                                          num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                                          tie_word_embeddings=False, rope_theta=500000.0,
                                                          max_position_embeddings=131072),
                                            pairs=16, prompt_tokens=512, completion_tokens=512,
                                            note="Skywork-Reward-V2-Llama-3.1-8B: Llama-3.1-8B as a reward model"),
    "skywork-reward-v2-qwen3-0.6b": Shape("qwen3", dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                                        num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                                        vocab_size=151936, tie_word_embeddings=True, rope_theta=1000000.0,
                                                        max_position_embeddings=40960),
                                          pairs=16, prompt_tokens=512, completion_tokens=512,
                                          note="Skywork-Reward-V2-Qwen3-0.6B: Qwen3-0.6B as a reward model"),
}
REWARD_SHAPES = ("skywork-reward-v2-llama-3.1-8b", "skywork-reward-v2-qwen3-0.6b")


def get_shape(name: str) -> Shape:
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; known: {sorted(SHAPES)}")
    return SHAPES[name]


def build_config(shape: Shape, **extra):
    """The shape's transformers config (the key/value cache left on: generation uses it; training
    passes ask for no cache themselves)."""
    from transformers import AutoConfig

    return AutoConfig.for_model(shape.model_type, pad_token_id=0, bos_token_id=None, eos_token_id=None,
                                **shape.config, **extra)


@torch.no_grad()
def random_base(shape: Shape, device: torch.device, four_bit: bool = True, dtype: torch.dtype | None = None,
                seed: int = 0):
    """A frozen, randomly initialised causal LM of ``shape`` on ``device``: initialised there in
    ``dtype``, then (``four_bit``) quantised to NF4 through the same ``from_pretrained`` arguments
    and CPU settings as :func:`prefalign_lite.engine.models.load_base`, from the state dict in memory
    (nothing on disk)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    dtype = dtype or models.default_dtype(device)
    config = build_config(shape)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if not four_bit:
        return models.freeze(model)
    state = model.state_dict()
    quantised = type(model).from_pretrained(None, config=config, state_dict=state,
                                            **models.base_load_kwargs(True, dtype, device))
    del model, state
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return models.keep_4bit_differentiable(models.freeze(quantised))


def random_rows(n_pairs: int, prompt_tokens: int, completion_tokens: int, vocab: int, seed: int = 0) -> list[dict]:
    """Pre-tokenised pairs (TRL's column names) of random ids in ``[1, vocab)`` (0 is padding)."""
    rng = random.Random(seed)
    draw = lambda n: [rng.randrange(1, vocab) for _ in range(n)]  # noqa: E731
    return [{"prompt_ids": draw(prompt_tokens), "chosen_ids": draw(completion_tokens),
             "rejected_ids": draw(completion_tokens)} for _ in range(n_pairs)]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` then ``m.peak_gb`` (highest level while inside) and
    ``m.delta_gb`` (that minus the level on entry). CUDA: ``torch.cuda.max_memory_allocated``;
    CPU: the process's resident set, sampled every ``interval`` seconds by a thread."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval = device, interval
        self.start = self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.start = self.peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())
        return False

    @property
    def peak_gb(self) -> float:
        return self.peak / 1e9

    @property
    def delta_gb(self) -> float:
        return (self.peak - self.start) / 1e9


def environment(device: torch.device) -> dict:
    """Device and library versions, flat."""
    import importlib.metadata as md
    import platform

    info = {"device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine(), "cpu_threads": torch.get_num_threads(),
            "python": platform.python_version()}
    for package in ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets"):
        try:
            info[f"version.{package}"] = md.version(package)
        except md.PackageNotFoundError:
            info[f"version.{package}"] = None
    return info
