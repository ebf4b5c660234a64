"""The trainer's losses: every objective of :mod:`prefalign_lite.objectives` wired to what one
training step provides, and the one registry of them (:data:`LOSSES`, :func:`make`).

A loss is a small callable object, ``loss(StepInputs) -> (per-example loss, {metric: float})``,
whose fields are its hyperparameters and what it records while it trains (SPA's noise flags, the
round-level worst case). The mathematics stays in ``objectives.py`` (and ``core/robust.py``); only
the wiring (what each loss needs from a step) is here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import objectives as O
from ..core.margin import log_ratio_margin
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


class TrainingLoss:
    """What the trainer optimises, and what the loss needs from each step:

    * ``extrapolate_lam``: SPA's extrapolated log-probs (Eq. 12) with that lambda in ``ext_w, ext_l``
      (computed chunk-wise, no full logits);
    * ``needs_logits``: the full logits of policy and reference, for losses that read them
      (memory-hungry);
    * ``augment_prefix``: no-grad log-probs of the completions given ``prefix + prompt`` under policy
      and reference (Sr-DPO's Delta).

    :meth:`margin` is the implicit reward margin the trainer logs (and counts as accurate where > 0).
    """

    beta: float
    needs_logits: bool = False
    augment_prefix: str | None = None
    extrapolate_lam: float | None = None

    def __call__(self, x: StepInputs) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def margin(self, x: StepInputs) -> torch.Tensor:
        """``beta h`` per pair: the DPO family's implicit reward of chosen minus rejected."""
        return self.beta * log_ratio_margin(x.pi_w, x.pi_l, x.ref_w, x.ref_l)


@dataclass
class Dpo(TrainingLoss):
    """DPO, ``-log sigma(beta h)``."""

    beta: float

    def __call__(self, x):
        return O.dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, self.beta), {}


@dataclass
class Ipo(TrainingLoss):
    """IPO, ``(h - 1/(2 beta))^2``; ``length_normalised`` is TRL's variant (h per token)."""

    beta: float
    length_normalised: bool = False

    def __call__(self, x):
        lengths = dict(len_w=x.len_w.to(x.pi_w.dtype), len_l=x.len_l.to(x.pi_w.dtype)) if self.length_normalised else {}
        return O.ipo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, self.beta, **lengths), {}


@dataclass
class Slic(TrainingLoss):
    """SLiC-HF's hinge on the log-ratio margin (SeRA Eq. 8)."""

    beta: float

    def __call__(self, x):
        return O.slic_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, self.beta), {}


@dataclass
class Cdpo(TrainingLoss):
    """Conservative DPO: the label is right with probability ``1 - label_smoothing``."""

    beta: float
    label_smoothing: float

    def __call__(self, x):
        return O.cdpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, self.beta, self.label_smoothing), {}


@dataclass
class Simpo(TrainingLoss):
    """SimPO (SeRA Eq. 17-18): length-normalised log-probs, no reference, target margin ``gamma``."""

    beta: float
    gamma: float = 0.0

    def __call__(self, x):
        return O.simpo_loss(x.pi_w / x.len_w, x.pi_l / x.len_l, self.beta, self.gamma), {}

    def margin(self, x):
        """SimPO's own reward margin, ``beta (log pi(y_w)/|y_w| - log pi(y_l)/|y_l|)`` (no reference)."""
        return self.beta * (x.pi_w / x.len_w - x.pi_l / x.len_l)


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
class SpaRefined(TrainingLoss):
    """SPA Eq. 9-12: flag the least-confident pairs (moving K-quantile of the margins), judged by
    the extrapolated model when ``decoupled`` else by the policy itself, and smooth their labels;
    ``flags`` counts what the flag did (:class:`FlagStats`).

    With ``decoupled`` the trainer computes the extrapolated log-probs (Eq. 12, lambda ``lam``)
    chunk by chunk during its two forward passes and hands them over as ``ext_w, ext_l``; the
    policy's own flag is then computed beside it as a shadow (never used in the loss), so the two
    detections can be compared on the same pairs."""

    beta: float = 0.1
    alpha: float = 0.1             # Eq. 10's label smoothing of a flagged pair
    k: float = 0.1                 # Eq. 9's K: the share of pairs flagged (the moving K-quantile's K)
    lam: float = 0.5               # Eq. 12's extrapolation strength lambda
    decoupled: bool = True         # flag with the extrapolated model (Eq. 11-12), else with the policy (Eq. 9)
    warmup_fraction: float = 0.2   # refinement is off for this share of the steps
    window: int = 50               # margins the moving quantile is taken over
    flags: FlagStats = field(default_factory=FlagStats)

    def __post_init__(self):
        self.threshold = AdaptiveThreshold(k=self.k, window=self.window)
        self.shadow_threshold = AdaptiveThreshold(k=self.k, window=self.window) if self.decoupled else None

    @property
    def extrapolate_lam(self) -> float | None:
        return float(self.lam) if self.decoupled else None

    def __call__(self, x):
        beta = self.beta
        with torch.no_grad():
            own = beta * log_ratio_margin(x.pi_w, x.pi_l, x.ref_w, x.ref_l)
            if self.decoupled:
                if x.ext_w is None:
                    raise ValueError("SpaRefined(decoupled=True) needs ext_w/ext_l: run it through PreferenceTrainer, "
                                     "which computes them when TrainingLoss.extrapolate_lam is set")
                z = self.threshold(beta * log_ratio_margin(x.ext_w, x.ext_l, x.ref_w, x.ref_l))
                shadow = self.shadow_threshold(own)
            else:
                z, shadow = self.threshold(own), None
        a = refinement_alpha(x.step, x.total_steps, self.alpha, self.warmup_fraction)
        if a > 0:
            self.flags.add(z, [r.get("wrong") for r in x.rows], shadow, [r.get("id") for r in x.rows])
        loss = O.spa_refined_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, z, beta, a)
        return loss, {"noise_share": z.mean().item() if a > 0 else 0.0}


@dataclass
class SrDpo(TrainingLoss):
    """Sr-DPO (Eq. 11-12) or, ``ipo_form``, Sr-IPO with the quality instruction ``prefix`` (the
    setting's ``quality_prompt``) prepended to each prompt; ``prefix=None`` is the Delta_naive
    ablation (Eq. 10: Delta from the plain prompt's margin)."""

    beta: float
    lam: float                     # Eq. 12's weight of the refinement term
    prefix: str | None
    ipo_form: bool = False

    @property
    def augment_prefix(self) -> str | None:
        return self.prefix

    def __call__(self, x):
        aug = x.augmented if self.prefix else (x.pi_w.detach(), x.pi_l.detach(), x.ref_w, x.ref_l)
        delta = O.sr_refinement(*aug, self.beta)
        fn = O.sr_ipo_loss if self.ipo_form else O.sr_dpo_loss
        return fn(x.pi_w, x.pi_l, x.ref_w, x.ref_l, delta, self.beta, self.lam), {"delta": delta.mean().item()}


@dataclass
class DroDpo(TrainingLoss):
    """The thesis' worst-case DPO (Eq. 2-3 to 2-6), the worst case re-solved on every batch."""

    beta: float = 0.1
    epsilon: float = 0.01          # Wasserstein radius in confidence units
    n_pieces: int = 8              # tangents of the -log sigma envelope the linear program uses
    floor: float = 1e-3            # lower end of the confidence support

    def __call__(self, x):
        return O.dro_dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, self.beta, self.epsilon, self.n_pieces,
                              floor=self.floor), {}


TANGENT_FLOOR = 0.1   # the round-level worst case's tangents spread over [0.1, 1]


@dataclass
class DroRound(TrainingLoss):
    """The thesis' worst case over a whole round (``methods.dro`` says where and why), for rows that
    carry ``id`` (their index in the round). ``confidences()`` returns ``sigma(beta h)`` of every
    row of the round under the current policy. Plain DPO for the first ``warmup_fraction`` of the
    steps, then the worst case is solved ``solves`` times at evenly spaced points and held fixed in
    between. At each solve it records the share of the round's pairs whose mass the adversary moved
    and the gradient weight the worst case gives each pair relative to DPO's (:func:`effective_weights`)."""

    beta: float
    epsilon: float                 # Wasserstein radius in confidence units
    n_pieces: int                  # tangents of the envelope
    confidences: Callable[[], torch.Tensor]
    solves: int = 4                # times the worst case is re-solved over the round
    warmup_fraction: float = 0.2
    moved_shares: list[float] = field(default_factory=list)
    weights: list[dict] = field(default_factory=list)
    last_confidences: list[float] | None = None   # the round's sigma(beta h) at the last solve
    last_moved_mass: list[float] | None = None    # and the mass the adversary moved from each pair

    def __post_init__(self):
        if not isinstance(self.solves, int) or self.solves < 1:
            raise ValueError(f"solves must be an integer >= 1, got {self.solves!r}")
        self.points = [self.warmup_fraction + (1 - self.warmup_fraction) * i / self.solves for i in range(self.solves)]
        self.worst, self.done = None, 0

    def solve(self) -> None:
        """The worst case of the round's pairs at the current policy, and what it does."""
        xi = self.confidences()
        self.worst = O.dro_worst_case(xi, self.epsilon, self.n_pieces, floor=0.0, tangent_floor=TANGENT_FLOOR)
        self.moved_shares.append(float((self.worst.moved_mass > 0).mean()))
        self.weights.append(effective_weights(self.worst, xi, self.beta, self.epsilon, self.n_pieces))
        self.last_confidences = xi.tolist()
        self.last_moved_mass = self.worst.moved_mass.tolist()

    def __call__(self, x):
        progress = x.step / x.total_steps
        if self.done < len(self.points) and progress >= self.points[self.done]:
            self.solve()
            while self.done < len(self.points) and progress >= self.points[self.done]:
                self.done += 1
        if self.worst is None:
            return O.dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, self.beta), {"dro_moved": 0.0}
        worst = self.worst.subset([r["id"] for r in x.rows])
        value = O.dro_dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, self.beta, self.epsilon, self.n_pieces,
                               worst_case=worst, moved_loss="tangent")
        return value, {"dro_moved": float((worst.moved_mass > 0).mean())}


def effective_weights(worst, xi: torch.Tensor, beta: float, epsilon: float, n_pieces: int) -> dict:
    """How the worst case reweights the round's pairs: each pair's gradient of the worst-case loss
    with respect to its logit ``beta h`` divided by DPO's (1 for an unmoved pair), summarised over
    the pairs whose mass moved and over all pairs."""
    logits = torch.logit(xi.detach().double()).requires_grad_(True)
    zero = torch.zeros_like(logits)
    robust = O.dro_dpo_loss(logits / beta, zero, zero, zero, beta, epsilon, n_pieces, worst_case=worst,
                            moved_loss="tangent").sum()
    plain = O.dpo_loss(logits / beta, zero, zero, zero, beta).sum()
    ratio = torch.autograd.grad(robust, logits)[0] / torch.autograd.grad(plain, logits)[0]
    moved = torch.as_tensor(worst.moved_mass > 0)
    return {"mean_weight": float(ratio.mean()), "max_weight": float(ratio.max()),
            "mean_weight_moved": float(ratio[moved].mean()) if bool(moved.any()) else 1.0}


# The one registry: a loss by the name configs and method configs use.
LOSSES: dict[str, type[TrainingLoss]] = {
    "dpo": Dpo, "ipo": Ipo, "slic": Slic, "cdpo": Cdpo, "simpo": Simpo, "spa_refined": SpaRefined,
    "sr_dpo": SrDpo, "dro_dpo": DroDpo, "dro_round": DroRound,
}


def make(name: str, **params) -> TrainingLoss:
    """The loss registered as ``name`` with these hyperparameters."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; the losses are {sorted(LOSSES)}")
    return LOSSES[name](**params)
