"""The kit's own world as a setting: its tasks, its UltraFeedback (answers of four "other models",
labelled by a simulated rater), its programmatic gold reward, its tiny SFT model, its quality
instruction (``best <prompt>``) and its judging skill (``check <prompt>`` + answer -> good/bad)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import world
from ..world import tiny
from .base import PairLogps, Pool, Setting


class GoldJudge:
    """The embedded world's gold reward, read from the prompt's text."""

    name = "gold reward of the embedded world"

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            raise ValueError("gold judge on zero prompts: nothing to evaluate")
        return np.array([world.gold_reward(world.task_of(p), r) for p, r in zip(prompts, responses)])


@dataclass
class EmbeddedSetting(Setting):
    """The kit's world. Its dataset is :func:`world.ultrafeedback_rows`, labelled by ``rater``."""

    rater: world.Annotator = field(default_factory=lambda: world.Annotator(temperature=0.5, length_bias=0.2))
    name: str = "embedded world"
    quality_prompt: str = world.QUALITY_WORD
    max_length: int = 64
    max_new_tokens: int = 16
    max_prompt_tokens: int | None = None
    sample_top_k: int = 50   # transformers' default top-k (of 65 ids), what the committed numbers were drawn with
    low_precision_on_gpu: bool = False   # the 0.38M model runs in float32 on any device, as the committed run did on
                                         # CPUs: NF4 halves its skill, and a T4 has no bf16

    def __post_init__(self):
        self.judge = GoldJudge()

    def default_model(self) -> str:
        return str(tiny.sft_model_path())

    def pool(self, n_eval: int, n_train: int, seed: int) -> Pool:
        held_out = world.distinct_tasks(n_eval, seed=10_000 + seed, held_out=True)
        tasks = world.distinct_tasks(n_train, seed=20_000 + seed)
        rows = {r["prompt"]: r for r in world.ultrafeedback_rows(tasks, self.rater, seed=30_000 + seed)}
        train = [{"prompt": t.prompt, **_sides(rows.get(t.prompt))} for t in tasks]
        return Pool([t.prompt for t in held_out], train)

    def llm_first_wins(self, logps: PairLogps, rows: list[dict], tokenizer=None, max_length: int | None = None) -> list[bool]:
        """The judging skill the SFT data taught: each answer is checked on its own
        (``check <prompt>`` followed by the answer) and the one with the larger log-odds of ``good``
        over ``bad`` wins."""
        return (self._check_score(logps, rows, "chosen") > self._check_score(logps, rows, "rejected")).tolist()

    @staticmethod
    def _check_score(logps: PairLogps, rows: list[dict], side: str):
        """``log p(answer good) - log p(answer bad)`` after ``check <prompt>``."""
        asked = [{"prompt": world.check_prompt(r["prompt"]), "chosen": world.check_completion(r[side], True),
                  "rejected": world.check_completion(r[side], False)} for r in rows]
        good, bad = logps(asked)
        return good - bad


def _sides(row: dict | None) -> dict:
    if row is None:  # the four generators wrote the same answer: a prompt without a pair
        return {"chosen": None, "rejected": None}
    return {"chosen": row["chosen"][1]["content"], "rejected": row["rejected"][1]["content"]}
