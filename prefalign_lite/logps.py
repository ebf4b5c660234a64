"""Sequence log-probabilities of completions: plain (summed and length-averaged, prompt masked,
padding handled), under a prompt-augmented query (Sr-DPO), and under SPA's extrapolated model.

A preference batch stacks the chosen completions over the rejected ones, ``2B`` rows in one
forward pass. ``labels`` hold the completion token ids and ``-100`` everywhere else (prompt and
padding), aligned with ``input_ids``: logits at position ``t`` score the token at ``t + 1``.

Memory: the log-probs are computed from the decoder's last hidden state at the completion
positions only, pushed through the output head a chunk of tokens at a time (each chunk at most
``chunk_elements`` logits, recomputed in the backward pass), so the ``(2B, T, V)`` logits of the
whole batch never exist. Models whose head is not a plain ``nn.Linear`` (logit soft-capping, a
LoRA on the head) fall back to the full logits.

Truncation follows TRL's ``keep_end`` idea made safe for pairs: when prompt + completion exceed
``max_length``, the prompt is cut from the left first, but only as far as needed to keep
``min_completion_tokens`` of the (longer) completion; then the completions are cut at their end.
"""
from __future__ import annotations

import functools
import logging
import weakref
from dataclasses import dataclass, field

import torch
from torch.utils.checkpoint import checkpoint

from .objectives import extrapolated_logps

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ELEMENTS = 1 << 25   # 32M logits (128 MB in float32) per chunk of completion tokens
UNUSABLE_PAIR_MODES = ("error", "skip")


@dataclass
class PairBatch:
    input_ids: torch.Tensor       # (2B, T), right-padded
    attention_mask: torch.Tensor  # (2B, T)
    labels: torch.Tensor          # (2B, T), -100 outside completions
    rows: tuple[int, ...] = ()    # indices of the input rows kept (all of them unless some were skipped)
    pairs_truncated: int = 0      # pairs of which a token was cut

    @property
    def n_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device) -> "PairBatch":
        return PairBatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device),
                         self.rows, self.pairs_truncated)


@dataclass(frozen=True)
class TokenisedPair:
    """One preference pair as token ids, after truncation."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    truncated: bool = False


class UnusablePairError(ValueError):
    """A pair that keeps no completion token (or no prompt token) after truncation."""


@dataclass
class TokenisedRows:
    """Rows tokenised and truncated: ``pairs[i]`` is input row ``kept[i]``."""

    pairs: list[TokenisedPair] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    truncated: int = 0
    skipped: list[int] = field(default_factory=list)


def encode(tokenizer, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """``(prompt_ids, completion_ids)`` through the chat template, the way TRL splits them: the
    completion is what the full conversation adds after the generation prompt (end token included)."""
    head_ids, (tail,) = encode_completions(tokenizer, prompt, [completion])
    return head_ids, tail


def encode_completions(tokenizer, prompt: str, completions: list[str]) -> tuple[list[int], list[list[int]]]:
    """:func:`encode` for several completions of one prompt (the prompt rendered once).

    Results are remembered per tokenizer (keyed by its chat template and vocabulary size too): a
    self-improving round tokenises the same pairs to label them under two models, to train on them
    and to estimate KLs, and rendering the template is most of the cost on a small model."""
    cache = _ENCODED.setdefault(tokenizer, {})
    if len(cache) > ENCODE_CACHE_LIMIT:
        cache.clear()
    version = (getattr(tokenizer, "chat_template", None), len(tokenizer))
    user = [{"role": "user", "content": prompt}]
    head_ids = cache.get((version, prompt))
    if head_ids is None:
        head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        head_ids = cache[(version, prompt)] = tuple(tokenizer(head, add_special_tokens=False)["input_ids"])
    tails = []
    for completion in completions:
        tail = cache.get((version, prompt, completion))
        if tail is None:
            full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": completion}], tokenize=False)
            full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
            if tuple(full_ids[:len(head_ids)]) != head_ids:
                raise ValueError(f"the chat template does not extend the prompt for completion {completion!r}")
            tail = cache[(version, prompt, completion)] = tuple(full_ids[len(head_ids):])
        tails.append(list(tail))
    return list(head_ids), tails


ENCODE_CACHE_LIMIT = 500_000   # entries per tokenizer before the memo starts again (a few hundred MB at most)
_ENCODED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def completion_reserve(max_length: int, min_completion_tokens: int | None) -> int:
    """The completion tokens the truncation keeps before it cuts into the completion:
    ``min_completion_tokens``, or half of ``max_length`` when it is ``None``."""
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2 (a prompt token and a completion token), got {max_length!r}")
    reserve = max_length // 2 if min_completion_tokens is None else min_completion_tokens
    if not isinstance(reserve, int) or not 0 <= reserve < max_length:
        raise ValueError(f"min_completion_tokens must be an integer in [0, max_length) = [0, {max_length}), "
                         f"got {min_completion_tokens!r}")
    return reserve


def truncate_pair(prompt_ids: list[int], chosen_ids: list[int], rejected_ids: list[int], max_length: int | None,
                  min_completion_tokens: int | None = None) -> TokenisedPair:
    """Fit prompt + completion into ``max_length`` tokens for both sides of a pair.

    1. the prompt is cut from the left (its end, next to the answer, stays), but only down to
       ``max_length - min(longest completion, reserve)`` tokens, where ``reserve`` is
       :func:`completion_reserve`; both sides share the cut prompt;
    2. then each completion is cut at its end to what is left of ``max_length``.

    Raises :class:`UnusablePairError` naming the side and the lengths when a side keeps no
    completion token, or the prompt keeps no token (the first completion token would have no
    position to be predicted from)."""
    if max_length is None:
        keep_prompt, room = len(prompt_ids), None
    else:
        reserve = completion_reserve(max_length, min_completion_tokens)
        longest = max(len(chosen_ids), len(rejected_ids))
        keep_prompt = min(len(prompt_ids), max_length - min(longest, reserve))
        room = max_length - keep_prompt
    prompt = prompt_ids[len(prompt_ids) - keep_prompt:]
    chosen, rejected = chosen_ids[:room], rejected_ids[:room]
    lengths = (f"{len(prompt_ids)} prompt, {len(chosen_ids)} chosen and {len(rejected_ids)} rejected tokens, "
               f"max_length {max_length}, min_completion_tokens {min_completion_tokens}")
    if not prompt:
        raise UnusablePairError(f"the prompt keeps no token ({lengths})")
    for side, kept in (("chosen", chosen), ("rejected", rejected)):
        if not kept:
            raise UnusablePairError(f"the {side} completion keeps no token ({lengths})")
    cut = len(prompt) < len(prompt_ids) or len(chosen) < len(chosen_ids) or len(rejected) < len(rejected_ids)
    return TokenisedPair(prompt, chosen, rejected, truncated=cut)


def tokenise_rows(tokenizer, rows: list[dict], prefix: str | None = None, max_length: int | None = None,
                  min_completion_tokens: int | None = None, on_unusable: str = "error",
                  stage: str = "log-probs") -> TokenisedRows:
    """Tokenise and truncate preference rows: plain strings ``{"prompt", "chosen", "rejected"}``
    (through the chat template; ``prefix`` is prepended to each user turn, Sr-DPO's ``p + x``) or
    token ids ``{"prompt_ids", "chosen_ids", "rejected_ids"}`` (TRL's tokenised columns).

    An unusable pair (see :func:`truncate_pair`) raises a ``ValueError`` naming ``stage``, the row
    and the side when ``on_unusable == "error"``; with ``"skip"`` it is left out and counted."""
    if on_unusable not in UNUSABLE_PAIR_MODES:
        raise ValueError(f"on_unusable must be one of {UNUSABLE_PAIR_MODES}, got {on_unusable!r}")
    out = TokenisedRows()
    for i, row in enumerate(rows):
        prompt, chosen, rejected = _row_ids(tokenizer, row, i, prefix, stage)
        try:
            pair = truncate_pair(prompt, chosen, rejected, max_length, min_completion_tokens)
        except UnusablePairError as exc:
            if on_unusable == "error":
                raise UnusablePairError(f"{stage}: row {i}: {exc} (set on_unusable_pair='skip' to leave such "
                                        "pairs out)") from None
            out.skipped.append(i)
            continue
        out.pairs.append(pair)
        out.kept.append(i)
        out.truncated += pair.truncated
    return out


def _row_ids(tokenizer, row: dict, i: int, prefix: str | None, stage: str) -> tuple[list[int], list[int], list[int]]:
    if not isinstance(row, dict):
        raise ValueError(f"{stage}: row {i} must be a dict, got {type(row).__name__}")
    if "prompt_ids" in row:
        for key in ("prompt_ids", "chosen_ids", "rejected_ids"):
            ids = row.get(key)
            if not isinstance(ids, (list, tuple)) or not all(isinstance(t, int) and t >= 0 for t in ids):
                raise ValueError(f"{stage}: row {i}: field {key!r} must be a list of token ids (ints >= 0)")
        if prefix:
            raise ValueError(f"{stage}: row {i}: a prompt prefix needs text rows, not token ids")
        return list(row["prompt_ids"]), list(row["chosen_ids"]), list(row["rejected_ids"])
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(row.get(key), str):
            raise ValueError(f"{stage}: row {i}: field {key!r} must be a string (or give prompt_ids/chosen_ids/rejected_ids)")
    if tokenizer is None:
        raise ValueError(f"{stage}: row {i} is text but no tokenizer was given")
    prompt = f"{prefix} {row['prompt']}" if prefix else row["prompt"]
    try:
        head, (chosen, rejected) = encode_completions(tokenizer, prompt, [row["chosen"], row["rejected"]])
    except ValueError as exc:
        raise ValueError(f"{stage}: row {i}: {exc}") from None
    return head, chosen, rejected


def collate(pairs: list[TokenisedPair], pad_token_id: int, rows: tuple[int, ...] = ()) -> PairBatch:
    """Chosen sequences over rejected ones, right-padded, the prompt masked out of the labels."""
    seqs = [(p.prompt_ids + c, [-100] * len(p.prompt_ids) + c)
            for side in ("chosen_ids", "rejected_ids") for p in pairs for c in [getattr(p, side)]]
    width = max(len(ids) for ids, _ in seqs)
    input_ids = torch.tensor([ids + [pad_token_id] * (width - len(ids)) for ids, _ in seqs])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in seqs])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in seqs])
    return PairBatch(input_ids, mask, labels, rows or tuple(range(len(pairs))), sum(p.truncated for p in pairs))


def pair_batch(tokenizer, prompts: list[str], chosen: list[str], rejected: list[str],
               prefix: str | None = None, max_length: int | None = None, *,
               min_completion_tokens: int | None = None, on_unusable: str = "error") -> PairBatch:
    """Tokenise pairs into one batch. ``prefix`` is prepended to each user turn (Sr-DPO's
    ``p + x``). Pairs longer than ``max_length`` are truncated by :func:`truncate_pair`."""
    if not len(prompts) == len(chosen) == len(rejected):
        raise ValueError(f"{len(prompts)} prompts, {len(chosen)} chosen, {len(rejected)} rejected")
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in zip(prompts, chosen, rejected)]
    done = tokenise_rows(tokenizer, rows, prefix, max_length, min_completion_tokens, on_unusable)
    if not done.pairs:
        raise ValueError(f"no usable pair among {len(rows)} (skipped rows {done.skipped})")
    return collate(done.pairs, tokenizer.pad_token_id, tuple(done.kept))


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
    """Summed completion log-prob per row, ``(2B,)``, a chunk of tokens at a time. With gradients
    on, each chunk's logits are recomputed in the backward pass instead of being kept."""
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
    hidden states, a chunk of tokens at a time; every chunk goes through
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


def forward_logps(model, batch: PairBatch, keep_logits: bool = False, *,
                  chunk_elements: int = DEFAULT_CHUNK_ELEMENTS, keep_states: bool = False):
    """One forward pass over the batch: ``(logps (2B,), lengths (2B,), extra)``.

    ``extra`` is the float32 logits ``(2B, T, V)`` with ``keep_logits`` (the old, memory-hungry
    path, for objectives that read logits), the :class:`CompletionStates` with ``keep_states``,
    else ``None``."""
    lengths = (batch.labels[:, 1:] != -100).sum(-1)
    if keep_logits or not supports_hidden_path(model):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits.float()
        logps, _ = completion_logps(logits, batch.labels)
        return logps.to(lengths.device), lengths, (logits if keep_logits else None)
    states = completion_states(model, batch)
    logps = logps_from_states(states, chunk_elements)
    return logps.to(lengths.device), lengths, (states if keep_states else None)


def extrapolated_pair_logps(policy_logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor,
                            lam: float) -> torch.Tensor:
    """SPA Eq. 12 summed over each completion, for a batch's full policy and reference logits
    (the unchunked form; :func:`extrapolated_logps_from_states` is the memory-light one)."""
    return extrapolated_logps(policy_logits[:, :-1], ref_logits[:, :-1], labels[:, 1:], lam)


def split_pairs(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen rows first, rejected rows second: ``(values_w, values_l)``."""
    half = values.shape[0] // 2
    return values[:half], values[half:]
