"""Named random streams. Every random draw of a run is seeded by :func:`stream_seed` from the run's
seed, a stream name and an index (a round, an epoch, an iterate), so that each number can say which
stream it came from and two streams never share random numbers by accident.

The table holds each stream's formula. The formulas are the ones the committed run was made with,
so a stream's seeds must never change: a new use gets a new name.
"""
from __future__ import annotations

import zlib
from typing import Callable

STREAMS: dict[str, tuple[Callable[[int, int], int], str]] = {
    # name: (seed of draw i from the run's seed, what draws from it)
    "pair samples": (lambda seed, i: seed * 100 + i,
                     "two (or R) answers per prompt of round i, sampled from the round's starting model"),
    "coin": (lambda seed, i: seed * 7_919 + i, "random labels of round i (the control without information)"),
    "selection coin": (lambda seed, i: seed * 7_919 + 100 + i, "SeRA's random-label control: which offline pairs round i keeps"),
    "lora init": (lambda seed, i: seed * 1_000 + i, "the LoRA initialisation of iterate i"),
    "training": (lambda seed, i: seed + i, "iterate i's trainer (its batch order and torch seed)"),
    "batch order": (lambda seed, i: seed * 1000 + i, "a trainer's shuffle of epoch i (seed: the trainer's own)"),
    "evaluation answers": (lambda seed, i: seed * 1_000_003 + i, "an evaluated model's answers (i: crc32 of its label)"),
    "bootstrap": (lambda seed, i: seed + i, "the bootstrap interval of a win rate over prompts"),
    "labels": (lambda seed, i: seed + i, "which dataset labels are flipped (i = 0) and the external rows' (i = 1)"),
    "quality instruction answers": (lambda seed, i: seed + 1 + i, "the SFT model's answers asked with Sr-DPO's instruction"),
    "kl sample": (lambda seed, i: seed + 2 + i, "the temperature-1 sample a KL between iterates is estimated on"),
    "judge pairs": (lambda seed, i: seed + 3 + i, "the SFT model's answer pairs it judges as LLM-as-judge"),
}

# index of the label-sensitivity check's draws in the "pair samples" and "coin" streams (after every round)
LABEL_SENSITIVITY = 50


def stream_seed(name: str, seed: int, index: int = 0) -> int:
    """The seed of draw ``index`` of stream ``name`` in a run seeded ``seed`` (see :data:`STREAMS`)."""
    if name not in STREAMS:
        raise ValueError(f"unknown random stream {name!r}; the streams are {sorted(STREAMS)}")
    return STREAMS[name][0](seed, index)


def label_index(label: str) -> int:
    """The index of an evaluated model's answers in the "evaluation answers" stream: its label's crc32."""
    return zlib.crc32(label.encode())
