"""A real preference dataset as a setting: rows by hub id or local path in UltraFeedback-binarized's
layout (read and checked by :mod:`prefalign_lite.engine.data`), judged by a reward model (any
``AutoModelForSequenceClassification`` by id or path), with the papers' own quality instruction
and LLM-as-judge question."""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from ..engine.data import load_preferences
from ..engine.models import default_device
from ..engine.reward_model import RewardModel
from .base import PairLogps, Pool, Setting

log = logging.getLogger(__name__)

# Sr-DPO's prompt p, quoted from the paper (Yu et al., Sec. 3.3) for real models.
PAPER_QUALITY_PROMPT = ("Please generate a response with a usefulness rating of 100 out of 100 for the following query. "
                        "Note that the response should be harmless. The term 100 indicates the level of usefulness, "
                        "where 100 is the maximum and 1 is the minimum. Query:")
AB_QUESTION = ("Which of the two responses answers the question better?\n\nQuestion: {prompt}\n\n"
               "(A) {first}\n\n(B) {second}\n\nAnswer with (A) or (B).")


@dataclass
class DatasetSetting(Setting):
    """A real preference dataset (hub id or local path) judged by a reward model."""

    source: str = ""
    judge_model: str = ""
    split: str = "train"
    name: str = ""
    quality_prompt: str = PAPER_QUALITY_PROMPT
    max_length: int = 1024
    max_new_tokens: int = 300
    model: str = ""

    def __post_init__(self):
        if not self.source or not self.judge_model:
            raise ValueError("DatasetSetting needs a dataset (source) and a reward model (judge_model)")
        rows, report = load_preferences(self.source, split=self.split, on_error="skip", conversational=False)
        log.info("dataset %s: %s", self.source, report)
        first = {}
        for r in rows:  # one pair per prompt (the first), as UltraFeedback-binarized has
            first.setdefault(r["prompt"], r)
        self.rows = list(first.values())
        self.name = self.name or f"dataset {self.source}"
        self.judge = RewardModel(self.judge_model, device=str(default_device()), batch_size=32)

    def default_model(self) -> str:
        if not self.model:
            raise ValueError(f"{self.name}: a real dataset needs a model (the SFT model by hub id or path)")
        return self.model

    def pool(self, n_eval: int, n_train: int, seed: int) -> Pool:
        order = list(range(len(self.rows)))
        random.Random(seed).shuffle(order)
        if n_eval + n_train > len(order):
            raise ValueError(f"{self.name}: asked for {n_eval} evaluation + {n_train} training prompts, "
                             f"but it has {len(order)} distinct prompts")
        picked = [self.rows[i] for i in order]
        train = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in picked[n_eval:n_eval + n_train]]
        return Pool([r["prompt"] for r in picked[:n_eval]], train)

    def llm_first_wins(self, logps: PairLogps, rows: list[dict]) -> list[bool]:
        """The paper's pairwise question answered with "(A)" or "(B)", asked in both orders so that
        a preference for a position cancels."""
        return (_ab_margin(logps, rows, False) - _ab_margin(logps, rows, True) > 0).tolist()


def _ab_margin(logps: PairLogps, rows: list[dict], swapped: bool):
    """``log p("(A)") - log p("(B)")`` for the pairwise question, answers in the given order."""
    asked = [{"prompt": AB_QUESTION.format(prompt=r["prompt"], first=r["rejected" if swapped else "chosen"],
                                           second=r["chosen" if swapped else "rejected"]),
              "chosen": "(A)", "rejected": "(B)"} for r in rows]
    a, b = logps(asked)
    return a - b
