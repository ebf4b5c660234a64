"""The seam between the methods and their world: a *setting* says where prompts and labelled pairs
come from, a *gold judge* says how good an answer is. The methods never import the world.

Two settings share one interface:

* :class:`EmbeddedSetting` — the kit's own world: its tasks, its UltraFeedback (answers of four
  "other models", labelled by a simulated rater) and its programmatic gold reward;
* :class:`DatasetSetting` — a real preference dataset by hub id or local path in
  UltraFeedback-binarized's layout (read and checked by :mod:`prefalign_lite.data`), judged by a
  reward model (any ``AutoModelForSequenceClassification`` by id or path).

Both give prompts from one pool split the same way: the evaluation prompts are held out, and the
training prompts come in a fixed order from which SPA's 2 : 8 : 20 : 30 split, the offline sets and
the seeds of other sizes are cut, so that no two of them share a prompt.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import world

log = logging.getLogger(__name__)

# Sr-DPO's prompt p, quoted from the paper (Yu et al., Sec. 3.3) for real models.
PAPER_QUALITY_PROMPT = ("Please generate a response with a usefulness rating of 100 out of 100 for the following query. "
                        "Note that the response should be harmless. The term 100 indicates the level of usefulness, "
                        "where 100 is the maximum and 1 is the minimum. Query:")


class WorldJudge:
    """The embedded world's gold reward, read from the prompt's text."""

    name = "gold reward of the embedded world"

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            raise ValueError("gold judge on zero prompts: nothing to evaluate")
        return np.array([world.gold_reward(world.task_of(p), r) for p, r in zip(prompts, responses)])


class RewardModelJudge:
    """A reward model as the gold judge (the papers use GPT-4, which the kit cannot call offline)."""

    def __init__(self, path_or_id: str | Path, batch_size: int = 32):
        from .evaluate import RewardModelJudge as _Judge
        from .models import default_device

        self.name = f"reward model {path_or_id}"
        self._judge = _Judge(path_or_id, device=str(default_device()), batch_size=batch_size)

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        return self._judge.score(prompts, responses)


@dataclass
class Pool:
    """One seed's prompts: ``eval_prompts`` held out, ``train`` in a fixed order (rows with
    ``prompt`` and, where the setting has them, the dataset's ``chosen``/``rejected``)."""

    eval_prompts: list[str]
    train: list[dict]


class Setting:
    """What every setting provides (see the module doc)."""

    name: str
    judge: object
    quality_prompt: str            # Sr-DPO's p, prepended to the user turn
    judge_style: str               # LLM-as-judge: "check" (the world's verdict words) or "ab" ((A)/(B))
    max_new_tokens: int

    def pool(self, n_eval: int, n_train: int, seed: int) -> Pool:
        raise NotImplementedError

    def labelled(self, rows: list[dict], seed: int, flip_rate: float = 0.0) -> list[dict]:
        """The dataset's own chosen/rejected for these pool rows (a ``flip_rate`` share swapped at
        random), as plain rows ``{"prompt", "chosen", "rejected"}``; identical pairs dropped."""
        rng = random.Random(seed)
        out = []
        for r in rows:
            if r["chosen"] == r["rejected"]:
                continue
            swap = rng.random() < flip_rate
            out.append({"prompt": r["prompt"], "chosen": r["rejected"] if swap else r["chosen"],
                        "rejected": r["chosen"] if swap else r["rejected"]})
        return out


@dataclass
class EmbeddedSetting(Setting):
    """The kit's world. Its dataset is :func:`world.ultrafeedback_rows`, labelled by ``rater``."""

    rater: world.Annotator = field(default_factory=lambda: world.Annotator(temperature=0.1, length_bias=0.2))
    name: str = "embedded world"
    quality_prompt: str = world.QUALITY_WORD
    judge_style: str = "check"
    max_new_tokens: int = 16

    def __post_init__(self):
        self.judge = WorldJudge()

    def pool(self, n_eval: int, n_train: int, seed: int) -> Pool:
        held_out = world.distinct_tasks(n_eval, seed=10_000 + seed, held_out=True)
        tasks = world.distinct_tasks(n_train, seed=20_000 + seed)
        rows = {r["prompt"]: r for r in world.ultrafeedback_rows(tasks, self.rater, seed=30_000 + seed)}
        train = [{"prompt": t.prompt, **_sides(rows.get(t.prompt))} for t in tasks]
        return Pool([t.prompt for t in held_out], train)


@dataclass
class DatasetSetting(Setting):
    """A real preference dataset (hub id or local path) judged by a reward model."""

    source: str = ""
    judge_model: str = ""
    split: str = "train"
    name: str = ""
    quality_prompt: str = PAPER_QUALITY_PROMPT
    judge_style: str = "ab"
    max_new_tokens: int = 300

    def __post_init__(self):
        from .data import load_preferences

        if not self.source or not self.judge_model:
            raise ValueError("DatasetSetting needs a dataset (source) and a reward model (judge_model)")
        rows, report = load_preferences(self.source, split=self.split, on_error="skip", conversational=False)
        log.info("dataset %s: %s", self.source, report)
        first = {}
        for r in rows:  # one pair per prompt (the first), as UltraFeedback-binarized has
            first.setdefault(r["prompt"], r)
        self.rows = list(first.values())
        self.name = self.name or f"dataset {self.source}"
        self.judge = RewardModelJudge(self.judge_model)

    def pool(self, n_eval: int, n_train: int, seed: int) -> Pool:
        order = list(range(len(self.rows)))
        random.Random(seed).shuffle(order)
        if n_eval + n_train > len(order):
            raise ValueError(f"{self.name}: asked for {n_eval} evaluation + {n_train} training prompts, "
                             f"but it has {len(order)} distinct prompts")
        picked = [self.rows[i] for i in order]
        train = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in picked[n_eval:n_eval + n_train]]
        return Pool([r["prompt"] for r in picked[:n_eval]], train)


def _sides(row: dict | None) -> dict:
    if row is None:  # the four generators wrote the same answer: a prompt without a pair
        return {"chosen": None, "rejected": None}
    return {"chosen": row["chosen"][1]["content"], "rejected": row["rejected"][1]["content"]}


STANDIN = "standin:"   # "standin:policy", "standin:reward_model", "standin:dataset": the kit's local stand-ins


def resolve(name: str) -> str:
    """A model, judge or dataset name with ``standin:`` replaced by the path of the kit's own local
    stand-in of a real one (``prefalign_lite.standins``: tiny Qwen2 policy and reward model with a
    BPE tokenizer, rows in UltraFeedback's layout), built on first use; other names pass unchanged."""
    if not name or not name.startswith(STANDIN):
        return name
    from . import standins

    part = name[len(STANDIN):]
    built = standins.standins()
    if part not in ("policy", "reward_model", "dataset"):
        raise ValueError(f"unknown stand-in {name!r}: use standin:policy, standin:reward_model or standin:dataset")
    return str(getattr(built, part))


def from_parameters(dataset: str = "", judge: str = "") -> Setting:
    """The setting a notebook's parameters ask for: the embedded world unless ``dataset`` is given."""
    if dataset:
        return DatasetSetting(source=resolve(dataset), judge_model=resolve(judge))
    if judge:
        raise ValueError("a reward-model judge was given without a dataset; the embedded world has its own gold judge")
    return EmbeddedSetting()
