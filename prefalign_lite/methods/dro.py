"""The thesis' adversarial DPO where the thesis puts it (§2.2.3): inside SPA's self-labelling loop,
with the worst case taken over the round's whole data set (Eq. 2-3 to 2-5 over its N pairs), not
over a batch, and with no floor on the support (``Xi = [0, 1]``).

At fixed policy the confidences ``xi_i = sigma(beta h_i)`` of all N pairs are computed, the linear
program Eq. 2-4 is solved once for all of them, and training goes on with ``(alpha, q)`` held fixed
(Eq. 2-6 read as the worst-case expected loss). A round starts from pi_{t-1} with reference pi_{t-1},
so every confidence is 1/2 at first and the adversary has nothing to choose between: like SPA's
refinement, the round trains plain DPO for its first ``warmup_fraction`` of steps, then re-solves the
worst case ``solves`` times at evenly spaced points.

Without a floor an atom moved to 0 has infinite ``-log`` loss, so the moved mass is scored with the
K tangents' envelope the program maximised (:func:`prefalign_lite.core.robust.tangent_loss`); unmoved
mass keeps the exact DPO loss, so ``epsilon = 0`` is DPO. Choices made before any DRO result was
seen: ``epsilon = 0.05`` (at confidences near 1/2 it moves about 10% of the pairs' mass to 0, the
share SPA's K smooths) and tangents spread over [0.1, 1], where ``sigma(beta h)`` lives for
``|beta h| <= 2.2``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import objectives as O
from ..engine.losses import StepInputs, TrainingLoss

TANGENT_FLOOR = 0.1


@dataclass
class DroRoundLoss(TrainingLoss):
    """The round's loss and, at each solve of the worst case (filled in while it trains), the share
    of the round's pairs whose mass the adversary moved and the gradient weight the worst case
    gives each pair relative to DPO's (:func:`effective_weights`)."""

    moved_shares: list[float] = field(default_factory=list)
    weights: list[dict] = field(default_factory=list)
    last_confidences: list[float] | None = None   # the round's sigma(beta h) at the last solve
    last_moved_mass: list[float] | None = None    # and the mass the adversary moved from each pair


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


def dro_round(beta: float, epsilon: float, n_pieces: int, confidences: Callable[[], torch.Tensor],
              solves: int = 4, warmup_fraction: float = 0.2) -> DroRoundLoss:
    """The loss for rows that carry ``id`` (their index in the round); ``confidences()`` returns
    ``sigma(beta h)`` of every row of the round under the current policy."""
    if not isinstance(solves, int) or solves < 1:
        raise ValueError(f"solves must be an integer >= 1, got {solves!r}")
    points = [warmup_fraction + (1 - warmup_fraction) * i / solves for i in range(solves)]
    state = {"worst": None, "done": 0}

    def loss(x: StepInputs):
        progress = x.step / x.total_steps
        if state["done"] < len(points) and progress >= points[state["done"]]:
            xi = confidences()
            state["worst"] = O.dro_worst_case(xi, epsilon, n_pieces, floor=0.0, tangent_floor=TANGENT_FLOOR)
            objective.moved_shares.append(float((state["worst"].moved_mass > 0).mean()))
            objective.weights.append(effective_weights(state["worst"], xi, beta, epsilon, n_pieces))
            objective.last_confidences = xi.tolist()
            objective.last_moved_mass = state["worst"].moved_mass.tolist()
            while state["done"] < len(points) and progress >= points[state["done"]]:
                state["done"] += 1
        if state["worst"] is None:
            return O.dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta), {"dro_moved": 0.0}
        worst = state["worst"].subset([r["id"] for r in x.rows])
        value = O.dro_dpo_loss(x.pi_w, x.pi_l, x.ref_w, x.ref_l, beta, epsilon, n_pieces, worst_case=worst,
                               moved_loss="tangent")
        return value, {"dro_moved": float((worst.moved_mass > 0).mean())}

    objective = DroRoundLoss(loss, beta)
    return objective
