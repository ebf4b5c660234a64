"""What every setting provides: the world a method runs in, seen through one interface.

A *setting* says where prompts and labelled pairs come from (:class:`Pool`, :meth:`Setting.labelled`),
who judges answers (``judge.score(prompts, responses)``, the gold judge), and everything else that
belongs to a world rather than to a method: the SFT model it starts from, Sr-DPO's quality
instruction, how an LLM is asked to judge, the token budget of a pair and of an answer.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch

from ..core.pairs import Pair

# ``logps(rows) -> (logp_chosen, logp_rejected)`` of plain rows under the judging model
PairLogps = Callable[[list[dict]], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Pool:
    """One seed's prompts: ``eval_prompts`` held out, ``train`` in a fixed order (rows with
    ``prompt`` and, where the setting has them, the dataset's ``chosen``/``rejected``)."""

    eval_prompts: list[str]
    train: list[dict]


class Setting:
    """The interface (see the module doc); :mod:`.embedded` and :mod:`.dataset` implement it."""

    name: str
    judge: object                  # the gold judge: .name and .score(prompts, responses) -> array
    quality_prompt: str            # Sr-DPO's p, prepended to the user turn
    max_length: int                # tokens of prompt + completion in training and log-probs
    max_new_tokens: int            # tokens of a sampled answer
    max_prompt_tokens: int | None  # sampling cuts longer prompts from the left (None: never)
    sample_top_k: int              # the sampler's top-k (0: none, a draw from the model; generate.DEFAULT_TOP_K)
    low_precision_on_gpu: bool = True   # on a GPU: a 4-bit NF4 base and half-precision autocast (QLoRA), where
                                        # the setting's model is a real one; False keeps it in float32 on any device

    def default_model(self) -> str:
        """The SFT model a run starts from when the notebook names none."""
        raise NotImplementedError

    def pool(self, n_eval: int, n_train: int, seed: int) -> Pool:
        raise NotImplementedError

    def llm_first_wins(self, logps: PairLogps, rows: list[dict], tokenizer=None, max_length: int | None = None) -> list[bool]:
        """LLM-as-judge: ask the judging model (through ``logps``) which answer of each row is
        better, in this world's way of asking; ``True`` where ``chosen`` (the first answer) wins.
        A tie goes to the second answer, as SPA's Eq. 8 does. ``tokenizer`` and ``max_length``
        let a setting fit its question to the judge's token budget."""
        raise NotImplementedError

    def run_record(self) -> dict:
        """What a run's metrics record of the setting itself (the embedded world: nothing; a dataset:
        what became of each of its rows, ``{"rows": ...}``)."""
        return {}

    def labelled(self, rows: list[dict], seed: int, flip_rate: float = 0.0) -> list[Pair]:
        """The dataset's own chosen/rejected for these pool rows as :class:`Pair` s (a ``flip_rate``
        share swapped at random, one draw per kept row of the "labels" stream); identical pairs dropped."""
        rng = random.Random(seed)
        out = []
        for r in rows:
            pair = Pair.of(r)
            if pair.identical():
                continue
            out.append(pair.swapped() if rng.random() < flip_rate else pair)
        return out
