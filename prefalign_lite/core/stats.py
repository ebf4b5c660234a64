"""Statistics of the replication: intervals (a bootstrap over prompts, Student's t over seeds),
the paired t-test and Holm's adjustment, win rates and a length-controlled win rate. Every function
refuses an empty input instead of inventing a value."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean with a 95% (by default) interval over ``n`` values (prompts or seeds); with fewer than
    two values there is no interval (``low`` and ``high`` are NaN)."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.3f}"
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


def bootstrap_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of ``values`` with a percentile bootstrap interval (resampling prompts)."""
    x = _scores("values", values, "bootstrap_ci")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"bootstrap_ci: n_boot must be an integer >= 1, got {n_boot!r}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"bootstrap_ci: level must be a number in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return Interval(float(x.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)), x.size)


def wins(scores_a, scores_b) -> np.ndarray:
    """Per prompt: 1 if A scores higher, 0.5 for a tie, 0 otherwise."""
    a, b = _scores("scores_a", scores_a, "wins"), _scores("scores_b", scores_b, "wins")
    _same_length("wins", scores_a=a, scores_b=b)
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def win_rate(scores_a, scores_b, seed: int = 0) -> Interval:
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


def seed_interval(values: list[float], level: float = 0.95) -> Interval:
    """Mean and Student-t interval over seeds (no interval from one seed)."""
    n = len(values)
    if n == 0:
        raise ValueError("seed_interval: no values (the run holds no seed for this number)")
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_p(diffs: list[float]) -> float:
    """Two-sided p-value of the paired t-test (the differences' mean is 0); NaN below two values."""
    if len(diffs) < 2:
        return math.nan
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    if sd == 0:
        return 0.0 if mean != 0 else 1.0
    return float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(len(diffs))), len(diffs) - 1))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (NaN stays NaN and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    out, running, m = [math.nan] * len(pvalues), 0.0, len(order)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def tost_p(diffs: list[float], margin: float) -> float:
    """p-value of the two one-sided tests that the mean of ``diffs`` lies inside ``(-margin, margin)``
    (equivalence): the larger of the two one-sided paired t-test p-values. A margin of 0 (or fewer
    than two values) can never show equivalence: 1.0 (NaN below two values)."""
    n = len(diffs)
    if n < 2:
        return math.nan
    if not margin > 0:
        return 1.0
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd == 0:
        return 0.0 if abs(mean) < margin else 1.0
    se = sd / math.sqrt(n)
    below = stats.t.sf((mean + margin) / se, n - 1)    # H0: mean <= -margin
    above = stats.t.cdf((mean - margin) / se, n - 1)   # H0: mean >= +margin
    return float(max(below, above))


def minimum_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t-test at level ``alpha`` detects with
    probability ``power`` over ``n`` seeds of between-seed standard deviation ``sd``:
    ``(t_{1-alpha/2} + t_power) * sd / sqrt(n)`` (the usual normal approximation, with t quantiles)."""
    if n < 2:
        return math.nan
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n))


def sample_sd(values: list[float]) -> float:
    """The standard deviation of ``values`` with ``n - 1`` in the denominator (NaN below two values)."""
    n = len(values)
    if n < 2:
        return math.nan
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
