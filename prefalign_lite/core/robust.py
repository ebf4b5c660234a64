"""Distributionally robust (adversarial) DPO from the thesis proposal, section 2.2 (Eq. 2-3 to 2-6).

For a fixed policy the pair confidences ``xi_i = sigma(beta h_i)`` form an empirical distribution.
An adversary may move it anywhere within 1-Wasserstein distance ``epsilon`` (Eq. 2-3) to make the
expected DPO loss ``l(xi) = -log xi`` as large as possible. Replacing ``l`` by the maximum of
``K`` tangents ``l_k(xi) = a_k xi + b_k`` turns the search into the finite program Eq. 2-4
(Mohajerin Esfahani & Kuhn, 2018, Thm. 4.2), which is linear in ``(alpha_ik, q_ik)`` because
``alpha l_k(xi - q / alpha) = alpha (a_k xi + b_k) - a_k q``. Its solution is the discrete worst
case Eq. 2-5: atom ``xi_i - q_ik / alpha_ik`` with weight ``alpha_ik / N``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .arguments import check_positive, check_range, check_tensors
from .margin import log_ratio_margin


@dataclass(frozen=True)
class DROWorstCase:
    """The adversary's answer for N pairs and K pieces (all arrays ``(N, K)``, float64).

    ``alpha`` and ``q`` solve Eq. 2-4; ``atoms`` are the moved confidences ``xi - q/alpha`` and
    ``weights = alpha / N`` their probabilities (Eq. 2-5); ``value`` is the program's optimum, the
    worst-case expected loss under the tangent approximation; ``floor`` is the lower end of the
    support ``Xi = [floor, 1]``; ``tangents`` are the K points where the pieces touch ``-log``."""

    alpha: np.ndarray
    q: np.ndarray
    atoms: np.ndarray
    weights: np.ndarray
    value: float
    floor: float
    tangents: np.ndarray | None = None

    @property
    def moved_mass(self) -> np.ndarray:
        """``(N,)``: the probability mass the adversary moved away from each pair's confidence."""
        return np.where(np.abs(self.q) > 1e-12, self.alpha, 0.0).sum(axis=1)

    def subset(self, index) -> "DROWorstCase":
        """The rows ``index`` of a worst case solved over more pairs (e.g. one batch of a round);
        ``weights`` stay ``alpha / N`` of the whole problem."""
        index = np.asarray(index)
        return DROWorstCase(self.alpha[index], self.q[index], self.atoms[index], self.weights[index], self.value,
                            self.floor, self.tangents)


def tangent_points(n_pieces: int, floor: float) -> np.ndarray:
    """Where the K tangents of ``-log`` touch it: geometrically spread over ``[floor, 1]``, so the
    approximation error is the same on every piece (``-log`` is scale-free in ``xi``)."""
    k = np.arange(n_pieces)
    return floor ** ((2 * k + 1) / (2 * n_pieces))


def tangent_loss(xi, tangents: np.ndarray) -> torch.Tensor:
    """The piecewise-linear lower envelope of ``-log`` that the linear program maximises,
    ``max_k [-log t_k - (xi - t_k) / t_k]``: finite and of bounded slope down to ``xi = 0``."""
    t = torch.as_tensor(tangents, dtype=xi.dtype, device=xi.device)
    return (-torch.log(t) - (xi.unsqueeze(-1) - t) / t).amax(-1)


def dro_worst_case(xi, epsilon: float, n_pieces: int, *, floor: float = 1e-3,
                   tangent_floor: float | None = None) -> DROWorstCase:
    """Thesis Eq. 2-4 and 2-5: the worst distribution of confidences ``xi`` (shape ``(N,)``; Eq. 2-2
    makes each a sigmoid, so it lies in ``(0, 1)``) within Wasserstein radius ``epsilon``, for the
    loss ``-log xi`` approximated by ``n_pieces`` tangents; solved as a linear program with
    ``scipy.optimize.linprog`` (HiGHS).

    Where the budget goes: moving mass from ``xi_i`` down to the floor gains the chord slope of
    ``-log`` between the two points, which is largest for the *smallest* ``xi_i``. So the adversary
    spends everything on the least-confident pairs, the ones most likely mislabeled: the pairs SPA
    smooths and SeRA drops are the ones robust DPO leans on hardest. ``epsilon = 0`` moves nothing.

    The support is ``Xi = [floor, 1]``: the thesis asks only that ``Xi`` be convex and closed, and a
    closed support that holds every sigmoid needs a floor above 0, or ``-log`` would be unbounded;
    if some ``xi_i`` is already below ``floor`` the floor drops to it. The tangents touch ``-log``
    at points spread over ``[tangent_floor, 1]`` (default ``floor``); with ``floor = 0`` (no floor:
    the support is ``[0, 1]``) a ``tangent_floor > 0`` is required, and the moved atoms must then be
    scored with :func:`tangent_loss` (``dro_dpo_loss(..., moved_loss="tangent")``)."""
    epsilon = check_range("epsilon", epsilon, 0.0, float("inf"))
    if not isinstance(n_pieces, int) or n_pieces < 1:
        raise ValueError(f"n_pieces must be an integer >= 1, got {n_pieces!r}")
    floor = check_range("floor", floor, 0.0, 0.5)
    tangent_floor = check_range("tangent_floor", floor if tangent_floor is None else tangent_floor, 1e-12, 0.5)
    check_tensors(xi=xi)
    x = xi.detach().double().cpu().numpy().reshape(-1)
    if x.size == 0:
        raise ValueError("xi is empty: need at least one pair")
    if ((x <= 0) | (x > 1)).any():
        i = int(np.nonzero((x <= 0) | (x > 1))[0][0])
        raise ValueError(f"xi must lie in (0, 1]; index {i} holds {x[i]!r}")
    floor = min(floor, float(x.min()))
    n, k = x.size, n_pieces
    t = tangent_points(k, tangent_floor)
    a, b = -1.0 / t, 1.0 - np.log(t)  # tangent of -log at t: -log t - (xi - t) / t

    # Variables per (i, k), flattened row-major: alpha, q_plus, q_minus (q = q_plus - q_minus).
    nk = n * k
    xi_ik = np.repeat(x, k)
    a_ik, b_ik = np.tile(a, n), np.tile(b, n)
    # linprog minimises, so negate the objective (1/N) sum alpha (a xi + b) - a q.
    c = -np.concatenate([a_ik * xi_ik + b_ik, -a_ik, a_ik]) / n
    eye = sp.identity(nk, format="csr")
    budget = sp.csr_matrix(np.concatenate([np.zeros(nk), np.ones(2 * nk)]) / n)
    # atom >= floor:  -alpha (xi - floor) + q <= 0 ;  atom <= 1:  alpha (xi - 1) - q <= 0
    lower = sp.hstack([sp.diags(-(xi_ik - floor)), eye, -eye])
    upper = sp.hstack([sp.diags(xi_ik - 1.0), -eye, eye])
    a_ub = sp.vstack([budget, lower, upper], format="csr")
    b_ub = np.concatenate([[epsilon], np.zeros(2 * nk)])
    a_eq = sp.hstack([sp.kron(sp.identity(n), np.ones((1, k))), sp.csr_matrix((n, 2 * nk))], format="csr")
    res = scipy.optimize.linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.ones(n),
                                 bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"the worst-case LP (Eq. 2-4) failed: {res.message}")
    alpha = res.x[:nk].reshape(n, k)
    q = (res.x[nk:2 * nk] - res.x[2 * nk:]).reshape(n, k)
    # Clean the solver's round-off so that epsilon = 0 gives back exactly the empirical distribution.
    alpha = np.where(alpha < 1e-12, 0.0, alpha)
    alpha /= alpha.sum(axis=1, keepdims=True)
    q = np.where((alpha > 0) & (np.abs(q) > 1e-9), q, 0.0)
    shift = np.divide(q, alpha, out=np.zeros_like(q), where=alpha > 0)
    atoms = np.clip(x[:, None] - shift, floor, 1.0)
    return DROWorstCase(alpha=alpha, q=q, atoms=atoms, weights=alpha / n, value=float(-res.fun),
                        floor=floor, tangents=t)


def dro_dpo_loss(pi_w, pi_l, ref_w, ref_l, beta: float, epsilon: float, n_pieces: int, *,
                 floor: float = 1e-3, worst_case: DROWorstCase | None = None, moved_loss: str = "log") -> torch.Tensor:
    """Thesis Eq. 2-6, read as the worst-case expected loss: per pair
    ``sum_k alpha_ik * (-log(xi_i(theta) - q_ik / alpha_ik))`` with ``xi_i = sigma(beta h_i)``;
    the batch mean is ``sum_ik (alpha_ik / N) l(atom_ik)``. ``(alpha, q)`` come from
    :func:`dro_worst_case` on the detached confidences and are held fixed (stop-gradient); only
    ``xi(theta)`` is differentiated. ``moved_loss="tangent"`` scores the moved atoms with the
    K-piece envelope :func:`tangent_loss` the program maximised (needed when the support reaches 0,
    where ``-log`` is infinite); unmoved atoms always use ``-log``, so ``epsilon = 0`` is DPO. As printed, Eq. 2-6 puts ``alpha`` inside the log, which is not
    a sensible loss; this reading is the expectation under the worst case Eq. 2-5.

    Gradient: ``d/dxi = -sum_k alpha_ik / (xi_i - q_ik/alpha_ik)``, i.e. a DPO gradient scaled up
    by ``xi / atom`` for the pairs whose mass was moved, which are the least-confident ones (see
    :func:`dro_worst_case`). ``epsilon = 0`` returns DPO exactly. Pass ``worst_case`` to reuse a
    solved program (e.g. for ``gradcheck``)."""
    beta = check_positive("beta", beta)
    logits = beta * log_ratio_margin(pi_w, pi_l, ref_w, ref_l)
    if worst_case is None:
        worst_case = dro_worst_case(torch.sigmoid(logits.detach()).reshape(-1), epsilon,
                                    n_pieces, floor=floor)
    alpha = torch.as_tensor(worst_case.alpha, dtype=logits.dtype, device=logits.device)
    if alpha.shape[0] != logits.numel():
        raise ValueError(f"worst_case is for {alpha.shape[0]} pairs but the batch has {logits.numel()}")
    q = torch.as_tensor(worst_case.q, dtype=logits.dtype, device=logits.device)
    moved = q != 0
    shift = torch.where(moved, q / alpha.clamp_min(1e-300), torch.zeros_like(q))
    flat = logits.reshape(-1, 1)
    # Unmoved atoms use -logsigmoid (exact DPO, stable); moved ones -log(xi - shift).
    unmoved_loss = -F.logsigmoid(flat).expand_as(q)
    moved_atom = torch.sigmoid(flat) - shift
    if moved_loss == "tangent":
        if worst_case.tangents is None:
            raise ValueError("moved_loss='tangent' needs a worst case that records its tangent points")
        moved_value = tangent_loss(moved_atom, worst_case.tangents)
    elif moved_loss == "log":
        moved_value = -torch.log(torch.where(moved, moved_atom, torch.ones_like(q)).clamp_min(1e-300))
    else:
        raise ValueError(f"moved_loss must be 'log' or 'tangent', got {moved_loss!r}")
    per_pair = (alpha * torch.where(moved, moved_value, unmoved_loss)).sum(-1)
    return per_pair.reshape(logits.shape)


def tangent_error(n_pieces: int, floor: float = 1e-3) -> float:
    """Largest gap between ``-log`` and the max of its ``n_pieces`` tangents on ``[floor, 1]``
    (what the LP's approximation can be off by, per unit of probability mass)."""
    t = tangent_points(n_pieces, floor)
    grid = np.geomspace(floor, 1.0, 20001)
    approx = np.max(-np.log(t)[None, :] - (grid[:, None] - t[None, :]) / t[None, :], axis=1)
    return float(np.max(-np.log(grid) - approx))
