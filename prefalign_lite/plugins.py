"""Every objective of :mod:`prefalign_lite.objectives` as a plug-in for the preference trainer.
Each factory returns a :class:`~prefalign_lite.trainer.Objective`; the mathematics stays in
``objectives.py`` and ``robust.py``, only the wiring (what each loss needs from a step) is here."""
from __future__ import annotations

import torch

from . import objectives as O, world
from .noise import AdaptiveThreshold, refinement_alpha
from .trainer import Objective, StepInputs

# Sr-DPO's quality instruction, in the embedded world's own vocabulary (the paper's asks for a
# response "with a usefulness rating of 100 out of 100"; see notebook 04).
TOY_QUALITY_PREFIX = world.QUALITY_WORD


def dpo(beta: float) -> Objective:
    return Objective(lambda x: (O.dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta), {}), beta)


def ipo(beta: float, length_normalised: bool = False) -> Objective:
    def loss(x: StepInputs):
        lengths = dict(len_w=x.len_w.to(x.pi_w.dtype), len_l=x.len_l.to(x.pi_w.dtype)) if length_normalised else {}
        return O.ipo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta, **lengths), {}
    return Objective(loss, beta)


def slic(beta: float) -> Objective:
    return Objective(lambda x: (O.slic_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta), {}), beta)


def cdpo(beta: float, label_smoothing: float) -> Objective:
    return Objective(lambda x: (O.cdpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta, label_smoothing), {}), beta)


def simpo(beta: float, gamma: float = 0.0) -> Objective:
    def loss(x: StepInputs):
        return O.simpo_loss(x.pi_w / x.len_w, x.pi_l / x.len_l, beta, gamma), {}
    return Objective(loss, beta)


def spa_refined(beta: float = 0.1, alpha: float = 0.1, k: float = 0.1, lam: float = 0.5,
                decoupled: bool = True, warmup_fraction: float = 0.2, window: int = 50) -> Objective:
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
                                     "which computes them when Objective.extrapolate_lam is set")
                ext_w, ext_l = x.ext_w, x.ext_l
            else:
                ext_w, ext_l = x.pi_w, x.pi_l
            z = threshold(beta * O.sera_margin(ext_w, ext_l, x.ref_w, x.ref_l))
        a = refinement_alpha(x.step, x.total_steps, alpha, warmup_fraction)
        return O.spa_refined_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, z, beta, a), {"noise_share": z.mean().item() if a > 0 else 0.0}
    return Objective(loss, beta, extrapolate_lam=float(lam) if decoupled else None)


def sr_dpo(beta: float = 0.1, lam: float = 0.5, prefix: str | None = TOY_QUALITY_PREFIX, ipo_form: bool = False) -> Objective:
    """Sr-DPO (Eq. 11-12) or Sr-IPO; ``prefix=None`` is the Delta_naive ablation (no prompt)."""
    def loss(x: StepInputs):
        aug = x.augmented if prefix else (x.pi_w.detach(), x.pi_l.detach(), x.ref_w, x.ref_l)
        delta = O.sr_refinement(*aug, beta)
        fn = O.sr_ipo_loss if ipo_form else O.sr_dpo_loss
        return fn(x.pi_w, x.pi_l, x.ref_w, x.ref_l, delta, beta, lam), {"delta": delta.mean().item()}
    return Objective(loss, beta, augment_prefix=prefix)


def dro_dpo(beta: float = 0.1, epsilon: float = 0.01, n_pieces: int = 8, floor: float = 1e-3) -> Objective:
    """The thesis' worst-case DPO (Eq. 2-3 to 2-6), the worst case re-solved on every batch."""
    def loss(x: StepInputs):
        return O.dro_dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta, epsilon, n_pieces, floor=floor), {}
    return Objective(loss, beta)
