"""Each objective against a slow, obvious version; gradchecks in float64; analytic gradients;
the invariants between objectives; and bad inputs."""
import inspect
import math

import pytest
import torch

from prefalign_lite import objectives as O

B = 7


def rand(*shape, seed=0, dtype=torch.float64, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_(True)


def four(seed=0, dtype=torch.float64):
    return [rand(B, seed=seed + i, dtype=dtype) for i in range(4)]


def slow(f):
    """Apply a scalar formula row by row with the math module: the obvious version."""
    def run(*cols):
        rows = zip(*[c.detach().tolist() if isinstance(c, torch.Tensor) else [c] * B for c in cols])
        return torch.tensor([f(*r) for r in rows], dtype=torch.float64)
    return run


sig = lambda v: 1.0 / (1.0 + math.exp(-v))
logsig = lambda v: -math.log1p(math.exp(-v)) if v > 0 else v - math.log1p(math.exp(v))
H = lambda pw, pl, rw, rl: (pw - rw) - (pl - rl)


def test_public_api_matches_spec():
    expected = {
        "dpo_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "beta"],
        "ipo_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "beta"],
        "slic_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "beta"],
        "simpo_loss": ["pi_w_avg", "pi_l_avg", "beta", "gamma"],
        "cdpo_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "beta", "label_smoothing"],
        "spa_preference": ["pi_1", "pi_2", "init_1", "init_2", "beta"],
        "spa_refined_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "z", "beta", "alpha"],
        "extrapolated_logps": ["policy_logits", "ref_logits", "labels", "lam"],
        "sera_margin": ["pi_w", "pi_l", "ref_w", "ref_l"],
        "sera_ensemble_reward": ["logp_t1", "logp_t2", "logp_t3", "gamma"],
        "sr_refinement": ["pi_aug_w", "pi_aug_l", "ref_aug_w", "ref_aug_l", "beta"],
        "sr_dpo_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "delta", "beta", "lam"],
        "sr_ipo_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "delta", "beta", "lam"],
        "dro_worst_case": ["xi", "epsilon", "n_pieces"],
        "dro_dpo_loss": ["pi_w", "pi_l", "ref_w", "ref_l", "beta", "epsilon", "n_pieces"],
    }
    for name, args in expected.items():
        params = list(inspect.signature(getattr(O, name)).parameters)
        assert params[: len(args)] == args, name
        assert "Eq." in getattr(O, name).__doc__ or "Algorithm" in getattr(O, name).__doc__, name
    assert inspect.signature(O.sera_ensemble_reward).parameters["gamma"].default == 0.3


BETA, ALPHA, LAM, EPS_LS, GAMMA = 0.1, 0.3, 0.5, 0.2, 0.4
Z = torch.tensor([0, 1, 0, 1, 1, 0, 1], dtype=torch.float64)
DELTA = rand(B, seed=42).detach()  # Sr-DPO's Delta is data to the loss (stop-gradient)

CASES = {
    "dpo": (lambda a, b, c, d: O.dpo_loss(a, b, c, d, BETA),
            slow(lambda a, b, c, d: -logsig(BETA * H(a, b, c, d)))),
    "ipo": (lambda a, b, c, d: O.ipo_loss(a, b, c, d, BETA),
            slow(lambda a, b, c, d: (H(a, b, c, d) - 1 / (2 * BETA)) ** 2)),
    "slic": (lambda a, b, c, d: O.slic_loss(a, b, c, d, BETA),
             slow(lambda a, b, c, d: max(0.0, 1 - BETA * H(a, b, c, d)))),
    "cdpo": (lambda a, b, c, d: O.cdpo_loss(a, b, c, d, BETA, EPS_LS),
             slow(lambda a, b, c, d: -(1 - EPS_LS) * logsig(BETA * H(a, b, c, d)) - EPS_LS * logsig(-BETA * H(a, b, c, d)))),
    "spa_preference": (lambda a, b, c, d: O.spa_preference(a, b, c, d, BETA),
                       slow(lambda a, b, c, d: sig(BETA * H(a, b, c, d)))),
    "spa_refined": (lambda a, b, c, d: O.spa_refined_loss(a, b, c, d, Z, BETA, ALPHA),
                    lambda a, b, c, d: slow(lambda a, b, c, d, z: -(1 - ALPHA * z) * logsig(BETA * H(a, b, c, d)) - ALPHA * z * logsig(-BETA * H(a, b, c, d)))(a, b, c, d, Z)),
    "sera_margin": (O.log_ratio_margin, slow(H)),
    "sera_ensemble": (lambda a, b, c, d: O.sera_ensemble_reward(a, b, c, GAMMA),
                      slow(lambda a, b, c, d: (1 - GAMMA) * (a - b) + GAMMA * (b - c))),
    "sr_refinement": (lambda a, b, c, d: O.sr_refinement(a, b, c, d, BETA),
                      slow(lambda a, b, c, d: BETA * H(a, b, c, d))),
    "sr_dpo": (lambda a, b, c, d: O.sr_dpo_loss(a, b, c, d, DELTA.to(a.dtype), BETA, LAM),
               lambda *x: slow(lambda a, b, c, d, e: -logsig(BETA * H(a, b, c, d) - LAM * e))(*x, DELTA)),
    "sr_ipo": (lambda a, b, c, d: O.sr_ipo_loss(a, b, c, d, DELTA.to(a.dtype), BETA, LAM),
               lambda *x: slow(lambda a, b, c, d, e: (H(a, b, c, d) - LAM * e - 1 / (2 * BETA)) ** 2)(*x, DELTA)),
    "simpo": (lambda a, b, c, d: O.simpo_loss(a, b, BETA, GAMMA),
              slow(lambda a, b, c, d: -logsig(BETA * (a - b) - GAMMA))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_slow_version(name):
    fast, reference = CASES[name]
    for seed in range(3):
        args = four(seed)
        out = fast(*args)
        assert out.shape == (B,)
        assert torch.allclose(out.double(), reference(*args), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_agrees_with_float64(name):
    fast, _ = CASES[name]
    args64 = four(1)
    args32 = [a.detach().float() for a in args64]
    out32 = fast(*args32)
    assert out32.dtype == torch.float32
    assert torch.allclose(out32.double(), fast(*args64).detach(), atol=1e-4, rtol=1e-4)


GRADCHECKED = sorted(set(CASES) - {"slic"}) + ["slic_away_from_kink", "extrapolated_logps",
                                                 "ipo_length_normalised"]


@pytest.mark.parametrize("name", GRADCHECKED)
def test_gradcheck(name):
    if name == "slic_away_from_kink":
        args = [rand(B, seed=s, scale=20.0) for s in range(4)]
        h = O.log_ratio_margin(*args).detach()
        assert (abs(1 - BETA * h) > 1e-3).all()
        fn = lambda a, b, c, d: O.slic_loss(a, b, c, d, BETA)
    elif name == "extrapolated_logps":
        pol, ref = rand(2, 3, 5, seed=1), rand(2, 3, 5, seed=2)
        labels = torch.tensor([[1, 4, -100], [0, 2, 3]])
        assert torch.autograd.gradcheck(lambda p, r: O.extrapolated_logps(p, r, labels, LAM), (pol, ref))
        return
    elif name == "ipo_length_normalised":
        lw, ll = torch.tensor([3.0] * B, dtype=torch.float64), torch.tensor([5.0] * B, dtype=torch.float64)
        args, fn = four(3), lambda a, b, c, d: O.ipo_loss(a, b, c, d, BETA, len_w=lw, len_l=ll)
    else:
        args, fn = four(5), CASES[name][0]
    assert torch.autograd.gradcheck(fn, tuple(args))


def _grad(fn, args):
    out = fn(*args).sum()
    return torch.autograd.grad(out, args, allow_unused=True)


def test_analytic_gradient_dpo():
    # d/dpi_w [-log s(b h)] = -b s(-b h) ; d/dpi_l = +b s(-b h)  (derived in notebook 01)
    args = four(7)
    h = O.log_ratio_margin(*args).detach()
    g_w, g_l, _, _ = _grad(lambda a, b, c, d: O.dpo_loss(a, b, c, d, BETA), args)
    assert torch.allclose(g_w, -BETA * torch.sigmoid(-BETA * h), atol=1e-14)
    assert torch.allclose(g_l, BETA * torch.sigmoid(-BETA * h), atol=1e-14)


def test_analytic_gradient_spa_refined_is_reweighted_dpo():
    # d/dpi_w = -b [(1 - a z) s(-b h) - a z s(b h)]  (notebook 02): DPO's weight, minus a pull back
    args = four(8)
    h = O.log_ratio_margin(*args).detach()
    g_w, g_l, _, _ = _grad(lambda a, b, c, d: O.spa_refined_loss(a, b, c, d, Z, BETA, ALPHA), args)
    expected = -BETA * ((1 - ALPHA * Z) * torch.sigmoid(-BETA * h) - ALPHA * Z * torch.sigmoid(BETA * h))
    assert torch.allclose(g_w, expected, atol=1e-14)
    assert torch.allclose(g_l, -expected, atol=1e-14)


def test_analytic_gradient_sr_dpo_and_no_gradient_to_delta():
    # d/dpi_w = -b s(-(b h - lam D)): a DPO gradient with a per-pair shifted margin (notebook 04)
    *args, = four(9)
    delta = rand(B, seed=99)
    out = O.sr_dpo_loss(*args, delta, BETA, LAM).sum()
    g = torch.autograd.grad(out, args + [delta], allow_unused=True)
    h = O.log_ratio_margin(*args).detach()
    assert torch.allclose(g[0], -BETA * torch.sigmoid(-(BETA * h - LAM * delta.detach())), atol=1e-14)
    assert g[4] is None  # the stop-gradient: Delta receives nothing
    out_ipo = O.sr_ipo_loss(*args, delta, BETA, LAM).sum()
    assert torch.autograd.grad(out_ipo, [delta], allow_unused=True)[0] is None


def test_invariants():
    args = four(11)
    dpo = O.dpo_loss(*args, BETA)
    assert torch.equal(O.spa_refined_loss(*args, Z, BETA, 0.0), dpo)
    assert torch.equal(O.spa_refined_loss(*args, torch.zeros(B), BETA, ALPHA), dpo)
    assert torch.equal(O.cdpo_loss(*args, BETA, 0.0), dpo)
    assert torch.equal(O.sr_dpo_loss(*args, rand(B, seed=5), BETA, 0.0), dpo)
    assert torch.equal(O.sr_ipo_loss(*args, rand(B, seed=5), BETA, 0.0), O.ipo_loss(*args, BETA))
    a, b, c = args[:3]
    assert torch.equal(O.sera_ensemble_reward(a, b, c, gamma=0.0), O.sera_ensemble_reward(a, b))
    assert torch.equal(O.sera_ensemble_reward(a, b), a - b)
    # SPA's judge is the probability of y1 over y2; swapping the pair gives its complement.
    p = O.spa_preference(*args, BETA)
    q = O.spa_preference(args[1], args[0], args[3], args[2], BETA)
    assert torch.allclose(p + q, torch.ones(B, dtype=torch.float64), atol=1e-15)
    assert torch.equal(O.spa_label(p), p > 0.5)
    # DPO at h = 0 is log 2; the SimPO margin with gamma = 0 is DPO with no reference.
    zero = torch.zeros(B, dtype=torch.float64)
    assert torch.allclose(O.dpo_loss(zero, zero, zero, zero, BETA), torch.full((B,), math.log(2), dtype=torch.float64))
    assert torch.allclose(O.simpo_loss(a, b, BETA), O.dpo_loss(a, b, zero, zero, BETA))


def test_extrapolated_logps_lambda_zero_is_policy_and_differs_from_mixture():
    pol, ref = rand(3, 4, 11, seed=1).detach(), rand(3, 4, 11, seed=2).detach()
    labels = torch.tensor([[1, 4, -100, -100], [0, 2, 3, 10], [-100, 5, 5, 5]])
    mask = labels != -100
    tok = lambda logits: torch.log_softmax(logits, -1).gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    own = (tok(pol) * mask).sum(-1)
    assert torch.allclose(O.extrapolated_logps(pol, ref, labels, 0.0), own, atol=1e-12)
    slow_mixed = torch.tensor([
        sum(torch.log_softmax((1 + LAM) * pol[b, t] - LAM * ref[b, t], -1)[labels[b, t]].item()
            for t in range(4) if labels[b, t] != -100) for b in range(3)], dtype=torch.float64)
    assert torch.allclose(O.extrapolated_logps(pol, ref, labels, LAM), slow_mixed, atol=1e-12)
    naive = (1 + LAM) * own - LAM * (tok(ref) * mask).sum(-1)
    assert (O.extrapolated_logps(pol, ref, labels, LAM) - naive).abs().min() > 1e-3


BAD = [
    ("pi_l", lambda: O.dpo_loss(torch.zeros(3), torch.zeros(4), torch.zeros(3), torch.zeros(3), 0.1)),
    ("ref_w", lambda: O.dpo_loss(torch.zeros(3), torch.zeros(3), torch.tensor([0.0, float("nan"), 0.0]), torch.zeros(3), 0.1)),
    ("pi_w", lambda: O.ipo_loss(torch.tensor([float("inf"), 0, 0]), torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.1)),
    ("beta", lambda: O.dpo_loss(*[torch.zeros(3)] * 4, 0.0)),
    ("beta", lambda: O.slic_loss(*[torch.zeros(3)] * 4, -1.0)),
    ("beta", lambda: O.sr_dpo_loss(*[torch.zeros(3)] * 5, float("nan"), 0.5)),
    ("beta", lambda: O.spa_preference(*[torch.zeros(3)] * 4, 0)),
    ("z", lambda: O.spa_refined_loss(*[torch.zeros(3)] * 4, torch.tensor([0.0, 0.5, 1.0]), 0.1, 0.1)),
    ("z", lambda: O.spa_refined_loss(*[torch.zeros(3)] * 4, torch.tensor([0.0, 1.0]), 0.1, 0.1)),
    ("alpha", lambda: O.spa_refined_loss(*[torch.zeros(3)] * 4, torch.zeros(3), 0.1, 1.5)),
    ("label_smoothing", lambda: O.cdpo_loss(*[torch.zeros(3)] * 4, 0.1, 0.7)),
    ("delta", lambda: O.sr_dpo_loss(*[torch.zeros(3)] * 4, torch.zeros(2), 0.1, 0.5)),
    ("lam", lambda: O.sr_ipo_loss(*[torch.zeros(3)] * 5, 0.1, -1.0)),
    ("gamma", lambda: O.sera_ensemble_reward(*[torch.zeros(3)] * 3, gamma=1.5)),
    ("logp_t3", lambda: O.sera_ensemble_reward(torch.zeros(3), torch.zeros(3), torch.zeros(2))),
    ("labels", lambda: O.extrapolated_logps(torch.zeros(2, 3, 5), torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long), 0.5)),
    ("labels", lambda: O.extrapolated_logps(torch.zeros(2, 3, 5), torch.zeros(2, 3, 5), torch.full((2, 3), 7), 0.5)),
    ("ref_logits", lambda: O.extrapolated_logps(torch.zeros(2, 3, 5), torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), 0.5)),
    ("pi_w", lambda: O.dpo_loss(torch.zeros(3, dtype=torch.long), *[torch.zeros(3)] * 3, 0.1)),
    ("len_w", lambda: O.ipo_loss(*[torch.zeros(3)] * 4, 0.1, len_w=torch.zeros(3), len_l=torch.ones(3))),
    ("epsilon", lambda: O.dro_worst_case(torch.full((3,), 0.5), -0.1, 4)),
    ("n_pieces", lambda: O.dro_worst_case(torch.full((3,), 0.5), 0.1, 0)),
    ("xi", lambda: O.dro_worst_case(torch.tensor([0.5, 1.2]), 0.1, 4)),
    ("beta", lambda: O.dro_dpo_loss(*[torch.zeros(3)] * 4, 0.0, 0.1, 4)),
]


@pytest.mark.parametrize("argument,call", BAD, ids=[f"{i}-{a}" for i, (a, _) in enumerate(BAD)])
def test_bad_input_raises_value_error_naming_the_argument(argument, call):
    with pytest.raises(ValueError, match=argument):
        call()
