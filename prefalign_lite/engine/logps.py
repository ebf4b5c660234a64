"""Sequence log-probabilities of completions under a model: plain (summed, prompt masked, padding
handled), under a prompt-augmented query (Sr-DPO), and under SPA's extrapolated model (Eq. 12).

Memory: the log-probs are computed from the decoder's last hidden state at the completion
positions only, pushed through the output head a chunk of tokens at a time (each chunk at most
``chunk_elements`` logits, recomputed in the backward pass), so the ``(2B, T, V)`` logits of the
whole batch never exist. Models whose head is not a plain ``nn.Linear`` (logit soft-capping, a
LoRA on the head) fall back to the full logits. Every chunked function computes exactly what its
naive form computes, written out in its docstring.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from ..objectives import extrapolated_logps
from .chat import bos_kept
from .encoding import (PairBatch, UnusablePairError, collate, encode_completions, pad_token_id_or, token_batches,
                       tokenise_rows, truncate_pair)
from .models import autocast_for

DEFAULT_CHUNK_ELEMENTS = 1 << 25   # 32M logits (128 MB in float32) per chunk of completion tokens


def completion_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(summed log-prob, number of completion tokens)`` per row, from logits ``(N, T, V)``."""
    logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != -100
    safe = labels.masked_fill(~mask, 0).unsqueeze(-1)
    token = logits.gather(-1, safe).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (token * mask).sum(-1), mask.sum(-1)


@dataclass
class CompletionStates:
    """The decoder's last hidden state at every position that predicts a completion token."""

    hidden: torch.Tensor   # (N, H): N = completion tokens of the batch
    targets: torch.Tensor  # (N,): the token each position predicts
    mask: torch.Tensor     # (2B, T - 1): where those positions are (labels shifted by one)
    head: torch.nn.Module  # the output head (hidden -> logits)


def causal_lm(model):
    """The transformers causal LM inside ``model`` (a PEFT wrapper is unwrapped)."""
    unwrap = getattr(model, "get_base_model", None)
    return unwrap() if callable(unwrap) else model


_LOGIT_SCALERS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier", "lm_head_multiplier")


def supports_hidden_path(model) -> bool:
    """Whether the logits are exactly ``head(decoder(...).last_hidden_state)`` with a plain linear
    head, so log-probs can be computed from hidden states (else the full logits are used)."""
    lm = causal_lm(model)
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    decoder = lm.get_decoder() if hasattr(lm, "get_decoder") else None
    config = getattr(lm, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return (type(head) is torch.nn.Linear and isinstance(decoder, torch.nn.Module) and decoder is not lm
            and all(getattr(text, name, None) is None for name in _LOGIT_SCALERS))


def completion_states(model, batch: PairBatch) -> CompletionStates:
    """One pass of the decoder; the hidden states at the completion positions (gradients flow when
    enabled)."""
    lm = causal_lm(model)
    out = lm.get_decoder()(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    head = lm.get_output_embeddings()
    mask = batch.labels[:, 1:] != -100
    hidden = out.last_hidden_state[:, :-1][mask].to(head.weight.device)
    return CompletionStates(hidden, batch.labels[:, 1:][mask].to(head.weight.device), mask, head)


def _token_logps(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(head(hidden))[target] per token, in float32."""
    logits = head(hidden).float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def _chunks(states: CompletionStates, chunk_elements: int) -> list[slice]:
    n, vocab = states.hidden.shape[0], states.head.weight.shape[0]
    size = max(1, chunk_elements // max(vocab, 1))
    return [slice(lo, lo + size) for lo in range(0, n, size)] or [slice(0, 0)]


def logps_from_states(states: CompletionStates, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> torch.Tensor:
    """Summed completion log-prob per row, ``(2B,)``, a chunk of tokens at a time. The naive form::

        logits = head(hidden).float()                  # (N, V) at once
        token = logits.log_softmax(-1).gather(-1, targets[:, None])[:, 0]
        per_row = zeros(mask.shape).masked_scatter(mask, token).sum(-1)

    With gradients on, each chunk's logits are recomputed in the backward pass instead of kept."""
    grad = torch.is_grad_enabled() and (states.hidden.requires_grad or any(p.requires_grad for p in states.head.parameters()))
    parts = _chunks(states, chunk_elements)
    fn = functools.partial(_token_logps, states.head)
    if len(parts) == 1 or not grad:
        token = torch.cat([fn(states.hidden[s], states.targets[s]) for s in parts])
    else:
        token = torch.cat([checkpoint(fn, states.hidden[s], states.targets[s], use_reentrant=False) for s in parts])
    return _per_row(token, states.mask)


def _per_row(token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scatter per-token values back to ``(2B, T - 1)`` (zeros elsewhere) and sum each row, the
    same summation as :func:`completion_logps`."""
    return token.new_zeros(mask.shape).masked_scatter(mask, token).sum(-1)


@torch.no_grad()
def extrapolated_logps_from_states(policy: CompletionStates, ref: CompletionStates, lam: float,
                                   chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> torch.Tensor:
    """SPA Eq. 12 summed over each completion, ``(2B,)``, from the policy's and the reference's
    hidden states, a chunk of tokens at a time. The naive form is :func:`extrapolated_pair_logps`
    on the two models' full logits; every chunk goes through
    :func:`prefalign_lite.objectives.extrapolated_logps` (the single definition of the maths), each
    token as a sequence of length one. No gradient (SPA uses it to flag pairs)."""
    if not torch.equal(policy.mask, ref.mask):
        raise ValueError("policy and reference states cover different completion positions")
    token = []
    for s in _chunks(policy, chunk_elements):
        pol = policy.head(policy.hidden[s]).float().unsqueeze(1)
        refl = ref.head(ref.hidden[s].to(ref.head.weight.device)).float().to(pol.device).unsqueeze(1)
        token.append(extrapolated_logps(pol, refl, policy.targets[s].unsqueeze(1), lam))
    return _per_row(torch.cat(token), policy.mask)


@dataclass
class ForwardPass:
    """One forward pass over a pair batch: the summed completion log-probs and lengths ``(2B,)``,
    and what the pass went through — the :class:`CompletionStates` on the hidden-state path, or
    the float32 logits ``(2B, T, V)`` when the full logits were asked for or the model has no
    hidden-state path (exactly one of the two is set)."""

    logps: torch.Tensor
    lengths: torch.Tensor
    states: CompletionStates | None = None
    logits: torch.Tensor | None = None


def forward_pass(model, batch: PairBatch, *, full_logits: bool = False,
                 chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> ForwardPass:
    """One forward pass over the batch (gradients flow when enabled). The summed log-probs equal
    the naive ``log_softmax(model(input_ids).logits)`` gathered at the completion tokens and
    summed per row (:func:`completion_logps`); ``full_logits`` computes them that way and keeps
    the logits, for objectives that read logits."""
    lengths = (batch.labels[:, 1:] != -100).sum(-1)
    if full_logits or not supports_hidden_path(model):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits.float()
        logps, _ = completion_logps(logits, batch.labels)
        return ForwardPass(logps.to(lengths.device), lengths, logits=logits)
    states = completion_states(model, batch)
    logps = logps_from_states(states, chunk_elements)
    return ForwardPass(logps.to(lengths.device), lengths, states=states)


def forward_logps(model, batch: PairBatch, *, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> torch.Tensor:
    """The summed completion log-prob of each of the batch's ``2B`` rows (:func:`forward_pass`)."""
    return forward_pass(model, batch, chunk_elements=chunk_elements).logps


# Tokens (padded rows x width) of one no-gradient pass: 32 pairs of 1,024 tokens, about 10 GB of a 7B
# layer's working set (bench --estimate); the tiny model's batches never reach it.
LOGPROB_TOKEN_BUDGET = 65_536


@torch.no_grad()
def pair_logps(model, tokenizer, rows: list[dict], *, prefix: str | None = None, max_length: int | None = None,
               batch_size: int = 128, token_budget: int = LOGPROB_TOKEN_BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logp_chosen, logp_rejected)`` in float32 on the CPU of plain-string rows
    ``{"prompt", "chosen", "rejected"}`` under ``model``, at most ``batch_size`` rows and
    ``token_budget`` padded tokens (chosen and rejected stacked) per forward pass (long prompts cut
    from the left as in training; ``prefix`` is prepended to each user turn and kept by the cut, or
    the pairs where it could not be are logged); autocast as :func:`~.models.autocast_for` decides.
    A tokenizer without a pad token pads with :func:`~.encoding.pad_token_id_or`'s id 0."""
    if not rows:
        raise ValueError("log-probs of zero rows")
    device, pad = next(model.parameters()).device, pad_token_id_or(tokenizer)
    done = tokenise_rows(tokenizer, rows, prefix, max_length)   # every row kept, or an error naming it
    lengths = [len(p.prompt_ids) + max(len(p.chosen_ids), len(p.rejected_ids)) for p in done.pairs]
    chosen, rejected = [], []
    for part in token_batches(lengths, batch_size, token_budget // 2):
        batch = collate(done.pairs[part.start:part.stop], pad)
        with autocast_for(device, model=model):
            w, l_ = split_pairs(forward_logps(model, batch.to(device)))
        chosen.append(w.float().cpu()), rejected.append(l_.float().cpu())
    return torch.cat(chosen), torch.cat(rejected)


@torch.no_grad()
def completion_logps_of(model, tokenizer, prompts: list[str], completions: list[str], *, max_length: int | None = None,
                        batch_size: int = 128, token_budget: int = LOGPROB_TOKEN_BUDGET) -> torch.Tensor:
    """``log p(completion | prompt)`` of each (prompt, completion) in float32 on the CPU, one
    sequence per completion: :func:`pair_logps`' chosen side without a rejected side to compute
    (the same truncation, at most ``batch_size`` completions and ``token_budget`` padded tokens per
    forward pass)."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        raise ValueError("log-probs of zero completions")
    device, out = next(model.parameters()).device, []
    first, pairs = bos_kept(tokenizer), []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        head, (tail,) = encode_completions(tokenizer, p, [c])
        try:
            pairs.append(truncate_pair(head, tail, tail, max_length, keep_first=first))
        except UnusablePairError as exc:
            raise UnusablePairError(f"completion log-probs: row {i}: {exc}") from None
    lengths = [len(p.prompt_ids) + len(p.chosen_ids) for p in pairs]
    for part in token_batches(lengths, batch_size, token_budget):
        batch = collate(pairs[part.start:part.stop], pad_token_id_or(tokenizer))
        half = batch.n_pairs
        single = PairBatch(batch.input_ids[:half], batch.attention_mask[:half], batch.labels[:half])
        with autocast_for(device, model=model):
            out.append(forward_logps(model, single.to(device)).float().cpu())
    return torch.cat(out)


def extrapolated_pair_logps(policy_logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor,
                            lam: float) -> torch.Tensor:
    """SPA Eq. 12 summed over each completion, for a batch's full policy and reference logits
    (the unchunked form; :func:`extrapolated_logps_from_states` is the memory-light one)."""
    return extrapolated_logps(policy_logits[:, :-1], ref_logits[:, :-1], labels[:, 1:], lam)


def split_pairs(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen rows first, rejected rows second: ``(values_w, values_l)``."""
    half = values.shape[0] // 2
    return values[:half], values[half:]
