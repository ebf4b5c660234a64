"""Preference data: load by hub id or local path, validate every row, normalise to TRL's
prompt/chosen/rejected format, and split prompts the way SPA does.

Accepted rows (field names as TRL and UltraFeedback-binarized use them):
- plain:           ``{"prompt": str, "chosen": str, "rejected": str}``
- conversational:  ``{"prompt": [messages], "chosen": [messages], "rejected": [messages]}``
- UltraFeedback:   ``{"prompt": str, "chosen": [user, assistant], "rejected": [user, assistant], ...}``
  (the prompt repeated as the first turn of each side; extra columns are kept).
"""
from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SPA_PROPORTIONS = (2, 8, 20, 30)  # gold seed : X_1 : X_2 : X_3 (SPA: 2K, 8K, 20K, 30K of 60K)


class PreferenceDataError(ValueError):
    """A row that cannot be used, named by its index and field."""

    def __init__(self, row: int, field_name: str, problem: str):
        super().__init__(f"row {row}, field '{field_name}': {problem}")
        self.row, self.field, self.problem = row, field_name, problem


@dataclass
class LoadReport:
    rows_read: int = 0
    rows_kept: int = 0
    skipped: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common()) or "none"
        return f"read {self.rows_read} rows, kept {self.rows_kept}, skipped {self.rows_read - self.rows_kept} ({reasons})"


def read_rows(source: str | Path, split: str = "train") -> list[dict]:
    """Rows from a JSONL file, a dataset folder saved with ``save_to_disk``, or a hub id."""
    path = Path(source)
    if path.is_file():
        rows = []
        with path.open() as fh:
            for i, line in enumerate(fh):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise PreferenceDataError(i, "<line>", f"not valid JSON ({exc.msg})") from exc
        return rows
    import datasets

    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        return list(loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded)
    return list(datasets.load_dataset(str(source), split=split))


def normalise_row(row: dict, index: int, max_prompt_words: int | None = None,
                  conversational: bool = True) -> dict:
    """One row in TRL's format (see the module doc), or ``PreferenceDataError``."""
    for name in ("chosen", "rejected"):
        if name not in row or row[name] is None:
            raise PreferenceDataError(index, name, "missing")
    prompt = row.get("prompt")
    chosen, rejected = _completion(row["chosen"], index, "chosen"), _completion(row["rejected"], index, "rejected")
    if prompt is None:
        prompt = _prompt_of(row["chosen"], index)
    if isinstance(prompt, list):
        prompt = _prompt_of(prompt + [{"role": "assistant", "content": ""}], index)
    if not isinstance(prompt, str) or not prompt.strip():
        raise PreferenceDataError(index, "prompt", "missing or empty")
    if chosen == rejected:
        raise PreferenceDataError(index, "rejected", "identical to chosen")
    if max_prompt_words is not None and len(prompt.split()) > max_prompt_words:
        raise PreferenceDataError(index, "prompt", f"{len(prompt.split())} words, over the limit of {max_prompt_words}")
    extra = {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected", "messages")}
    if conversational:
        return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}], **extra}
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **extra}


def load_preferences(source: str | Path, split: str = "train", on_error: str = "raise",
                     max_prompt_words: int | None = None, conversational: bool = True) -> tuple[list[dict], LoadReport]:
    """Read, validate and normalise preference data. ``on_error="raise"`` stops at the first bad
    row with a ``PreferenceDataError`` naming row and field; ``"skip"`` drops bad rows and counts
    them by reason in the returned report (and the log)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    report, kept = LoadReport(), []
    for i, row in enumerate(read_rows(source, split)):
        report.rows_read += 1
        try:
            kept.append(normalise_row(row, i, max_prompt_words, conversational))
        except PreferenceDataError as err:
            if on_error == "raise":
                raise
            report.skipped[f"{err.field}: {err.problem.split(' (')[0]}"] += 1
    report.rows_kept = len(kept)
    if report.rows_kept < report.rows_read:
        log.warning("preference data %s: %s", source, report)
    return kept, report


def spa_split(prompts: list[str], total: int | None = None, proportions=SPA_PROPORTIONS,
              seed: int = 0) -> dict[str, list[str]]:
    """SPA's data split: disjoint prompt sets ``seed`` (the gold-labelled part), ``iter1``,
    ``iter2``, ``iter3`` in the paper's 2 : 8 : 20 : 30 proportions, from ``total`` distinct
    prompts (default: all). Duplicated prompts are counted once so no prompt lands in two sets."""
    unique = list(dict.fromkeys(prompts))
    total = len(unique) if total is None else total
    if total > len(unique):
        raise ValueError(f"asked for {total} prompts but only {len(unique)} distinct prompts are given")
    random.Random(seed).shuffle(unique)
    unique = unique[:total]
    names, cuts, acc = ["seed", "iter1", "iter2", "iter3"], [0], 0
    for share in proportions:
        acc += share
        cuts.append(round(total * acc / sum(proportions)))
    return {name: unique[lo:hi] for name, lo, hi in zip(names, cuts, cuts[1:])}


def _completion(side, index: int, name: str) -> str:
    if isinstance(side, str):
        text = side
    elif isinstance(side, list) and side and isinstance(side[-1], dict):
        if side[-1].get("role") != "assistant":
            raise PreferenceDataError(index, name, "last message is not the assistant's")
        text = side[-1].get("content")
    else:
        raise PreferenceDataError(index, name, f"expected a string or a list of messages, got {type(side).__name__}")
    if not isinstance(text, str) or not text.strip():
        raise PreferenceDataError(index, name, "empty completion")
    return text


def _prompt_of(messages, index: int) -> str:
    users = [m.get("content") for m in messages[:-1] if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise PreferenceDataError(index, "prompt", "missing (no prompt field and no user turn)")
    return users[-1]
