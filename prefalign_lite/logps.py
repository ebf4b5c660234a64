"""Sequence log-probabilities of completions: plain (summed and length-averaged, prompt masked,
padding handled), under a prompt-augmented query (Sr-DPO), and under SPA's extrapolated model.

A preference batch stacks the chosen completions over the rejected ones, ``2B`` rows in one
forward pass. ``labels`` hold the completion token ids and ``-100`` everywhere else (prompt and
padding), aligned with ``input_ids``: logits at position ``t`` score the token at ``t + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .objectives import extrapolated_logps


@dataclass
class PairBatch:
    input_ids: torch.Tensor       # (2B, T), right-padded
    attention_mask: torch.Tensor  # (2B, T)
    labels: torch.Tensor          # (2B, T), -100 outside completions

    @property
    def n_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device) -> "PairBatch":
        return PairBatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def encode(tokenizer, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """``(prompt_ids, completion_ids)`` through the chat template, the way TRL splits them: the
    completion is what the full conversation adds after the generation prompt (end token included)."""
    user = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": completion}], tokenize=False)
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if full_ids[:len(head_ids)] != head_ids:
        raise ValueError(f"the chat template does not extend the prompt for completion {completion!r}")
    return head_ids, full_ids[len(head_ids):]


def pair_batch(tokenizer, prompts: list[str], chosen: list[str], rejected: list[str],
               prefix: str | None = None, max_length: int | None = None) -> PairBatch:
    """Tokenise pairs into one batch. ``prefix`` is prepended to each user turn (Sr-DPO's
    ``p + x``). Sequences longer than ``max_length`` are cut at the end."""
    if not len(prompts) == len(chosen) == len(rejected):
        raise ValueError(f"{len(prompts)} prompts, {len(chosen)} chosen, {len(rejected)} rejected")
    rows = []
    for completions in (chosen, rejected):
        for prompt, completion in zip(prompts, completions):
            head, tail = encode(tokenizer, f"{prefix} {prompt}" if prefix else prompt, completion)
            ids, labels = head + tail, [-100] * len(head) + tail
            rows.append((ids[:max_length], labels[:max_length]))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])
    return PairBatch(input_ids, mask, labels)


def completion_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(summed log-prob, number of completion tokens)`` per row, from logits ``(N, T, V)``."""
    logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != -100
    safe = labels.masked_fill(~mask, 0).unsqueeze(-1)
    token = logits.gather(-1, safe).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (token * mask).sum(-1), mask.sum(-1)


def forward_logps(model, batch: PairBatch, keep_logits: bool = False):
    """One forward pass over the batch: ``(logps (2B,), lengths (2B,), logits or None)``."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits.float()
    logps, lengths = completion_logps(logits, batch.labels)
    return logps, lengths, (logits if keep_logits else None)


def extrapolated_pair_logps(policy_logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor,
                            lam: float) -> torch.Tensor:
    """SPA Eq. 12 summed over each completion, for a batch's policy and reference logits."""
    return extrapolated_logps(policy_logits[:, :-1], ref_logits[:, :-1], labels[:, 1:], lam)


def split_pairs(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen rows first, rejected rows second: ``(values_w, values_l)``."""
    half = values.shape[0] // 2
    return values[:half], values[half:]
