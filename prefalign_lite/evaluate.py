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


def _scores(name: str, values, what: str) -> np.ndarray:
    """``values`` as a 1-D float array of finite numbers, or a ``ValueError`` naming ``name``:
    an evaluation on zero prompts is refused rather than given an invented value."""
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {name} must be numbers, one per prompt ({exc})") from exc
    if x.ndim != 1:
        raise ValueError(f"{what}: {name} must be one number per prompt (1-D), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{what} on zero prompts: nothing to evaluate ({name} is empty)")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"{what}: {name}[{bad[0]}] is {x[bad[0]]} ({bad.size} non-finite value(s)); "
                         "a score must be a finite number")
    return x


def _same_length(what: str, **arrays: np.ndarray) -> None:
    if len({a.size for a in arrays.values()}) > 1:
        sizes = ", ".join(f"{name} has {a.size}" for name, a in arrays.items())
        raise ValueError(f"{what}: one value per prompt is needed but {sizes}")


def bootstrap_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap interval (resampling prompts)."""
    x = _scores("values", values, "bootstrap_ci")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"bootstrap_ci: n_boot must be an integer >= 1, got {n_boot!r}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"bootstrap_ci: level must be a number in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return Estimate(float(x.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))


def gold_rewards(tasks: list[world.Task], responses: list[str]) -> np.ndarray:
    """The embedded world's gold reward of each response to its task."""
    if len(tasks) != len(responses):
        raise ValueError(f"gold_rewards: {len(tasks)} tasks but {len(responses)} responses")
    if not tasks:
        raise ValueError("gold_rewards on zero prompts: nothing to evaluate")
    for i, (task, response) in enumerate(zip(tasks, responses)):
        if not isinstance(task, world.Task):
            raise ValueError(f"gold_rewards: tasks[{i}] must be a world.Task, got {type(task).__name__}")
        if not isinstance(response, str):
            raise ValueError(f"gold_rewards: responses[{i}] must be a string, got {type(response).__name__}")
    return np.array([world.gold_reward(t, r) for t, r in zip(tasks, responses)])


def wins(scores_a, scores_b) -> np.ndarray:
    """Per prompt: 1 if A scores higher, 0.5 for a tie, 0 otherwise."""
    a, b = _scores("scores_a", scores_a, "wins"), _scores("scores_b", scores_b, "wins")
    _same_length("wins", scores_a=a, scores_b=b)
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def win_rate(scores_a, scores_b, seed: int = 0) -> Estimate:
    """Win rate of A against B (ties count 1/2), with a bootstrap CI over prompts."""
    return bootstrap_ci(wins(scores_a, scores_b), seed=seed)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def length_controlled_win_rate(win, length_a, length_b, l2: float = 1e-3) -> float:
    """AlpacaEval-2-style length control: fit ``P(win) = sigmoid(w0 + w1 * (len_a - len_b))`` by
    logistic regression (ties as 1/2 targets) and read it at zero length difference,
    ``sigmoid(w0)``: the win rate A would have if its answers were as long as B's. ``l2 > 0``
    keeps the fit finite when every prompt is won (or lost)."""
    what = "length_controlled_win_rate"
    y = _scores("win", win, what)
    la, lb = _scores("length_a", length_a, what), _scores("length_b", length_b, what)
    _same_length(what, win=y, length_a=la, length_b=lb)
    outside = np.flatnonzero((y < 0) | (y > 1))
    if outside.size:
        raise ValueError(f"{what}: win[{outside[0]}] is {y[outside[0]]}; wins must lie in [0, 1] (1 win, 0.5 tie, 0 loss)")
    negative = np.flatnonzero((la < 0) | (lb < 0))
    if negative.size:
        raise ValueError(f"{what}: a negative length at index {negative[0]}")
    if not (isinstance(l2, (int, float)) and not isinstance(l2, bool) and np.isfinite(l2) and l2 > 0):
        raise ValueError(f"{what}: l2 must be a finite number > 0, got {l2!r}")
    d = la - lb
    scale = d.std() or 1.0
    x = np.stack([np.ones_like(d), d / scale], axis=1)
    w = np.zeros(2)
    for _ in range(100):  # Newton's method on the (convex, l2-regularised) log-loss
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(_sigmoid(np.array(w[0])))


def mean_length(responses: list[str]) -> float:
    """Mean length of the responses in whitespace-separated words."""
    if len(responses) == 0:
        raise ValueError("mean_length on zero prompts: nothing to evaluate")
    for i, r in enumerate(responses):
        if not isinstance(r, str):
            raise ValueError(f"mean_length: responses[{i}] must be a string, got {type(r).__name__}")
    return float(np.mean([len(r.split()) for r in responses]))


class RewardModelJudge:
    """Scores (prompt, response) pairs with any ``AutoModelForSequenceClassification`` — a public
    reward model by hub id at scale, or a local folder — through the tokenizer's chat template."""

    def __init__(self, path_or_id: str | Path, device: str = "cpu", batch_size: int = 16):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"RewardModelJudge: batch_size must be an integer >= 1, got {batch_size!r}")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path_or_id))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path_or_id)).to(device).eval()
        self.device, self.batch_size = device, batch_size

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        import torch

        if len(prompts) != len(responses):
            raise ValueError(f"RewardModelJudge.score: {len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            raise ValueError("RewardModelJudge.score on zero prompts: nothing to evaluate")
        for name, texts in (("prompts", prompts), ("responses", responses)):
            for i, text in enumerate(texts):
                if not isinstance(text, str):
                    raise ValueError(f"RewardModelJudge.score: {name}[{i}] must be a string, got {type(text).__name__}")
        texts = [self.tokenizer.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False)
            for p, r in zip(prompts, responses)]
        scores = []
        with torch.no_grad():
            for lo in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[lo:lo + self.batch_size], return_tensors="pt", padding=True,
                                     add_special_tokens=False).to(self.device)
                scores.append(self.model(**enc).logits[:, 0].float().cpu().numpy())
        return np.concatenate(scores)
