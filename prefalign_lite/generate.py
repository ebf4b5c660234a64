"""Batched sampling from a chat model: data expansion (SPA), bootstrapping (SeRA), evaluation.

Reproducible: batch ``b`` is sampled under seed ``seed + b``, so the same call gives the same
responses whatever ran before it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    responses: int
    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / max(self.seconds, 1e-9)

    @property
    def responses_per_second(self) -> float:
        return self.responses / max(self.seconds, 1e-9)


def chat_prompts(tokenizer, prompts: list[str]) -> list[str]:
    """Each user message wrapped by the chat template, ending where the assistant starts."""
    return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in prompts]


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], n_samples: int = 1, temperature: float = 0.7,
           top_p: float = 0.95, max_new_tokens: int = 16, batch_size: int = 64, seed: int = 0,
           progress: bool = True) -> tuple[list[list[str]], GenerationStats]:
    """``n_samples`` responses per prompt (a list per prompt) and throughput statistics.
    ``temperature = 0`` means greedy decoding."""
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature!r}, {top_p!r}")
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    texts = [t for t in chat_prompts(tokenizer, prompts) for _ in range(n_samples)]
    device = next(model.parameters()).device
    out: list[str] = []
    new_tokens, start = 0, time.perf_counter()
    batches = range(0, len(texts), batch_size)
    for b, lo in enumerate(tqdm(batches, desc="sampling", disable=not progress, leave=False)):
        enc = tokenizer(texts[lo:lo + batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        torch.manual_seed(seed + b)
        gen = model.generate(**enc, do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                             top_p=top_p if temperature > 0 else None, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        completion = gen[:, enc["input_ids"].shape[1]:]
        new_tokens += int((completion != tokenizer.pad_token_id).sum())
        out.extend(s.strip() for s in tokenizer.batch_decode(completion, skip_special_tokens=True))
    stats = GenerationStats(len(out), new_tokens, time.perf_counter() - start)
    log.info("sampled %d responses, %.0f tokens/s", stats.responses, stats.tokens_per_second)
    model.train(was_training)
    return [out[i * n_samples:(i + 1) * n_samples] for i in range(len(prompts))], stats
