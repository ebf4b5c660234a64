"""The trainer's losses: every objective of :mod:`prefalign_lite.objectives` wired to what one
training step provides. Each factory returns a :class:`TrainingLoss`; the mathematics stays in
``objectives.py`` (and ``core/robust.py``), only the wiring (what each loss needs from a step) is
here. The trainer calls ``loss(StepInputs)``."""
from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class FlagStats:
    """What SPA's noise flag did once refinement was on (after the warm-up), counted over the pairs
    it saw. Rows may carry ``wrong``: True where the pair's label disagrees with the gold judge,
    False where it agrees, None for a gold tie (counted in neither). ``shadow`` counts the flag the
    policy's own margin would have raised (SPA's Eq. 9) on the same pairs, beside the de-coupled
    one (Eq. 11-12), each with its own moving threshold."""

    pairs: int = 0
    flagged: int = 0
    decided: int = 0          # pairs with a gold verdict
    wrong: int = 0            # of those, labelled against gold
    flagged_decided: int = 0
    flagged_wrong: int = 0
    shadow_flagged: int = 0
    both_flagged: int = 0
    by_id: dict = field(default_factory=dict)   # row id -> flagged, for rows that carry an ``id``

    def add(self, z: torch.Tensor, wrong: list, shadow: torch.Tensor | None, ids: list | None = None) -> None:
        flags = z.bool().tolist()
        if ids is not None:
            self.by_id.update((i, f) for i, f in zip(ids, flags) if i is not None)
        self.pairs += len(flags)
        self.flagged += sum(flags)
        for f, w in zip(flags, wrong):
            if w is None:
                continue
            self.decided += 1
            self.wrong += bool(w)
            self.flagged_decided += f
            self.flagged_wrong += f and bool(w)
        if shadow is not None:
            other = shadow.bool().tolist()
            self.shadow_flagged += sum(other)
            self.both_flagged += sum(a and b for a, b in zip(flags, other))

    def summary(self) -> dict:
        """Precision and recall of the flag against gold-wrong labels, the share of wrong labels
        (a flag at random has precision equal to it), and the Jaccard overlap with the shadow flag;
        ``None`` where nothing was there to count."""
        nan = None
        union = self.flagged + self.shadow_flagged - self.both_flagged
        return {"flag_precision": self.flagged_wrong / self.flagged_decided if self.flagged_decided else nan,
                "flag_recall": self.flagged_wrong / self.wrong if self.wrong else nan,
                "wrong_share": self.wrong / self.decided if self.decided else nan,
                "flagged_share": self.flagged / self.pairs if self.pairs else nan,
                "flag_overlap": self.both_flagged / union if union and self.shadow_flagged else nan}


@dataclass
class SpaRefinedLoss(TrainingLoss):
    """SPA's refined loss and what its noise flag did (:class:`FlagStats`)."""

    flags: FlagStats = field(default_factory=FlagStats)


def spa_refined(beta: float = 0.1, alpha: float = 0.1, k: float = 0.1, lam: float = 0.5,
                decoupled: bool = True, warmup_fraction: float = 0.2, window: int = 50) -> SpaRefinedLoss:
    """SPA Eq. 9-12: flag the least-confident pairs (moving K-quantile of the margins), judged by
    the extrapolated model when ``decoupled`` else by the policy itself, and smooth their labels.

    With ``decoupled`` the trainer computes the extrapolated log-probs (Eq. 12, lambda ``lam``)
    chunk by chunk during its two forward passes and hands them over as ``ext_w, ext_l``; the
    policy's own flag is then computed beside it as a shadow (never used in the loss), so the two
    detections can be compared on the same pairs."""
    threshold = AdaptiveThreshold(k=k, window=window)
    shadow_threshold = AdaptiveThreshold(k=k, window=window) if decoupled else None

    def loss(x: StepInputs):
        with torch.no_grad():
            own = beta * O.log_ratio_margin(x.pi_w, x.pi_l, x.ref_w, x.ref_l)
            if decoupled:
                if x.ext_w is None:
                    raise ValueError("spa_refined(decoupled=True) needs ext_w/ext_l: run it through PreferenceTrainer, "
                                     "which computes them when TrainingLoss.extrapolate_lam is set")
                z = threshold(beta * O.log_ratio_margin(x.ext_w, x.ext_l, x.ref_w, x.ref_l))
                shadow = shadow_threshold(own)
            else:
                z, shadow = threshold(own), None
        a = refinement_alpha(x.step, x.total_steps, alpha, warmup_fraction)
        if a > 0:
            objective.flags.add(z, [r.get("wrong") for r in x.rows], shadow, [r.get("id") for r in x.rows])
        return O.spa_refined_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, z, beta, a), {"noise_share": z.mean().item() if a > 0 else 0.0}
    objective = SpaRefinedLoss(loss, beta, extrapolate_lam=float(lam) if decoupled else None)
    return objective


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
