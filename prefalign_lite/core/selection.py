"""SeRA's two data steps (SeRA Algorithm 1, t >= 2): keep the offline pairs with the largest
implicit-reward margin (IRM-based selection), and turn R sampled responses per prompt into one
pair, best against worst by the implicit reward (bootstrapping)."""
from __future__ import annotations

import torch

from .arguments import check_tensors


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest ``scores`` (SeRA's selection by margin ``m_t``, Eq. 5/7),
    largest first. ``k`` larger than the number of scores keeps them all."""
    check_tensors(scores=scores)
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return torch.topk(scores.reshape(-1), min(k, scores.numel())).indices


def count_of(fraction: float, n: int) -> int:
    """SeRA states its budgets as fractions of the offline set size N (k = 0.7N, k~ = 0.3N)."""
    if not fraction >= 0:
        raise ValueError(f"fraction must be >= 0, got {fraction!r}")
    return int(round(fraction * n))


def extreme_pairs(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For rewards ``(M, R)`` of R responses to each of M prompts: ``(chosen, rejected, margin)``,
    the argmax and argmin response indices and their reward gap (SeRA's bootstrapped pairs)."""
    check_tensors(rewards=rewards)
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must have shape (M, R) with R >= 2, got {tuple(rewards.shape)}")
    best, worst = rewards.argmax(dim=1), rewards.argmin(dim=1)
    return best, worst, rewards.max(dim=1).values - rewards.min(dim=1).values
