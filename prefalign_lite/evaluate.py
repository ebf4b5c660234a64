"""Judges and metrics: the gold judge of the embedded world, a reward-model judge for real data,
win rates with bootstrap confidence intervals, and a length-controlled win rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import world


@dataclass(frozen=True)
class Estimate:
    """A mean with a bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap interval."""
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("values must be a non-empty array of finite numbers")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return Estimate(float(x.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))


def gold_rewards(tasks: list[world.Task], responses: list[str]) -> np.ndarray:
    if len(tasks) != len(responses):
        raise ValueError(f"{len(tasks)} tasks but {len(responses)} responses")
    return np.array([world.gold_reward(t, r) for t, r in zip(tasks, responses)])


def wins(scores_a, scores_b) -> np.ndarray:
    """Per prompt: 1 if A scores higher, 0.5 for a tie, 0 otherwise."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"scores_a has shape {a.shape} but scores_b has {b.shape}")
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def win_rate(scores_a, scores_b, seed: int = 0) -> Estimate:
    """Win rate of A against B (ties count 1/2), with a bootstrap CI over prompts."""
    return bootstrap_ci(wins(scores_a, scores_b), seed=seed)


def length_controlled_win_rate(win, length_a, length_b, l2: float = 1e-3) -> float:
    """AlpacaEval-2-style length control: fit ``P(win) = sigmoid(w0 + w1 * (len_a - len_b))`` by
    logistic regression (ties as 1/2 targets) and read it at zero length difference,
    ``sigmoid(w0)``: the win rate A would have if its answers were as long as B's."""
    y = np.asarray(win, dtype=float)
    d = np.asarray(length_a, dtype=float) - np.asarray(length_b, dtype=float)
    scale = d.std() or 1.0
    x = np.stack([np.ones_like(d), d / scale], axis=1)
    w = np.zeros(2)
    for _ in range(100):  # Newton's method on the (convex) log-loss
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(1 / (1 + np.exp(-w[0])))


def mean_length(responses: list[str]) -> float:
    return float(np.mean([len(r.split()) for r in responses]))


class RewardModelJudge:
    """Scores (prompt, response) pairs with any ``AutoModelForSequenceClassification`` — a public
    reward model by hub id at scale, or a local folder — through the tokenizer's chat template."""

    def __init__(self, path_or_id: str | Path, device: str = "cpu", batch_size: int = 16):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path_or_id))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path_or_id)).to(device).eval()
        self.device, self.batch_size = device, batch_size

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        import torch

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        texts = [self.tokenizer.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False)
            for p, r in zip(prompts, responses)]
        scores = []
        with torch.no_grad():
            for lo in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[lo:lo + self.batch_size], return_tensors="pt", padding=True,
                                     add_special_tokens=False).to(self.device)
                scores.append(self.model(**enc).logits[:, 0].float().cpu().numpy())
        return np.concatenate(scores) if scores else np.zeros(0)
