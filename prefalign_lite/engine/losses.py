"""The trainer's losses: every objective of :mod:`prefalign_lite.objectives` wired to what one
training step provides. Each factory returns a :class:`TrainingLoss`; the mathematics stays in
``objectives.py`` (and ``core/robust.py``), only the wiring (what each loss needs from a step) is
here. The trainer calls ``loss(StepInputs)``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import objectives as O
from ..core.noise import AdaptiveThreshold, refinement_alpha


@dataclass
class StepInputs:
    """What an objective sees for one batch (per-example tensors of shape ``(B,)``)."""

    pi_w: torch.Tensor
    pi_l: torch.Tensor
    ref_w: torch.Tensor
    ref_l: torch.Tensor
    len_w: torch.Tensor
    len_l: torch.Tensor
    step: int
    total_steps: int
    rows: list[dict]
    policy_logits: torch.Tensor | None = None
    ref_logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    augmented: tuple[torch.Tensor, ...] | None = None  # (pi_w, pi_l, ref_w, ref_l) given prefix + prompt
    ext_w: torch.Tensor | None = None  # SPA Eq. 12 log-probs (no grad) when the objective asks for them
    ext_l: torch.Tensor | None = None


@dataclass
class TrainingLoss:
    """What the trainer optimises, ``loss(inputs) -> (per-example loss, {metric: float})``, and
    what the loss needs from each step: ``extrapolate_lam`` asks for SPA's extrapolated log-probs
    (Eq. 12) with that lambda in ``ext_w, ext_l`` (computed chunk-wise, no full logits);
    ``needs_logits`` keeps the full logits of policy and reference for losses that read them
    (memory-hungry); ``augment_prefix`` adds no-grad log-probs of the completions given
    ``prefix + prompt`` under policy and reference (Sr-DPO's Delta)."""

    loss: Callable[[StepInputs], tuple[torch.Tensor, dict]]
    beta: float
    needs_logits: bool = False
    augment_prefix: str | None = None
    extrapolate_lam: float | None = None


def dpo(beta: float) -> TrainingLoss:
    return TrainingLoss(lambda x: (O.dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta), {}), beta)


def ipo(beta: float, length_normalised: bool = False) -> TrainingLoss:
    def loss(x: StepInputs):
        lengths = dict(len_w=x.len_w.to(x.pi_w.dtype), len_l=x.len_l.to(x.pi_w.dtype)) if length_normalised else {}
        return O.ipo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta, **lengths), {}
    return TrainingLoss(loss, beta)


def slic(beta: float) -> TrainingLoss:
    return TrainingLoss(lambda x: (O.slic_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta), {}), beta)


def cdpo(beta: float, label_smoothing: float) -> TrainingLoss:
    return TrainingLoss(lambda x: (O.cdpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta, label_smoothing), {}), beta)


def simpo(beta: float, gamma: float = 0.0) -> TrainingLoss:
    def loss(x: StepInputs):
        return O.simpo_loss(x.pi_w / x.len_w, x.pi_l / x.len_l, beta, gamma), {}
    return TrainingLoss(loss, beta)


def spa_refined(beta: float = 0.1, alpha: float = 0.1, k: float = 0.1, lam: float = 0.5,
                decoupled: bool = True, warmup_fraction: float = 0.2, window: int = 50) -> TrainingLoss:
    """SPA Eq. 9-12: flag the least-confident pairs (moving K-quantile of the margins), judged by
    the extrapolated model when ``decoupled`` else by the policy itself, and smooth their labels.

    With ``decoupled`` the trainer computes the extrapolated log-probs (Eq. 12, lambda ``lam``)
    chunk by chunk during its two forward passes and hands them over as ``ext_w, ext_l``."""
    threshold = AdaptiveThreshold(k=k, window=window)

    def loss(x: StepInputs):
        with torch.no_grad():
            if decoupled:
                if x.ext_w is None:
                    raise ValueError("spa_refined(decoupled=True) needs ext_w/ext_l: run it through PreferenceTrainer, "
                                     "which computes them when TrainingLoss.extrapolate_lam is set")
                ext_w, ext_l = x.ext_w, x.ext_l
            else:
                ext_w, ext_l = x.pi_w, x.pi_l
            z = threshold(beta * O.log_ratio_margin(ext_w, ext_l, x.ref_w, x.ref_l))
        a = refinement_alpha(x.step, x.total_steps, alpha, warmup_fraction)
        return O.spa_refined_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, z, beta, a), {"noise_share": z.mean().item() if a > 0 else 0.0}
    return TrainingLoss(loss, beta, extrapolate_lam=float(lam) if decoupled else None)


def sr_dpo(beta: float, lam: float, prefix: str | None, ipo_form: bool = False) -> TrainingLoss:
    """Sr-DPO (Eq. 11-12) or Sr-IPO with the quality instruction ``prefix`` (the setting's
    ``quality_prompt``) prepended to each prompt; ``prefix=None`` is the Delta_naive ablation."""
    def loss(x: StepInputs):
        aug = x.augmented if prefix else (x.pi_w.detach(), x.pi_l.detach(), x.ref_w, x.ref_l)
        delta = O.sr_refinement(*aug, beta)
        fn = O.sr_ipo_loss if ipo_form else O.sr_dpo_loss
        return fn(x.pi_w, x.pi_l, x.ref_w, x.ref_l, delta, beta, lam), {"delta": delta.mean().item()}
    return TrainingLoss(loss, beta, augment_prefix=prefix)


def dro_dpo(beta: float = 0.1, epsilon: float = 0.01, n_pieces: int = 8, floor: float = 1e-3) -> TrainingLoss:
    """The thesis' worst-case DPO (Eq. 2-3 to 2-6), the worst case re-solved on every batch."""
    def loss(x: StepInputs):
        return O.dro_dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta, epsilon, n_pieces, floor=floor), {}
    return TrainingLoss(loss, beta)
