"""The thesis' distributionally robust DPO: the LP against a slow greedy solution, its invariants,
where the adversary spends its budget, and gradients with the worst case held fixed."""

import numpy as np
import pytest
import torch

from prefalign_lite import objectives as O
from prefalign_lite.core.robust import tangent_error, tangent_points


def confidences(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.05 + 0.9 * torch.rand(n, generator=g, dtype=torch.float64)


def tangent_max(xi, n_pieces, floor):
    t = tangent_points(n_pieces, floor)
    return np.max(-np.log(t) - (np.asarray(xi)[..., None] - t) / t, axis=-1)


def greedy_worst_case(xi, epsilon, n_pieces, floor=1e-3):
    """The slow, obvious solution: for a decreasing convex loss, the best use of transport is to
    move mass from some xi_i to the floor, at a gain equal to the chord slope; spend the budget
    on the steepest chords first (a fractional knapsack)."""
    xi = np.asarray(xi, dtype=float)
    n = len(xi)
    base = tangent_max(xi, n_pieces, floor)
    slope = (tangent_max(floor, n_pieces, floor) - base) / (xi - floor)
    value, budget = base.mean(), epsilon
    for i in np.argsort(-slope):
        cost = (xi[i] - floor) / n  # transport to move all of pair i's mass
        spend = min(budget, cost)
        value += slope[i] * spend
        budget -= spend
    return value


@pytest.mark.parametrize("epsilon", [0.0, 0.003, 0.02, 0.1, 1.0])
def test_lp_matches_greedy(epsilon):
    xi = confidences(40)
    wc = O.dro_worst_case(xi, epsilon, 6)
    assert wc.value == pytest.approx(greedy_worst_case(xi.numpy(), epsilon, 6), rel=1e-7, abs=1e-9)
    # Eq. 2-5 is a probability distribution inside Xi, within the Wasserstein budget.
    assert wc.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert (wc.atoms >= wc.floor - 1e-12).all() and (wc.atoms <= 1 + 1e-12).all()
    transport = np.abs(wc.q).sum() / len(xi)
    assert transport <= epsilon + 1e-7


def test_single_pair_closed_form():
    xi, eps, floor = 0.6, 0.05, 1e-3
    wc = O.dro_worst_case(torch.tensor([xi], dtype=torch.float64), eps, 8, floor=floor)
    l_hat = lambda v: float(tangent_max(v, 8, floor))
    expected = l_hat(xi) + eps * (l_hat(floor) - l_hat(xi)) / (xi - floor)
    assert wc.value == pytest.approx(expected, rel=1e-8)


def test_epsilon_zero_is_dpo_and_loss_grows_with_epsilon():
    args = [torch.randn(64, generator=torch.Generator().manual_seed(s), dtype=torch.float64) * 5 for s in range(4)]
    dpo = O.dpo_loss(*args, 0.1)
    assert torch.allclose(O.dro_dpo_loss(*args, 0.1, 0.0, 8), dpo, atol=1e-12)
    values, losses = [], []
    for eps in [0.0, 0.001, 0.01, 0.03, 0.1, 0.3]:
        xi = torch.sigmoid(0.1 * O.log_ratio_margin(*args))
        values.append(O.dro_worst_case(xi, eps, 8).value)
        losses.append(O.dro_dpo_loss(*args, 0.1, eps, 8).mean().item())
    assert all(b >= a - 1e-9 for a, b in zip(values, values[1:]))
    assert all(b >= a - 1e-9 for a, b in zip(losses, losses[1:]))
    assert losses[-1] > losses[0] + 0.5


def test_budget_goes_to_least_confident_pairs():
    xi = confidences(200, seed=3)
    wc = O.dro_worst_case(xi, 0.01, 8)
    moved = wc.moved_mass > 0
    assert 0 < moved.sum() < len(xi)
    # Every pair the adversary touched is less confident than every pair it left alone.
    assert xi.numpy()[moved].max() < xi.numpy()[~moved].min()


def test_gradcheck_with_worst_case_held_fixed():
    args = tuple(torch.randn(12, generator=torch.Generator().manual_seed(s), dtype=torch.float64).mul(4).requires_grad_(True) for s in range(4))
    xi = torch.sigmoid(0.5 * O.log_ratio_margin(*args)).detach()
    wc = O.dro_worst_case(xi, 0.05, 8)
    assert (wc.moved_mass > 0).any()
    assert torch.autograd.gradcheck(lambda a, b, c, d: O.dro_dpo_loss(a, b, c, d, 0.5, 0.05, 8, worst_case=wc), args)
    # And the analytic gradient: d/dxi = -sum_k alpha / atom, chained through xi = s(beta h).
    out = O.dro_dpo_loss(*args, 0.5, 0.05, 8, worst_case=wc).sum()
    g_w = torch.autograd.grad(out, args[0])[0]
    atoms = torch.as_tensor(wc.atoms)
    d_xi = -(torch.as_tensor(wc.alpha) / atoms).sum(-1)
    assert torch.allclose(g_w, d_xi * xi * (1 - xi) * 0.5, atol=1e-10)


def test_tangent_error_shrinks_with_pieces():
    errors = [tangent_error(k) for k in (1, 2, 4, 8, 16)]
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert errors[3] < 0.15
