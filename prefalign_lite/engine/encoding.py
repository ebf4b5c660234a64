"""Preference pairs as token ids: the chat template's split of prompt and completion, truncation,
and batches that stack the chosen completions over the rejected ones (``2B`` rows).

``labels`` hold the completion token ids and ``-100`` everywhere else (prompt and padding),
aligned with ``input_ids``: logits at position ``t`` score the token at ``t + 1``.

Truncation follows TRL's ``keep_end`` idea made safe for pairs: when prompt + completion exceed
``max_length``, the prompt is cut from the left first, but only as far as needed to keep
``min_completion_tokens`` of the (longer) completion; then the completions are cut at their end.
"""
from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)

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


def adds_bos(tokenizer) -> bool:
    """Whether ``tokenizer`` puts its BOS token in front of a text when asked for special tokens
    (``add_bos_token``, or a post-processor that adds it): Llama's and Mistral's tokenizers do, and
    their chat templates (Zephyr's) may not write it themselves."""
    cached = _ADDS_BOS.get(tokenizer)
    if cached is None:
        bos = getattr(tokenizer, "bos_token_id", None)
        cached = bos is not None and tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos] \
            and tokenizer("a", add_special_tokens=False)["input_ids"][:1] != [bos]
        _ADDS_BOS[tokenizer] = cached
    return cached


def text_ids(tokenizer, text: str) -> list[int]:
    """The token ids of a text the chat template rendered: no special tokens added, except the BOS
    token where the tokenizer would add one and the text does not start with it already (a template
    such as Llama-3's writes ``<|begin_of_text|>`` itself; Zephyr's does not, and the model was
    trained with it)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if adds_bos(tokenizer) and ids[:1] != [tokenizer.bos_token_id]:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def bos_kept(tokenizer) -> int:
    """How many leading prompt tokens a left cut keeps: 1 (the BOS token) where :func:`adds_bos`."""
    return 1 if tokenizer is not None and adds_bos(tokenizer) else 0


def encode_completions(tokenizer, prompt: str, completions: list[str]) -> tuple[list[int], list[list[int]]]:
    """:func:`encode` for several completions of one prompt (the prompt rendered once).

    The completion's ids are the conversation's ids after the prompt's when the prompt's ids are a
    prefix of them (word-level and most BPE tokenizers: exactly the ids of the whole text). Where
    the tokenizer merges across the boundary (Qwen2's pre-tokenizer joins the generation prompt's
    final newline with an answer's leading newlines into one piece), the completion's text, the
    rendered conversation after the rendered prompt, is tokenised on its own: the ids a model
    continuing the prompt would produce. A template whose conversation does not start with its
    prompt text is an :class:`UnusablePairError`.

    Results are remembered per tokenizer (keyed by its chat template and vocabulary size too): a
    self-improving round tokenises the same pairs to label them under two models, to train on them
    and to estimate KLs, and rendering the template is most of the cost on a small model."""
    cache = _ENCODED.setdefault(tokenizer, {})
    if len(cache) > ENCODE_CACHE_LIMIT:
        cache.clear()
    version = (getattr(tokenizer, "chat_template", None), len(tokenizer))
    user = [{"role": "user", "content": prompt}]
    head = cache.get((version, prompt))
    if head is None:
        text = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        head = cache[(version, prompt)] = (text, tuple(text_ids(tokenizer, text)))
    head_text, head_ids = head
    tails = []
    for completion in completions:
        tail = cache.get((version, prompt, completion))
        if tail is None:
            full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": completion}], tokenize=False)
            full_ids = text_ids(tokenizer, full)
            if tuple(full_ids[:len(head_ids)]) == head_ids:
                tail = tuple(full_ids[len(head_ids):])
            elif full.startswith(head_text):
                tail = tuple(tokenizer(full[len(head_text):], add_special_tokens=False)["input_ids"])
            else:
                raise UnusablePairError(f"the chat template's conversation does not start with its prompt for "
                                        f"completion {completion[:60]!r}")
            cache[(version, prompt, completion)] = tail
        tails.append(list(tail))
    return list(head_ids), tails


ENCODE_CACHE_LIMIT = 500_000   # entries per tokenizer before the memo starts again (a few hundred MB at most)
_ENCODED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_ADDS_BOS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
                  min_completion_tokens: int | None = None, keep_first: int = 0) -> TokenisedPair:
    """Fit prompt + completion into ``max_length`` tokens for both sides of a pair.

    1. the prompt is cut from the left (its end, next to the answer, stays), but only down to
       ``max_length - min(longest completion, reserve)`` tokens, where ``reserve`` is
       :func:`completion_reserve`; both sides share the cut prompt; its first ``keep_first``
       tokens (a BOS token, :func:`bos_kept`) stay in front of what is left;
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
    prompt = cut_left(prompt_ids, keep_prompt, keep_first)
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


def cut_left(ids: list[int], keep: int, keep_first: int = 0) -> list[int]:
    """The last ``keep`` of ``ids``, its first ``keep_first`` tokens kept in front when it is cut."""
    if keep >= len(ids):
        return list(ids)
    first = min(keep_first, keep)
    return list(ids[:first]) + list(ids[len(ids) - (keep - first):]) if keep > first else list(ids[:keep])


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
    out, first = TokenisedRows(), bos_kept(tokenizer)
    for i, row in enumerate(rows):
        try:
            prompt, chosen, rejected = _row_ids(tokenizer, row, i, prefix, stage)
            pair = truncate_pair(prompt, chosen, rejected, max_length, min_completion_tokens, first)
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


def _row_ids(tokenizer, row: Mapping, i: int, prefix: str | None, stage: str) -> tuple[list[int], list[int], list[int]]:
    if not isinstance(row, Mapping):
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
    head, (chosen, rejected) = encode_completions(tokenizer, prompt, [row["chosen"], row["rejected"]])
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


