"""A preference pair: a prompt, the answer labelled better (``chosen``) and the other (``rejected``).

:class:`Pair` is immutable and reads like the plain row the trainer takes (``pair["chosen"]``,
``dict(pair)``), so every layer that reads rows reads pairs too.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

FIELDS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class Pair(Mapping):
    prompt: str
    chosen: str
    rejected: str

    @classmethod
    def of(cls, row: Mapping) -> "Pair":
        """The pair of a row with at least ``prompt``, ``chosen`` and ``rejected`` (other keys dropped)."""
        return cls(row["prompt"], row["chosen"], row["rejected"])

    def swapped(self) -> "Pair":
        """The same answers with the labels the other way round."""
        return Pair(self.prompt, self.rejected, self.chosen)

    def identical(self) -> bool:
        """Both answers are the same text (such a pair has exactly zero DPO gradient)."""
        return self.chosen == self.rejected

    def __getitem__(self, key: str) -> str:
        if key not in FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(FIELDS)

    def __len__(self) -> int:
        return len(FIELDS)


def ordered(pairs: list[Pair], first_wins: list[bool]) -> list[Pair]:
    """Each pair with the judge's winner as ``chosen``: kept where ``first_wins``, swapped elsewhere."""
    if len(pairs) != len(first_wins):
        raise ValueError(f"{len(first_wins)} verdicts for {len(pairs)} pairs")
    return [p if win else p.swapped() for p, win in zip(pairs, first_wins)]


def label_quality(gold_gaps) -> dict:
    """How often a set of labels agrees with the gold judge, from each pair's gold gap (chosen minus
    rejected): the accuracy over the pairs gold decides (**ties excluded**, NaN when it decides
    none) and the share of gold ties (a tie says nothing about the judge that labelled the pair)."""
    gaps = np.asarray(gold_gaps, dtype=float)
    if gaps.size == 0:
        raise ValueError("label quality of zero pairs")
    decided = gaps != 0
    accuracy = float(np.mean(gaps[decided] > 0)) if decided.any() else float("nan")
    return {"label_accuracy": accuracy, "tie_share": float(1 - decided.mean())}
