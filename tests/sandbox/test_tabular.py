"""The tabular Bradley-Terry sandbox: DPO reaches the exact optimum; SPA's flag finds noise."""
import pytest
import torch

from prefalign_lite import objectives as O
from prefalign_lite.sandbox import tabular as toy


def test_dpo_reaches_the_exact_optimum():
    box = toy.make_sandbox(n_prompts=8, n_responses=6, seed=0)
    beta = 0.5
    target = box.optimal_policy(beta)
    pairs = toy.all_pairs(box)
    dpo = lambda logits, batch, step: O.dpo_loss(*toy.tabular_logps(box, logits, batch), beta)
    _, kls = toy.train_tabular(box, pairs, dpo, steps=600, lr=0.1, target=target)
    print(f"KL(pi* || pi_DPO) after 600 steps: {kls[-1]:.2e} (start {kls[0]:.3f})")
    assert kls[0] > 0.1
    assert kls[-1] < 1e-6


def test_optimum_closed_form():
    box = toy.make_sandbox(seed=1)
    pi = box.optimal_policy(2.0)
    ratio = (pi.log() - torch.log_softmax(box.ref_logits, -1)) * 2.0 - box.rewards
    # beta log(pi*/pi_ref) - r is a per-prompt constant (the log-partition function).
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-12)


def test_annotator_knobs():
    box = toy.make_sandbox(n_prompts=10, n_responses=8, seed=2)
    clean = toy.sample_pairs(box, 20000, temperature=1e-3, seed=0)
    assert clean.flipped.double().mean().item() == pytest.approx(0.0, abs=1e-3)
    flipped = toy.sample_pairs(box, 20000, flip_rate=0.3, temperature=1e-3, seed=0)
    assert flipped.flipped.double().mean().item() == pytest.approx(0.3, abs=0.015)
    fair = toy.sample_pairs(box, 20000, temperature=1.0, seed=0)
    biased = toy.sample_pairs(box, 20000, temperature=1.0, length_bias=1.0, seed=0)
    longer = lambda p: (box.lengths[p.prompt, p.chosen] > box.lengths[p.prompt, p.rejected]).double().mean().item()
    print(f"chosen is longer: fair {longer(fair):.3f}, length-biased {longer(biased):.3f}")
    assert longer(fair) < 0.55 and longer(biased) > 0.75
    assert biased.flipped.double().mean() > fair.flipped.double().mean() + 0.05


def test_spa_flag_precision_beats_the_noise_rate():
    box = toy.make_sandbox(n_prompts=8, n_responses=6, seed=0)
    pairs = toy.sample_pairs(box, 4000, flip_rate=0.2, seed=1)
    noise = pairs.flipped.double().mean().item()
    spa = toy.SpaTabularLoss(box, beta=0.1, alpha=0.1, k=0.1, lam=0.5, total_steps=600)
    toy.train_tabular(box, pairs, spa, steps=600, lr=0.05, batch_size=32, seed=0)
    precision, recall = spa.precision_recall()
    print(f"SPA noise flag: precision {precision:.3f} recall {recall:.3f} vs noise share {noise:.3f}")
    assert precision > noise + 0.3
    assert 0.1 < recall < 0.6
