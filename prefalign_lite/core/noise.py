"""SPA's noise detection bookkeeping (SPA Eq. 9 / 11 and the authors' implementation notes).

A pair is *suspected noise* (``z = 1``) when its confidence margin is at or below ``tau``, the
K-quantile of the margins of the ``window`` training examples seen *before* this batch (a moving
window, so ``tau`` follows the model as it trains; the batch joins the window after it is judged).
Refinement is switched off (``alpha = 0``) during the first ``warmup_fraction`` of the steps, while
the margins are still meaningless. These details follow the authors' released code
(``trl/trainer/dpo_trainer.py`` of github.com/kingdy2002/SPA): the quantile is the mean of the
sorted window's entries ``floor(window K)`` and the next one (the 6th and 7th smallest of 50 for
K = 10%), the comparison is ``<=``, and ``tau = 0`` until the window is full.
"""
from __future__ import annotations

from collections import deque

import torch

from .arguments import check_range, check_tensors


class AdaptiveThreshold:
    """Moving K-quantile of recent margins; call it on each batch's margins to get ``z``.

    ``tau`` is read off the full sorted window at index ``i = floor(window * k)`` as the mean of
    ``sorted[i]`` and ``sorted[i + 1]``; before the window is full it is 0.
    """

    def __init__(self, k: float = 0.1, window: int = 50):
        self.k = check_range("k", k, 0.0, 1.0)
        if not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        self.window = window
        self._recent: deque[float] = deque(maxlen=window)

    def update(self, margins: torch.Tensor) -> None:
        check_tensors(margins=margins)
        self._recent.extend(margins.detach().reshape(-1).tolist())

    @property
    def tau(self) -> float:
        """The current threshold (0 until ``window`` margins have been seen)."""
        if len(self._recent) < self.window:
            return 0.0
        ranked = sorted(self._recent)
        i = min(int(self.window * self.k), self.window - 2)
        return 0.5 * (ranked[i] + ranked[i + 1])

    def __call__(self, margins: torch.Tensor) -> torch.Tensor:
        """Flag this batch's margins at or below ``tau`` (Eq. 9/11), then add them to the window."""
        check_tensors(margins=margins)
        z = (margins.detach() <= self.tau).to(margins.dtype)
        self.update(margins)
        return z


def refinement_alpha(step: int, total_steps: int, alpha: float, warmup_fraction: float = 0.2) -> float:
    """SPA's schedule for the smoothing strength: ``0`` during the first ``warmup_fraction`` of
    ``total_steps``, then ``alpha``."""
    check_range("warmup_fraction", warmup_fraction, 0.0, 1.0)
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps!r}")
    return 0.0 if step < warmup_fraction * total_steps else alpha
