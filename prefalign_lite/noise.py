"""SPA's noise detection bookkeeping (SPA Eq. 9 / 11 and the authors' implementation notes).

A pair is *suspected noise* (``z = 1``) when its confidence margin falls below ``tau``, the
K-quantile of the margins of the most recent ``window`` training examples (a moving window, so
``tau`` follows the model as it trains). Refinement is switched off (``alpha = 0``) during the
first ``warmup_fraction`` of the steps, while the margins are still meaningless.
"""
from __future__ import annotations

from collections import deque

import torch

from ._checks import check_range, check_tensors


class AdaptiveThreshold:
    """Moving K-quantile of recent margins; call it on each batch's margins to get ``z``.

    ``tau`` is read off the sorted window at index ``i = floor(len * k)`` as the mean of the two
    neighbours ``sorted[i-1]`` and ``sorted[i]``, so that about ``k`` of the window lies below it.
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
    def tau(self) -> float | None:
        """The current threshold, or ``None`` before any margin was seen."""
        if not self._recent:
            return None
        ranked = sorted(self._recent)
        i = int(len(ranked) * self.k)
        if i == 0:  # nothing lies strictly below the smallest margin
            return ranked[0]
        if i >= len(ranked):
            return ranked[-1] + 1.0
        return 0.5 * (ranked[i - 1] + ranked[i])

    def __call__(self, margins: torch.Tensor) -> torch.Tensor:
        """Add this batch's margins to the window, then flag those below ``tau`` (Eq. 9/11)."""
        self.update(margins)
        return (margins.detach() < self.tau).to(margins.dtype)


def refinement_alpha(step: int, total_steps: int, alpha: float, warmup_fraction: float = 0.2) -> float:
    """SPA's schedule for the smoothing strength: ``0`` during the first ``warmup_fraction`` of
    ``total_steps``, then ``alpha``."""
    check_range("warmup_fraction", warmup_fraction, 0.0, 1.0)
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps!r}")
    return 0.0 if step < warmup_fraction * total_steps else alpha
