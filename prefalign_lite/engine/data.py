"""Preference data: load by hub id or local path, validate every row, normalise to TRL's
prompt/chosen/rejected format, and split prompts the way SPA does.

Accepted rows (field names as TRL and UltraFeedback-binarized use them):
- plain:           ``{"prompt": str, "chosen": str, "rejected": str}``
- conversational:  ``{"prompt": [user message], "chosen": [assistant message], "rejected": [...]}``
- UltraFeedback:   ``{"prompt": str, "chosen": [user, assistant], "rejected": [user, assistant], ...}``
  (the prompt repeated as the first turn of each side; extra columns are kept).
Messages are ``{"role": ..., "content": str}`` (content may also be a list of text parts). The kit
trains on single-turn prompts, so system messages and multi-turn conversations are refused.

Sources (read by ``prefalign_lite.data_sources``): a JSONL file, a ``.json`` file of JSON lines or
one JSON array, a ``.parquet`` file, a folder saved with ``save_to_disk`` or holding data files as a
hub dataset does, or a hub dataset id.
"""
from __future__ import annotations

import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .data_sources import DataSourceError, PreferenceDataError, describe_value, iter_rows, read_rows, shorten, split_names

__all__ = ["DataSourceError", "LoadReport", "PreferenceDataError", "SKIP_KINDS", "SPA_PROPORTIONS", "load_preferences",
           "normalise_row", "read_rows", "skip_kind", "spa_split", "split_names"]

log = logging.getLogger(__name__)

SPA_PROPORTIONS = (2, 8, 20, 30)  # gold seed : X_1 : X_2 : X_3 (SPA: 2K, 8K, 20K, 30K of 60K)
_ROLES = ("system", "user", "assistant")
# the kinds of skipped row a report counts apart; every reason not named in _KIND_OF_REASON is a malformed row
SKIP_KINDS = ("identical pair", "empty prompt or answer", "duplicate row", "prompt over the word limit", "malformed row")
_KIND_OF_REASON = {"identical to chosen": "identical pair", "empty completion": "empty prompt or answer",
                   "missing or empty": "empty prompt or answer", "duplicate of an earlier row": "duplicate row",
                   "over the word limit": "prompt over the word limit"}


def skip_kind(err: PreferenceDataError) -> str:
    """Which of :data:`SKIP_KINDS` a skipped row is."""
    return _KIND_OF_REASON.get(err.reason, "malformed row")


@dataclass
class LoadReport:
    """What ``load_preferences`` read, kept and skipped (counted per reason, with the first row
    of each reason, and per kind of :data:`SKIP_KINDS`), plus notes on rows that were kept but look odd."""

    source: str = ""
    rows_read: int = 0
    rows_kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    first_skipped: dict = field(default_factory=dict)
    notes: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)

    def skip(self, err: PreferenceDataError) -> None:
        key = f"{err.field}: {err.reason}"
        self.skipped[key] += 1
        self.first_skipped.setdefault(key, err.row)
        self.kinds[skip_kind(err)] += 1

    def __str__(self) -> str:
        reasons = "; ".join(f"{n} {why} (first: row {self.first_skipped[why]})"
                            for why, n in self.skipped.most_common()) or "none"
        text = f"read {self.rows_read} rows, kept {self.rows_kept}, skipped {self.rows_read - self.rows_kept} ({reasons})"
        if self.notes:
            text += "; notes: " + "; ".join(f"{n} {what}" for what, n in self.notes.most_common())
        return text


def normalise_row(row: dict, index: int, max_prompt_words: int | None = None,
                  conversational: bool = True) -> dict:
    """One row in TRL's format (see the module doc), or ``PreferenceDataError`` naming the field."""
    if not isinstance(row, dict):
        raise PreferenceDataError(index, "<row>", f"expected an object with prompt/chosen/rejected, got {describe_value(row)}",
                                  "not an object")
    for name in ("chosen", "rejected"):
        if name not in row or row[name] is None:
            raise PreferenceDataError(index, name, "missing")
    chosen_user, chosen = _side(row["chosen"], index, "chosen")
    rejected_user, rejected = _side(row["rejected"], index, "rejected")
    if row.get("prompt") is not None:
        prompt = _prompt_text(row["prompt"], index)
    elif chosen_user is not None or rejected_user is not None:
        prompt = chosen_user if chosen_user is not None else rejected_user
    else:
        raise PreferenceDataError(index, "prompt", "missing (no prompt field and no user turn)")
    if not prompt.strip():
        raise PreferenceDataError(index, "prompt", "missing or empty")
    for name, user in (("chosen", chosen_user), ("rejected", rejected_user)):
        if user is not None and user.strip() != prompt.strip():
            raise PreferenceDataError(index, name, f"its user turn {shorten(user)!r} differs from the prompt {shorten(prompt)!r}",
                                      "user turn differs from the prompt")
    if chosen.strip() == rejected.strip():
        raise PreferenceDataError(index, "rejected", "identical to chosen")
    if max_prompt_words is not None and len(prompt.split()) > max_prompt_words:
        raise PreferenceDataError(index, "prompt", f"{len(prompt.split())} words, over the limit of {max_prompt_words}",
                                  "over the word limit")
    for name in ("score_chosen", "score_rejected"):
        value = row.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise PreferenceDataError(index, name, f"expected a number, got {describe_value(value)}", "not a number")
        if value is not None and not math.isfinite(value):
            raise PreferenceDataError(index, name, f"not finite ({value!r})", "not a finite number")
    extra = {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected", "messages")}
    if conversational:
        return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}], **extra}
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **extra}


def load_preferences(source: str | Path, split: str = "train", on_error: str = "raise",
                     max_prompt_words: int | None = None, conversational: bool = True) -> tuple[list[dict], LoadReport]:
    """Read, validate and normalise preference data. ``on_error="raise"`` stops at the first bad
    row with a ``PreferenceDataError`` naming row, field and (for files) file and line; ``"skip"``
    drops bad rows, including lines that are not valid UTF-8 or JSON (each JSONL line stands
    alone), and counts them by reason in the returned report (and the log). Exact duplicates of
    an earlier (prompt, chosen, rejected) are bad rows too. A source with no rows, or with no
    usable row left, is a ``DataSourceError``; a JSON array or Parquet file that cannot be decoded
    fails as a whole in either mode."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if max_prompt_words is not None and (isinstance(max_prompt_words, bool) or not isinstance(max_prompt_words, int)
                                         or max_prompt_words < 1):
        raise ValueError(f"max_prompt_words must be an integer >= 1 or None, got {max_prompt_words!r}")
    report, kept, seen = LoadReport(source=str(source)), [], {}
    for i, where, item in iter_rows(source, split):
        report.rows_read += 1
        try:
            if isinstance(item, PreferenceDataError):
                raise item
            row = normalise_row(item, i, max_prompt_words, conversational=False)
            key = (row["prompt"].strip(), row["chosen"].strip(), row["rejected"].strip())
            if key in seen:
                raise PreferenceDataError(i, "<row>", f"duplicate of row {seen[key]} (same prompt, chosen and rejected)",
                                          "duplicate of an earlier row")
        except PreferenceDataError as err:
            err.at(where)
            if on_error == "raise":
                raise
            report.skip(err)
            continue
        seen[key] = i
        if (key[0], key[2], key[1]) in seen:
            report.notes["pairs also labelled the other way round"] += 1
        if isinstance(row.get("score_chosen"), (int, float)) and isinstance(row.get("score_rejected"), (int, float)) \
                and row["score_chosen"] < row["score_rejected"]:
            report.notes["rows whose chosen scored below rejected"] += 1
        kept.append(_conversational(row) if conversational else row)
    report.rows_kept = len(kept)
    if not kept:
        raise DataSourceError(f"{source}: no usable rows ({report})")
    if report.rows_kept < report.rows_read:
        log.warning("preference data %s: %s", source, report)
    return kept, report


def spa_split(prompts: list[str], total: int | None = None, proportions=SPA_PROPORTIONS,
              seed: int = 0) -> dict[str, list[str]]:
    """SPA's data split: disjoint prompt sets ``seed`` (the gold-labelled part), ``iter1``,
    ``iter2``, ... in the given proportions (the paper's 2 : 8 : 20 : 30 by default), from
    ``total`` distinct prompts (default: all). Duplicated prompts are counted once so no prompt
    lands in two sets. A part that would be empty is a ``ValueError`` saying how many prompts a
    split with every part (the gold seed included) non-empty needs at these proportions."""
    shares = list(proportions) if isinstance(proportions, (list, tuple)) else None
    if not shares or len(shares) < 2:
        raise ValueError(f"proportions must list at least two shares (seed and one iteration), got {proportions!r}")
    for i, share in enumerate(shares):
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) or share <= 0:
            raise ValueError(f"proportions[{i}] must be a finite number > 0, got {share!r}")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompts[{i}] must be a non-empty string, got {p!r}")
    unique = list(dict.fromkeys(prompts))
    if total is None:
        total = len(unique)
    elif isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"total must be an integer >= 1, got {total!r}")
    if total > len(unique):
        raise ValueError(f"asked for {total} prompts but only {len(unique)} distinct prompts are given")
    names = ["seed"] + [f"iter{t}" for t in range(1, len(shares))]
    sizes = _part_sizes(total, shares)
    if 0 in sizes:
        need = next((n for n in range(1, 4 * len(shares) * math.ceil(sum(shares) / min(shares)))
                     if 0 not in _part_sizes(n, shares)), None)
        empty = names[sizes.index(0)]
        raise ValueError(f"{total} distinct prompts split {':'.join(f'{s:g}' for s in shares)} leave part "
                         f"'{empty}' empty; a non-empty seed and iterations need at least {need} distinct "
                         "prompts at these proportions")
    random.Random(seed).shuffle(unique)
    parts, lo = {}, 0
    for name, size in zip(names, sizes):
        parts[name], lo = unique[lo:lo + size], lo + size
    return parts


def _part_sizes(total: int, shares: list) -> list[int]:
    cuts, acc = [0], 0.0
    for share in shares:
        acc += share
        cuts.append(round(total * acc / sum(shares)))
    return [b - a for a, b in zip(cuts, cuts[1:])]


def _conversational(row: dict) -> dict:
    return {**row, "prompt": [{"role": "user", "content": row["prompt"]}],
            "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}]}


# ---- rows and messages -------------------------------------------------------------------------

def _message_text(message, index: int, name: str, pos: int) -> tuple[str, str]:
    """``(role, content)`` of one message, or an error naming the message."""
    if not isinstance(message, dict):
        raise PreferenceDataError(index, name, f"message {pos} is {describe_value(message)}, not an object with 'role' and 'content'",
                                  "message is not an object")
    for key in ("role", "content"):
        if key not in message:
            raise PreferenceDataError(index, name, f"message {pos} has no '{key}'", f"message without '{key}'")
    role, content = message["role"], message["content"]
    if role not in _ROLES:
        raise PreferenceDataError(index, name, f"message {pos} has role {role!r} (expected one of {', '.join(_ROLES)})",
                                  "unknown message role")
    if isinstance(content, list):  # a list of content parts: text only
        for j, part in enumerate(content):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise PreferenceDataError(index, name, f"message {pos}, content part {j} is not a text part "
                                          f"({describe_value(part)}); only text is supported", "content part is not text")
        content = "\n".join(part["text"] for part in content)
    if not isinstance(content, str):
        raise PreferenceDataError(index, name, f"message {pos} has content {describe_value(content)}, expected text",
                                  "message content is not text")
    return role, content


def _messages(side, index: int, name: str) -> list[tuple[str, str]]:
    if not side:
        raise PreferenceDataError(index, name, "an empty list of messages", "empty list of messages")
    messages = [_message_text(m, index, name, pos) for pos, m in enumerate(side)]
    if any(role == "system" for role, _ in messages):
        raise PreferenceDataError(index, name, "holds a system message; the kit trains single-turn prompts without one",
                                  "system message")
    return messages


def _side(side, index: int, name: str) -> tuple[str | None, str]:
    """``(user turn or None, completion)`` of a chosen/rejected field."""
    if isinstance(side, str):
        user, text = None, side
    elif isinstance(side, list):
        messages = _messages(side, index, name)
        if messages[-1][0] != "assistant":
            raise PreferenceDataError(index, name, "last message is not the assistant's")
        if len(messages) > 2 or (len(messages) == 2 and messages[0][0] != "user"):
            raise PreferenceDataError(index, name, f"a conversation of {len(messages)} messages "
                                      f"({', '.join(r for r, _ in messages)}); expected [user, assistant] or [assistant]",
                                      "multi-turn conversation")
        user, text = (messages[0][1] if len(messages) == 2 else None), messages[-1][1]
    else:
        raise PreferenceDataError(index, name, f"expected a string or a list of messages, got {describe_value(side)}",
                                  "expected a string or a list of messages")
    if not text.strip():
        raise PreferenceDataError(index, name, "empty completion")
    return user, text


def _prompt_text(prompt, index: int) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        messages = _messages(prompt, index, "prompt")
        if [role for role, _ in messages] != ["user"]:
            raise PreferenceDataError(index, "prompt", f"messages ({', '.join(r for r, _ in messages)}); expected "
                                      "exactly one user message", "not a single user message")
        return messages[0][1]
    raise PreferenceDataError(index, "prompt", f"expected a string or a list of messages, got {describe_value(prompt)}",
                              "expected a string or a list of messages")
