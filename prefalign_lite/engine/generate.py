"""Batched sampling from a chat model: data expansion (SPA), bootstrapping (SeRA), evaluation.

Reproducible: batch ``b`` is sampled under seed ``seed + b``, so the same call gives the same
responses whatever ran before it.

What is sampled is what is asked, whatever the checkpoint's ``generation_config.json`` says
(Qwen2.5-Instruct's holds ``top_k=20`` and ``repetition_penalty=1.1``): every sampling setting is
stated in :func:`generation_config_for`, and the model's own defaults are set aside while it
generates (:func:`own_generation_config`). The top-k filter is stated too: :data:`DEFAULT_TOP_K`
(50, transformers' documented default, which every sample of the embedded world has been drawn
with) unless the caller passes another; ``top_k=0`` turns it off, and a sample at temperature 1,
top-p 1 and top-k 0 is a draw from the model itself (a real dataset's setting samples so,
``Setting.sample_top_k``). The key/value cache is always on.

Batches are budgeted in tokens (:func:`sampling_batches`): prompts are cut from the left to
``max_prompt_tokens`` (a BOS token stays), and a batch closes at ``batch_size`` sequences or
earlier when its padded size, sequences x (longest prompt + new tokens), would pass the budget.
The default budget is ``batch_size`` sequences of a :data:`SIZED_PROMPT_TOKENS`-token prompt, so
batches of short prompts are exactly ``batch_size`` consecutive sequences.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from . import memory
from .chat import bos_kept, text_ids
from .encoding import cut_left, token_batches
from .memory import kv_cache_bytes_per_token  # noqa: F401  (the sampling budget's unit, kept importable here)
from .models import autocast_for

log = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    responses: int
    new_tokens: int
    seconds: float
    batches: int = 0
    prompts_cut: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / max(self.seconds, 1e-9)


def chat_prompts(tokenizer, prompts: list[str]) -> list[str]:
    """Each user message wrapped by the chat template, ending where the assistant starts."""
    return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in prompts]


CPU_BATCH_SIZE = 256      # generation on 2 CPU cores is ~3x faster at 256 than at 64 (the tiny model)
MAX_GPU_BATCH_SIZE = 512  # an assumption no GPU run has checked yet: larger batches buy little once the cache dominates
DEFAULT_TOP_K = 50         # transformers' documented default top-k, stated (see the module doc)
SIZED_PROMPT_TOKENS = 340  # the prompt length a batch size is meant for (340 + 300 new = 640 tokens)


def default_batch_size(model=None, device=None, *, context_tokens: int = 640, free_bytes: int | None = None,
                       reserve_bytes: float = 0,
                       memory_fraction: float = 0.7, prompt_tokens: int | None = None) -> int:
    """Sequences per ``generate`` call for the device: 256 on a CPU; on a GPU the largest power of
    two (at most 512) whose key/value cache of ``context_tokens`` per sequence (prompt + new tokens;
    640 = a ~340-token prompt and 300 new tokens) and whose prefill of a ``prompt_tokens``-token
    prompt (default ``context_tokens - 300``) fit in ``memory_fraction`` of the free memory
    (``free_bytes``, default what CUDA reports, less ``reserve_bytes`` for what will be alive beside
    the batch, such as a merged sampling copy); :func:`memory.sampling_bytes_per_sequence`."""
    if device is None:
        device = next(model.parameters()).device if model is not None else (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    if model is None:
        raise ValueError("default_batch_size on a GPU needs the model (its config sizes the key/value cache)")
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    prompt = max(1, context_tokens - 300) if prompt_tokens is None else prompt_tokens
    per_sequence = memory.sampling_bytes_per_sequence(model.config, prompt, context_tokens - prompt)
    fits = int(memory_fraction * (free_bytes - reserve_bytes) // max(per_sequence, 1))
    if fits < 1:
        raise ValueError(f"one sequence of {context_tokens} tokens needs {per_sequence / 1e9:.2f} GB of cache and "
                         f"prefill, more than {memory_fraction} of the {free_bytes / 1e9:.1f} GB free "
                         f"(less {reserve_bytes / 1e9:.1f} GB kept for the merged copy)")
    return min(MAX_GPU_BATCH_SIZE, 1 << (fits.bit_length() - 1))


def generation_config_for(*, temperature: float, top_p: float, max_new_tokens: int, min_new_tokens: int | None = None,
                          pad_token_id: int | None = None, eos_token_id=None, bos_token_id: int | None = None,
                          top_k: int = DEFAULT_TOP_K):
    """A ``GenerationConfig`` stating every setting that changes what is drawn: plain sampling at
    ``temperature`` with nucleus ``top_p`` and top-k ``top_k`` (0: none; greedy at ``temperature =
    0``), no min-p or
    typical filtering, no repetition penalty or n-gram ban, ``min_new_tokens`` (default none) to
    ``max_new_tokens`` new tokens, the key/value cache on (the model's own generation defaults are
    set aside by :func:`own_generation_config`, so what is not stated here is transformers' neutral
    default)."""
    from transformers import GenerationConfig

    greedy = temperature == 0
    return GenerationConfig(do_sample=not greedy, temperature=1.0 if greedy else float(temperature),
                            top_p=1.0 if greedy else float(top_p), top_k=0 if greedy else int(top_k), typical_p=1.0, min_p=None,
                            epsilon_cutoff=0.0, eta_cutoff=0.0, repetition_penalty=1.0, encoder_repetition_penalty=1.0,
                            no_repeat_ngram_size=0, num_beams=1, max_new_tokens=max_new_tokens,
                            min_new_tokens=min_new_tokens or None, use_cache=True,
                            pad_token_id=pad_token_id, eos_token_id=eos_token_id, bos_token_id=bos_token_id,
                            renormalize_logits=False, remove_invalid_values=False)


def _causal_lm(model):
    unwrap = getattr(model, "get_base_model", None)
    return unwrap() if callable(unwrap) else model


def stop_ids(model, tokenizer) -> list[int]:
    """The token ids an answer ends at: the tokenizer's eos and every id of the checkpoint's
    ``generation_config.eos_token_id`` (Qwen2.5 stops at ``<|im_end|>`` or ``<|endoftext|>``), the
    tokenizer's first. :func:`own_generation_config` sets the checkpoint's config aside while
    sampling, so its stop list is read here, before."""
    ids: list[int] = []
    checkpoint = getattr(getattr(_causal_lm(model), "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, checkpoint):
        for i in value if isinstance(value, (list, tuple)) else [value]:
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    return ids


@contextlib.contextmanager
def own_generation_config(model):
    """While inside, the model's ``generation_config`` is an empty one, so that no value of the
    checkpoint's ``generation_config.json`` fills a setting :func:`generation_config_for` left
    unset (transformers fills every unset field from it)."""
    from transformers import GenerationConfig

    lm = _causal_lm(model)
    saved = getattr(lm, "generation_config", None)
    lm.generation_config = GenerationConfig()
    try:
        yield
    finally:
        lm.generation_config = saved


def generate_ids(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, temperature: float = 0.7,
                 top_p: float = 0.95, max_new_tokens: int = 16, pad_token_id: int | None = None,
                 eos_token_id: int | list[int] | None = None, min_new_tokens: int | None = None,
                 top_k: int = DEFAULT_TOP_K) -> torch.Tensor:
    """One ``generate`` call on left-padded token ids; returns only the new tokens ``(N, <= max_new_tokens)``.
    ``temperature = 0`` means greedy decoding; nothing else of the model's generation defaults applies."""
    config = generation_config_for(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                   min_new_tokens=min_new_tokens, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                                   top_k=top_k)
    with own_generation_config(model), autocast_for(input_ids.device, model=model):
        gen = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    return gen[:, input_ids.shape[1]:]


def sampling_batches(lengths: list[int], batch_size: int, new_tokens: int, token_budget: int | None = None) -> list[range]:
    """Consecutive batches of sequences with prompt ``lengths``: a batch closes at ``batch_size``
    sequences, or before a sequence that would make its padded size (sequences x (longest prompt +
    ``new_tokens``)) pass ``token_budget`` (default ``batch_size * (SIZED_PROMPT_TOKENS + new_tokens)``).
    A sequence longer than the budget on its own gets a batch of its own."""
    budget = token_budget or batch_size * (SIZED_PROMPT_TOKENS + new_tokens)
    return token_batches([n + new_tokens for n in lengths], batch_size, budget)


def prompt_ids(tokenizer, prompts: list[str], max_prompt_tokens: int | None = None) -> tuple[list[list[int]], int]:
    """The chat-template ids of each prompt (BOS where the tokenizer adds one), cut from the left to
    ``max_prompt_tokens`` (its BOS kept); and how many were cut."""
    ids, cut, first = [], 0, bos_kept(tokenizer)
    for text in chat_prompts(tokenizer, prompts):
        one = text_ids(tokenizer, text)
        if max_prompt_tokens is not None and len(one) > max_prompt_tokens:
            one, cut = cut_left(one, max_prompt_tokens, first), cut + 1
        ids.append(one)
    return ids, cut


def _left_padded(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    return ids, mask


@torch.no_grad()
def sample(model, tokenizer, prompts: list[str], n_samples: int = 1, temperature: float = 0.7,
           top_p: float = 0.95, max_new_tokens: int = 16, batch_size: int | None = 64, seed: int = 0,
           progress: bool = True, max_prompt_tokens: int | None = None,
           token_budget: int | None = None, top_k: int = DEFAULT_TOP_K) -> tuple[list[list[str]], GenerationStats]:
    """``n_samples`` responses per prompt (a list per prompt) and throughput statistics.
    ``temperature = 0`` means greedy decoding; ``batch_size=None`` picks :func:`default_batch_size`;
    batches and prompt cuts as the module doc says."""
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature!r}, {top_p!r}")
    if batch_size is None:
        batch_size = default_batch_size(model)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
    if max_prompt_tokens is not None and (not isinstance(max_prompt_tokens, int) or max_prompt_tokens < 1):
        raise ValueError(f"max_prompt_tokens must be an integer >= 1 or None, got {max_prompt_tokens!r}")
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    ids, cut = prompt_ids(tokenizer, prompts, max_prompt_tokens)
    seqs = [s for s in ids for _ in range(n_samples)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    stops = stop_ids(model, tokenizer)
    eos = stops[0] if len(stops) == 1 else (stops or None)
    out: list[str] = []
    new_tokens, start = 0, time.perf_counter()
    batches = sampling_batches([len(s) for s in seqs], batch_size, max_new_tokens, token_budget)
    for b, part in enumerate(tqdm(batches, desc="sampling", disable=not progress, leave=False)):
        input_ids, mask = _left_padded([seqs[i] for i in part], pad, device)
        torch.manual_seed(seed + b)
        completion = generate_ids(model, input_ids, mask, temperature=temperature, top_p=top_p,
                                  max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=eos,
                                  top_k=top_k)
        new_tokens += int((completion != pad).sum())
        out.extend(s.strip() for s in tokenizer.batch_decode(completion, skip_special_tokens=True))
    stats = GenerationStats(len(out), new_tokens, time.perf_counter() - start, len(batches), cut)
    log.info("sampled %d responses in %d batches (%d prompts cut to %s tokens), %.0f tokens/s", stats.responses,
             len(batches), cut, max_prompt_tokens, stats.tokens_per_second)
    model.train(was_training)
    return [out[i * n_samples:(i + 1) * n_samples] for i in range(len(prompts))], stats
