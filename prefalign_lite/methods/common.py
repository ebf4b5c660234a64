"""What every method needs: one (4-bit) base with iterates as LoRA adapters, sampling, log-probs
under any iterate, training an iterate, and evaluation against the SFT model with the gold judge."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import evaluate, generate, logps, models, tiny, trainer, world

log = logging.getLogger(__name__)


@dataclass
class SessionConfig:
    seed: int = 0
    four_bit: bool = True
    lora: models.LoraSettings = field(default_factory=models.LoraSettings)
    n_eval: int = 500
    eval_temperature: float = 0.7
    sample_temperature: float = 0.7
    batch_size: int = 32
    sample_batch_size: int = 256     # generation is ~3x faster at 256 than at 64 on 2 CPU cores
    learning_rate: float = 1e-3
    max_length: int = 64


class Session:
    """One run's models: ``pi_init`` is the base with adapters disabled (``t = None``), iterate
    ``t`` the adapter ``iter{t}``."""

    def __init__(self, sft_path: Path | str | None = None, config: SessionConfig = SessionConfig()):
        self.config = config
        self.sft_path = Path(sft_path) if sft_path else tiny.sft_model_path()
        _, self.tokenizer = tiny.load(self.sft_path)
        self.iterates = models.IterateAdapters(models.load_base(self.sft_path, four_bit=config.four_bit), config.lora)
        self.eval_tasks = world.make_tasks(config.n_eval, seed=10_000 + config.seed)
        self.times: dict[str, float] = {}
        self.eval_gold: dict = {}  # iterate -> gold rewards of its evaluation samples (for head-to-head)
        self.sft_responses = self.sample(None, [t.prompt for t in self.eval_tasks], temperature=config.eval_temperature,
                                         seed=config.seed + 1)
        self.sft_gold = evaluate.gold_rewards(self.eval_tasks, [r[0] for r in self.sft_responses])

    def model_for(self, t: int | None):
        return self.iterates.use(t) if self.iterates.model is not None else _no_grad(self.iterates.base)

    def sample(self, t: int | None, prompts: list[str], n_samples: int = 1, temperature: float | None = None,
               seed: int = 0) -> list[list[str]]:
        with self.model_for(t) as m:
            out, _ = generate.sample(m, self.tokenizer, prompts, n_samples=n_samples,
                                     temperature=self.config.sample_temperature if temperature is None else temperature,
                                     seed=seed, batch_size=self.config.sample_batch_size, progress=False)
        return out

    def logps(self, t: int | None, rows: list[dict], prefix: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logp_chosen, logp_rejected)`` of plain-string rows under iterate ``t``."""
        chosen, rejected = [], []
        with self.model_for(t) as m:
            for lo in range(0, len(rows), 64):
                part = rows[lo:lo + 64]
                batch = logps.pair_batch(self.tokenizer, [r["prompt"] for r in part], [r["chosen"] for r in part],
                                         [r["rejected"] for r in part], prefix=prefix, max_length=self.config.max_length)
                w, l_ = logps.split_pairs(logps.forward_logps(m, batch)[0])
                chosen.append(w), rejected.append(l_)
        return torch.cat(chosen), torch.cat(rejected)

    def train(self, t: int, rows: list[dict], objective: trainer.Objective, ref: int | None,
              init_from: int | None, epochs: int = 1) -> trainer.History:
        """Create iterate ``t`` (from ``init_from`` or fresh) and train it against iterate ``ref``."""
        start = time.perf_counter()
        torch.manual_seed(self.config.seed * 1_000 + t)  # LoRA's initialisation: the same whatever ran before
        self.iterates.create(t, init_from=init_from)
        cfg = trainer.TrainConfig(learning_rate=self.config.learning_rate, epochs=epochs, batch_size=self.config.batch_size,
                                  max_length=self.config.max_length, seed=self.config.seed + t, progress=False)
        history = trainer.PreferenceTrainer(self.iterates.model, self.tokenizer, objective,
                                            lambda: self.iterates.use(ref), cfg).train(rows)
        self.iterates.activate(t)
        self.times[f"train_iter{t}"] = time.perf_counter() - start
        return history

    def evaluate(self, t: int | None) -> dict:
        """Gold win rate of iterate ``t`` against the SFT model on the held-out prompts."""
        responses = [r[0] for r in self.sample(t, [x.prompt for x in self.eval_tasks],
                                               temperature=self.config.eval_temperature, seed=self.config.seed + 1)]
        gold = self.eval_gold[t] = evaluate.gold_rewards(self.eval_tasks, responses)
        win = evaluate.wins(gold, self.sft_gold)
        lengths = [len(r.split()) for r in responses]
        return {"win_rate": float(win.mean()), "gold": float(gold.mean()), "length": float(np.mean(lengths)),
                "lc_win_rate": evaluate.length_controlled_win_rate(win, lengths, [len(r[0].split()) for r in self.sft_responses])}

    def head_to_head(self, a, b) -> dict:
        """Win / tie / lose shares of evaluated iterate ``a`` against evaluated iterate ``b``
        (same prompts, gold judge)."""
        ga, gb = self.eval_gold[a], self.eval_gold[b]
        return {"win": float(np.mean(ga > gb)), "tie": float(np.mean(ga == gb)), "lose": float(np.mean(ga < gb))}


def gold_labelled(tasks: list[world.Task], samples: list[list[str]]) -> list[dict]:
    """Pairs of two samples per task, labelled by the gold reward; ties and identical pairs dropped."""
    rows = []
    for task, (a, b) in zip(tasks, samples):
        ga, gb = world.gold_reward(task, a), world.gold_reward(task, b)
        if ga != gb:
            rows.append({"prompt": task.prompt, "chosen": a if ga > gb else b, "rejected": b if ga > gb else a})
    return rows


def rater_labelled(tasks: list[world.Task], samples: list[list[str]], rater: world.Annotator, seed: int = 0) -> list[dict]:
    """An offline set from two samples per task labelled by a simulated ``rater`` (noise, length
    bias), identical pairs dropped; ``label_correct`` records whether the label agrees with gold."""
    keep = [(t, s) for t, s in zip(tasks, samples) if s[0] != s[1]]
    rows = world.preference_rows([t for t, _ in keep], rater, seed=seed, responses=[tuple(s) for _, s in keep])
    return [{"prompt": r["prompt"], "chosen": r["chosen"][1]["content"], "rejected": r["rejected"][1]["content"],
             "label_correct": r["gold_chosen"] >= r["gold_rejected"]} for r in rows]


class _no_grad:
    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self._ctx = torch.no_grad()
        self._ctx.__enter__()
        return self.model

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
