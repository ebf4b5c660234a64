"""Each objective plugged into the trainer on the tiny model: finite, and reducing to DPO where
the papers say it must."""
import pytest
import torch
from helpers import perturbed_policy, plain_rows, reference_of

from prefalign_lite.engine import losses, trainer
from prefalign_lite.settings import EmbeddedSetting

QUALITY = EmbeddedSetting.quality_prompt   # the embedded world's quality instruction


@pytest.fixture(scope="module")
def step():
    _, policy, ref, tok = perturbed_policy(seed=1)
    rows = plain_rows(16, seed=9)

    def run(objective, step_index=50, total=100):
        t = trainer.PreferenceTrainer(policy, tok, objective, reference_of(ref), trainer.TrainConfig(progress=False))
        with torch.no_grad():
            x = t.step_inputs(rows, step_index, total)
        return objective(x)
    return run


def test_every_plugin_gives_a_finite_per_example_loss(step):
    for objective in (losses.Dpo(0.1), losses.Ipo(0.1), losses.Ipo(0.1, length_normalised=True), losses.Slic(0.1),
                      losses.Cdpo(0.1, 0.1), losses.Simpo(2.0, 0.5), losses.SpaRefined(), losses.SpaRefined(decoupled=False),
                      losses.SrDpo(0.1, 0.5, QUALITY), losses.SrDpo(0.1, 0.5, None), losses.SrDpo(0.1, 0.5, QUALITY, ipo_form=True), losses.DroDpo()):
        loss, metrics = step(objective)
        assert loss.shape == (16,) and torch.isfinite(loss).all()


def test_reductions_to_dpo(step):
    dpo = step(losses.Dpo(0.1))[0]
    assert torch.allclose(step(losses.SpaRefined(alpha=0.0))[0], dpo)
    assert torch.allclose(step(losses.SpaRefined(), step_index=5)[0], dpo)  # still in the 20% warm-up
    assert torch.allclose(step(losses.SrDpo(0.1, 0.0, QUALITY))[0], dpo)
    assert torch.allclose(step(losses.DroDpo(epsilon=0.0))[0], dpo, atol=1e-6)


def test_spa_flags_and_sr_dpo_delta_are_live(step):
    _, metrics = step(losses.SpaRefined(k=0.25))
    assert 0 < metrics["noise_share"] < 1   # tau is 0 until the window fills (authors code): margins <= 0 are flagged
    _, with_prompt = step(losses.SrDpo(0.1, 0.5, QUALITY))
    _, naive = step(losses.SrDpo(0.1, 0.5, None))
    assert with_prompt["delta"] != pytest.approx(naive["delta"])


def test_spa_decoupled_detection_uses_chunked_eq12_equal_to_the_full_logits():
    from prefalign_lite import objectives as O
    from prefalign_lite.engine import logps

    _, policy, ref, tok = perturbed_policy(seed=1)
    rows = plain_rows(16, seed=9)
    objective = losses.SpaRefined(lam=0.5)
    assert objective.extrapolate_lam == 0.5 and not objective.needs_logits  # no full logits kept
    run = trainer.PreferenceTrainer(policy, tok, objective, reference_of(ref),
                                    trainer.TrainConfig(progress=False, logit_chunk_elements=policy.config.vocab_size * 5))
    with torch.no_grad():
        x = run.step_inputs(rows, 50, 100)
        batch = run.encode(rows)
        full_pol = logps.forward_pass(policy, batch, full_logits=True).logits
        full_ref = logps.forward_pass(ref, batch, full_logits=True).logits
    want_w, want_l = logps.split_pairs(logps.extrapolated_pair_logps(full_pol, full_ref, batch.labels, 0.5))
    assert x.policy_logits is None and x.ref_logits is None
    assert torch.allclose(x.ext_w, want_w, atol=1e-5) and torch.allclose(x.ext_l, want_l, atol=1e-5)
    assert not torch.allclose(x.ext_w, x.pi_w, atol=1e-3)  # lambda > 0 changes the log-probs
    with pytest.raises(ValueError, match="needs ext_w/ext_l"):
        objective(losses.StepInputs(x.pi_w, x.pi_l, x.ref_w, x.ref_l, x.len_w, x.len_l, 50, 100, rows))
    assert O.log_ratio_margin(x.ext_w, x.ext_l, x.ref_w, x.ref_l).shape == (16,)


def test_the_registry_builds_every_loss_by_name_and_refuses_others():
    assert set(losses.LOSSES) == {"dpo", "ipo", "slic", "cdpo", "simpo", "spa_refined", "sr_dpo", "dro_dpo", "dro_round"}
    assert losses.make("dpo", beta=0.3) == losses.Dpo(0.3)
    assert losses.make("spa_refined", lam=0.25).extrapolate_lam == 0.25
    assert losses.make("spa_refined", decoupled=False).extrapolate_lam is None
    assert losses.make("sr_dpo", beta=0.1, lam=0.5, prefix="be good").augment_prefix == "be good"
    with pytest.raises(ValueError, match="unknown loss 'dpoo'"):
        losses.make("dpoo", beta=0.1)


def test_simpo_logs_its_own_length_normalised_margin_not_beta_h():
    ones = torch.ones(2)
    x = losses.StepInputs(torch.tensor([-2.0, -6.0]), torch.tensor([-4.0, -3.0]), torch.zeros(2), torch.zeros(2),
                          torch.tensor([2.0, 3.0]), torch.tensor([4.0, 1.0]), 0, 1, [{}, {}])
    assert torch.allclose(losses.Simpo(2.0).margin(x), torch.tensor([2.0 * (-1.0 + 1.0), 2.0 * (-2.0 + 3.0)]))
    assert torch.allclose(losses.Dpo(2.0).margin(x), 2.0 * (x.pi_w - x.pi_l) * ones)
