"""Preference pairs as token ids: the chat template's split of prompt and completion, truncation,
and batches that stack the chosen completions over the rejected ones (``2B`` rows).

``labels`` hold the completion token ids and ``-100`` everywhere else (prompt and padding),
aligned with ``input_ids``: logits at position ``t`` score the token at ``t + 1``.

Truncation follows TRL's ``keep_end`` idea made safe for pairs: when prompt + completion exceed
``max_length``, the prompt is cut from the left first, but only as far as needed to keep
``min_completion_tokens`` of the (longer) completion; then the completions are cut at their end.
A prompt prefix (Sr-DPO's quality instruction ``p`` in ``p + x``) is never cut: once the template's
tokens in front of it are gone, the cut goes on in the user's text after it; a pair where even
that cannot make room is cut as a plain prompt is and counted (:attr:`TokenisedRows.instruction_lost`).
"""
from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from .chat import TemplateRenderError, bos_kept, render_chat, text_ids

log = logging.getLogger(__name__)

UNUSABLE_PAIR_MODES = ("error", "skip")


@dataclass
class PairBatch:
    input_ids: torch.Tensor       # (2B, T), right-padded
    attention_mask: torch.Tensor  # (2B, T)
    labels: torch.Tensor          # (2B, T), -100 outside completions
    rows: tuple[int, ...] = ()    # indices of the input rows kept (all of them unless some were skipped)
    pairs_truncated: int = 0      # pairs of which a token was cut
    instruction_lost: int = 0     # pairs whose prompt prefix the cut could not keep

    @property
    def n_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device) -> "PairBatch":
        return PairBatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device),
                         self.rows, self.pairs_truncated, self.instruction_lost)


@dataclass(frozen=True)
class TokenisedPair:
    """One preference pair as token ids, after truncation."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    truncated: bool = False
    instruction_lost: bool = False   # the left cut reached a prompt prefix it could not keep


class UnusablePairError(ValueError):
    """A pair that keeps no completion token (or no prompt token) after truncation."""


class ChatTemplateError(UnusablePairError):
    """A pair the chat template cannot split into prompt and completion: the rendered conversation
    does not start with the rendered prompt, or adds no token for the answer."""


SKIP_REASONS = ("max_length", "chat template")   # why tokenise_rows leaves a row out in skip mode


@dataclass(frozen=True)
class InstructionSpan:
    """A prompt prefix in the rendered prompt's ids: ``[start, end)`` the prefix, ``[end, text_end)``
    the user's text, then the template's tail; ``start is None``: not located."""

    start: int | None
    end: int = 0
    text_end: int = 0


@dataclass
class TokenisedRows:
    """Rows tokenised and truncated: ``pairs[i]`` is input row ``kept[i]``."""

    pairs: list[TokenisedPair] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    truncated: int = 0
    skipped: list[int] = field(default_factory=list)
    skipped_for: dict[str, list[int]] = field(default_factory=dict)   # skipped rows by reason (SKIP_REASONS)
    instruction_lost: list[int] = field(default_factory=list)   # kept rows whose prompt prefix was cut


def encode(tokenizer, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """``(prompt_ids, completion_ids)`` through the chat template, the way TRL splits them: the
    completion is what the full conversation adds after the generation prompt (end token included)."""
    head_ids, (tail,) = encode_completions(tokenizer, prompt, [completion])
    return head_ids, tail


def _rendered_prompt(tokenizer, prompt: str, cache: dict, version) -> tuple[str, tuple[int, ...]]:
    """``(text, ids)`` of the user turn with the generation prompt, remembered in ``cache``."""
    head = cache.get((version, prompt))
    if head is None:
        text = render_chat(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True)
        head = cache[(version, prompt)] = (text, tuple(text_ids(tokenizer, text)))
    return head


def encode_completions(tokenizer, prompt: str, completions: list[str]) -> tuple[list[int], list[list[int]]]:
    """:func:`encode` for several completions of one prompt (the prompt rendered once).

    The completion's ids are the conversation's ids after the prompt's when the prompt's ids are a
    prefix of them. Where the tokenizer merges across the boundary (Qwen2's pre-tokenizer joins the
    generation prompt's final newline with an answer's leading newlines), the rendered conversation
    after the rendered prompt is tokenised on its own: the ids a model continuing the prompt would
    produce. A template whose conversation does not start with its prompt text, or that adds no
    token for a non-empty answer, is a :class:`ChatTemplateError`.

    Results are remembered per tokenizer (keyed by its chat template and vocabulary size too): a
    self-improving round tokenises the same pairs to label them under two models, to train on them
    and to estimate KLs, and rendering the template is most of the cost on a small model."""
    cache = _ENCODED.setdefault(tokenizer, {})
    if len(cache) > ENCODE_CACHE_LIMIT:
        cache.clear()
    version = (getattr(tokenizer, "chat_template", None), len(tokenizer))
    user = [{"role": "user", "content": prompt}]
    head_text, head_ids = _rendered_prompt(tokenizer, prompt, cache, version)
    tails = []
    for completion in completions:
        tail = cache.get((version, prompt, completion))
        if tail is None:
            full = render_chat(tokenizer, user + [{"role": "assistant", "content": completion}])
            full_ids = text_ids(tokenizer, full)
            if tuple(full_ids[:len(head_ids)]) == head_ids:
                tail = tuple(full_ids[len(head_ids):])
            elif full.startswith(head_text):
                tail = tuple(tokenizer(full[len(head_text):], add_special_tokens=False)["input_ids"])
            else:
                raise ChatTemplateError(f"the chat template's conversation does not start with its prompt (the "
                                        f"generation prompt {head_text[-40:]!r} is not how the conversation goes "
                                        f"on) for completion {completion[:60]!r}")
            if not tail and completion.strip():
                raise ChatTemplateError(f"the chat template renders no token for the assistant's answer "
                                        f"{completion[:60]!r} (it drops the assistant turn)")
            cache[(version, prompt, completion)] = tail
        tails.append(list(tail))
    return list(head_ids), tails


def instruction_span(tokenizer, prefix: str, prompt: str) -> InstructionSpan:
    """Where ``prefix`` sits in the ids of the rendered user turn ``f"{prefix} {prompt}"``
    (:func:`encode_completions`' prompt ids), from the tokenizer's character offsets. Unlocated
    (``start=None``) for a tokenizer without offsets, or a template that rewrites the user's text."""
    cache, content = _ENCODED.setdefault(tokenizer, {}), f"{prefix} {prompt}"
    version = (getattr(tokenizer, "chat_template", None), len(tokenizer))
    key = (version, "instruction", prefix, prompt)
    if key not in cache:
        text, ids = _rendered_prompt(tokenizer, content, cache, version)
        located = content if content in text else content.strip()
        at = text.find(located) if located else -1
        offsets = _offsets(tokenizer, text, ids) if at >= 0 else None
        if offsets is None:
            cache[key] = InstructionSpan(None)
        else:
            p_start = text.find(prefix.strip(), at)
            start = next((i for i, o in enumerate(offsets) if o[1] > p_start), len(offsets))
            end = _first_from(offsets, start, p_start + len(prefix.strip()))
            cache[key] = InstructionSpan(start, end, _first_from(offsets, end, at + len(located)))
    return cache[key]


def _offsets(tokenizer, text: str, ids: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """The character span of each of ``ids`` in ``text`` (``(0, 0)`` for a BOS token :func:`text_ids`
    put in front), or ``None`` where the tokenizer gives no offsets."""
    if not getattr(tokenizer, "is_fast", False):
        return None
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    shift = len(ids) - len(enc["input_ids"])
    if shift not in (0, 1) or tuple(ids[shift:]) != tuple(enc["input_ids"]):
        return None
    return [(0, 0)] * shift + [tuple(o) for o in enc["offset_mapping"]]


def _first_from(offsets: list[tuple[int, int]], lo: int, char: int) -> int:
    """The first token at or after ``lo`` that starts at or after character ``char``."""
    return next((i for i in range(lo, len(offsets)) if offsets[i][0] >= char), len(offsets))


def pad_token_id_or(tokenizer, default: int = 0) -> int:
    """The id that pads a batch: the tokenizer's pad token, else ``default`` (padded positions are
    masked out of attention and labels, so which id it is changes no log-prob)."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return default if pad is None else int(pad)


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
                  min_completion_tokens: int | None = None, keep_first: int = 0,
                  instruction: InstructionSpan | None = None) -> TokenisedPair:
    """Fit prompt + completion into ``max_length`` tokens for both sides of a pair.

    1. the prompt is cut from the left (its end, next to the answer, stays), but only down to
       ``max_length - min(longest completion, reserve)`` tokens (``reserve``:
       :func:`completion_reserve`); both sides share it; its first ``keep_first`` tokens (a BOS
       token, :func:`bos_kept`) and a prefix at ``instruction`` stay (:func:`cut_prompt`);
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
    prompt, lost = cut_prompt(prompt_ids, keep_prompt, keep_first, instruction)
    chosen, rejected = chosen_ids[:room], rejected_ids[:room]
    lengths = (f"{len(prompt_ids)} prompt, {len(chosen_ids)} chosen and {len(rejected_ids)} rejected tokens, "
               f"max_length {max_length}, min_completion_tokens {min_completion_tokens}")
    if not prompt:
        raise UnusablePairError(f"the prompt keeps no token ({lengths})")
    for side, kept in (("chosen", chosen), ("rejected", rejected)):
        if not kept:
            raise UnusablePairError(f"the {side} completion keeps no token ({lengths})")
    cut = len(prompt) < len(prompt_ids) or len(chosen) < len(chosen_ids) or len(rejected) < len(rejected_ids)
    return TokenisedPair(prompt, chosen, rejected, truncated=cut, instruction_lost=lost)


def cut_left(ids: list[int], keep: int, keep_first: int = 0) -> list[int]:
    """The last ``keep`` of ``ids``, its first ``keep_first`` tokens kept in front when it is cut."""
    if keep >= len(ids):
        return list(ids)
    first = min(keep_first, keep)
    return list(ids[:first]) + list(ids[len(ids) - (keep - first):]) if keep > first else list(ids[:keep])


def cut_prompt(ids: list[int], keep: int, keep_first: int = 0,
               instruction: InstructionSpan | None = None) -> tuple[list[int], bool]:
    """``(ids cut to keep tokens, whether the instruction was lost)``. Without ``instruction``:
    :func:`cut_left`. With one, tokens go from the left as :func:`cut_left` takes them until the
    instruction is reached, the rest from the start of the user's text after it: ``ids[:keep_first]
    + instruction + the end of the user's text + the template's tail``. Where the user's text is too
    short (or the instruction was not located) the cut is :func:`cut_left`'s and the loss counted."""
    plain = cut_left(ids, keep, keep_first)
    if keep >= len(ids) or instruction is None:
        return plain, False
    drop, first = len(ids) - keep, min(keep_first, keep)
    if instruction.start is None:
        return plain, True
    before = instruction.start - first   # template tokens in front of the instruction
    if drop <= before:
        return plain, False
    from_text = drop - max(before, 0)
    if before < 0 or from_text > instruction.text_end - instruction.end:
        return plain, True
    end = instruction.end
    return list(ids[:first]) + list(ids[instruction.start:end]) + list(ids[end + from_text:]), False


def tokenise_rows(tokenizer, rows: list[dict], prefix: str | None = None, max_length: int | None = None,
                  min_completion_tokens: int | None = None, on_unusable: str = "error",
                  stage: str = "log-probs") -> TokenisedRows:
    """Tokenise and truncate preference rows: plain strings ``{"prompt", "chosen", "rejected"}``
    (through the chat template; ``prefix`` is prepended to each user turn, Sr-DPO's ``p + x``, and
    kept by the cut, :func:`cut_prompt`) or token ids ``{"prompt_ids", "chosen_ids", "rejected_ids"}``.

    An unusable pair (:func:`truncate_pair`, :class:`ChatTemplateError`) raises a ``ValueError``
    naming ``stage``, the row and the cause when ``on_unusable == "error"``; with ``"skip"`` it is
    left out and counted by reason (``skipped_for``), and when no row is left and the chat template
    is a reason, that is raised. Skipped rows and lost prefixes are logged as warnings."""
    if on_unusable not in UNUSABLE_PAIR_MODES:
        raise ValueError(f"on_unusable must be one of {UNUSABLE_PAIR_MODES}, got {on_unusable!r}")
    out, first, why = TokenisedRows(), bos_kept(tokenizer), {}
    for i, row in enumerate(rows):
        try:
            prompt, chosen, rejected, span = _row_ids(tokenizer, row, i, prefix, stage)
            pair = truncate_pair(prompt, chosen, rejected, max_length, min_completion_tokens, first, span)
        except UnusablePairError as exc:
            if on_unusable == "error":
                raise type(exc)(f"{stage}: row {i}: {exc} (set on_unusable_pair='skip' to leave such "
                                "pairs out)") from None
            reason = SKIP_REASONS[1] if isinstance(exc, ChatTemplateError) else SKIP_REASONS[0]
            out.skipped.append(i)
            out.skipped_for.setdefault(reason, []).append(i)
            why.setdefault(reason, str(exc))
            continue
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{stage}: row {i}: {exc}") from None
        out.pairs.append(pair)
        out.kept.append(i)
        out.truncated += pair.truncated
        if pair.instruction_lost:
            out.instruction_lost.append(i)
    _report(out, len(rows), why, prefix, max_length, stage)
    return out


def _report(out: TokenisedRows, n_rows: int, why: dict[str, str], prefix: str | None, max_length: int | None,
            stage: str) -> None:
    """Warn of skipped rows by reason and of lost prefixes; raise when the chat template left no row."""
    parts = [f"{len(out.skipped_for[r])} rows for the {r} (rows {_rows(out.skipped_for[r])}; the first: {why[r]})"
             for r in SKIP_REASONS[::-1] if r in out.skipped_for]
    if not out.pairs and SKIP_REASONS[1] in out.skipped_for:
        raise ChatTemplateError(f"{stage}: no usable pair among {n_rows} rows: skipped " + "; ".join(parts))
    for part in parts:
        log.warning("%s: skipped %s", stage, part)
    if out.instruction_lost:
        log.warning("%s: the prompt prefix %r did not fit within max_length %s in %d of %d pairs (rows %s): those "
                    "prompts were cut from the left as a plain prompt is", stage, prefix, max_length,
                    len(out.instruction_lost), len(out.pairs), _rows(out.instruction_lost))


def _rows(rows: list[int], shown: int = 8) -> str:
    return ", ".join(map(str, rows[:shown])) + (f", ... ({len(rows) - shown} more)" if len(rows) > shown else "")


def _row_ids(tokenizer, row: Mapping, i: int, prefix: str | None,
             stage: str) -> tuple[list[int], list[int], list[int], InstructionSpan | None]:
    if not isinstance(row, Mapping):
        raise ValueError(f"{stage}: row {i} must be a dict, got {type(row).__name__}")
    if "prompt_ids" in row:
        for key in ("prompt_ids", "chosen_ids", "rejected_ids"):
            ids = row.get(key)
            if not isinstance(ids, (list, tuple)) or not all(isinstance(t, int) and t >= 0 for t in ids):
                raise ValueError(f"{stage}: row {i}: field {key!r} must be a list of token ids (ints >= 0)")
        if prefix:
            raise ValueError(f"{stage}: row {i}: a prompt prefix needs text rows, not token ids")
        return list(row["prompt_ids"]), list(row["chosen_ids"]), list(row["rejected_ids"]), None
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(row.get(key), str):
            raise ValueError(f"{stage}: row {i}: field {key!r} must be a string (or give prompt_ids/chosen_ids/rejected_ids)")
    if tokenizer is None:
        raise ValueError(f"{stage}: row {i} is text but no tokenizer was given")
    prompt = f"{prefix} {row['prompt']}" if prefix else row["prompt"]
    head, (chosen, rejected) = encode_completions(tokenizer, prompt, [row["chosen"], row["rejected"]])
    return head, chosen, rejected, instruction_span(tokenizer, prefix, row["prompt"]) if prefix else None


def token_batches(lengths: list[int], max_items: int, token_budget: int | None = None) -> list[range]:
    """Consecutive batches of items of ``lengths`` tokens: a batch closes at ``max_items`` items, or
    before an item that would make its padded size (items x its longest) pass ``token_budget``. An
    item longer than the budget on its own gets a batch of its own."""
    batches, start, longest = [], 0, 0
    for i, n in enumerate(lengths):
        grown = max(longest, n)
        if i > start and (i - start == max_items or (token_budget and (i - start + 1) * grown > token_budget)):
            batches.append(range(start, i))
            start, grown = i, n
        longest = grown
    if start < len(lengths):
        batches.append(range(start, len(lengths)))
    return batches


def collate(pairs: list[TokenisedPair], pad_token_id: int, rows: tuple[int, ...] = ()) -> PairBatch:
    """Chosen sequences over rejected ones, right-padded, the prompt masked out of the labels."""
    seqs = [(p.prompt_ids + c, [-100] * len(p.prompt_ids) + c)
            for side in ("chosen_ids", "rejected_ids") for p in pairs for c in [getattr(p, side)]]
    width = max(len(ids) for ids, _ in seqs)
    input_ids = torch.tensor([ids + [pad_token_id] * (width - len(ids)) for ids, _ in seqs])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in seqs])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in seqs])
    return PairBatch(input_ids, mask, labels, rows or tuple(range(len(pairs))), sum(p.truncated for p in pairs),
                     sum(p.instruction_lost for p in pairs))


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
        raise ValueError(f"no usable pair among {len(rows)}: " + "; ".join(
            f"rows {_rows(skipped)} skipped for the {reason}" for reason, skipped in done.skipped_for.items()))
    return collate(done.pairs, pad_token_id_or(tokenizer), tuple(done.kept))


