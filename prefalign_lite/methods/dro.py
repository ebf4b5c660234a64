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

import torch

from .. import objectives as O
from ..engine.losses import TANGENT_FLOOR, DroRound, effective_weights  # noqa: F401  (the loss and its constants)
from .session import Session


def round_loss(session: Session, rows: list[dict], start, policy: int, beta: float, epsilon: float, n_pieces: int,
               solves: int, warmup_fraction: float) -> DroRound:
    """The round-level worst-case loss of a round that trains iterate ``policy`` from iterate
    ``start`` on ``rows`` (with ``id``): the confidences of the round's pairs are
    ``sigma(beta h)`` with h measured under ``policy`` against ``start``, whose log-probs are
    computed once, before the round trains."""
    ref_w, ref_l = session.logps(start, rows)

    def confidences() -> torch.Tensor:
        pi_w, pi_l = session.logps(policy, rows)
        return torch.sigmoid(beta * O.log_ratio_margin(pi_w, pi_l, ref_w, ref_l)).double()
    return DroRound(beta, epsilon, n_pieces, confidences, solves, warmup_fraction)
