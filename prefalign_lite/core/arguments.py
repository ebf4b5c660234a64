"""Argument checks shared by the objectives: every bad input becomes a ``ValueError`` that names
the argument, never a NaN loss further down."""
from __future__ import annotations

import math

import torch


def check_tensors(**tensors: torch.Tensor | None) -> torch.Tensor:
    """All given tensors are floating, finite and of one shape; return the first one.

    ``None`` values are skipped (optional arguments)."""
    given = {name: t for name, t in tensors.items() if t is not None}
    first_name, first = next(iter(given.items()))
    for name, t in given.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor (float32 or float64), got {t.dtype}")
        if t.shape != first.shape:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)} but {first_name} has shape {tuple(first.shape)}"
            )
        if not bool(torch.isfinite(t).all()):
            bad = torch.nonzero(~torch.isfinite(t))[0].tolist()
            raise ValueError(f"{name} has a non-finite value at index {bad}")
    return first


def check_positive(name: str, value: float) -> float:
    if not _is_real(value) or not value > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_range(name: str, value: float, low: float, high: float) -> float:
    if not _is_real(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def check_binary(name: str, z: torch.Tensor) -> None:
    if not bool(((z == 0) | (z == 1)).all()):
        bad = torch.nonzero((z != 0) & (z != 1))[0].tolist()
        raise ValueError(f"{name} must hold only 0 or 1; index {bad} holds {z[tuple(bad)].item()!r}")


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
