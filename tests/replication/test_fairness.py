"""The fairness checks (docs/protocol.md §4) from fabricated baseline metrics, and the rules that
choose the learning rate and Sr-DPO's lambda."""
import math

import pytest

from prefalign_lite.methods.experiments import Baselines, Checks
from prefalign_lite.replication import fairness


def _seed(i, sensitivity=0.06, agreement=0.77, ratio=1.0, corr=0.5):
    return {Baselines.sft: {"perfect_share": 0.1 + i / 1000, "quality_gain": 0.2, "judge_accuracy": 0.7 + i / 1000},
            Baselines.all_gold: {"win_rate": 0.62 + i / 1000}, Baselines.seed_dpo: {"win_rate": 0.51},
            Checks.label_sensitivity: {"difference": sensitivity + i / 1000},
            Checks.offline_agreement: {"label_accuracy": agreement + i / 1000},
            Checks.sr_precondition: {"delta_abs_mean": ratio * (0.2 + i / 1000), "beta_h_abs_mean": 0.2 + i / 1000,
                                     "corr_delta_gold": corr + i / 100}}


def _checks(**kw):
    return {c["check"]: c for c in fairness.checks({i: _seed(i, **kw) for i in range(5)})}


def test_every_check_of_the_protocol_is_computed_and_passes_on_a_fair_world():
    found = _checks()
    assert set(found) == set(fairness.CHECKS) and all(c["passed"] for c in found.values())
    assert found["label_sensitivity"]["value"] == pytest.approx(0.062)
    assert found["sr_dpo_precondition_ratio"]["value"] == pytest.approx(1.0)


@pytest.mark.parametrize("change, check", [
    ({"sensitivity": 0.03}, "label_sensitivity"),
    ({"agreement": 0.95}, "offline_label_agreement"),
    ({"agreement": 0.6}, "offline_label_agreement"),
    ({"ratio": 0.1}, "sr_dpo_precondition_ratio"),
    ({"corr": -0.3}, "sr_dpo_precondition_corr"),
])
def test_a_world_that_misses_a_threshold_fails_that_check_only(change, check):
    found = _checks(**change)
    assert [name for name, c in found.items() if not c["passed"]] == [check]


def test_a_run_without_the_new_measurements_is_checked_on_what_it_has():
    old = {i: {k: v for k, v in _seed(i).items() if k in (Baselines.sft, Baselines.all_gold, Baselines.seed_dpo)} for i in range(3)}
    assert [c["check"] for c in fairness.checks(old)] == list(fairness.CHECKS)[:5]


def test_one_seed_gives_no_interval_and_fails_every_interval_check():
    found = {c["check"]: c for c in fairness.checks({0: _seed(0)})}
    assert math.isnan(found["label_sensitivity"]["low"]) and not found["label_sensitivity"]["passed"]
    assert all(e["low"] is None for e in fairness.jsonable(list(found.values())))


def test_the_learning_rate_and_lambda_rules():
    grid = [{"learning_rate": 5e-5, "kl_init": 0.1, "win_low": 0.51}, {"learning_rate": 1e-4, "kl_init": 0.4, "win_low": 0.55},
            {"learning_rate": 2e-4, "kl_init": 0.9, "win_low": 0.6}]
    assert fairness.choose_learning_rate(grid) == 1e-4
    with pytest.raises(ValueError, match="no rate gains"):
        fairness.choose_learning_rate([{"learning_rate": 1e-3, "kl_init": 2.0, "win_low": 0.6}])
    lams = [{"lam": 0.1, "win_rate": 0.55}, {"lam": 0.3, "win_rate": 0.58}, {"lam": 0.5, "win_rate": 0.58}, {"lam": 1.0, "win_rate": 0.5}]
    assert fairness.choose_sr_lambda(lams) == 0.3   # a tie goes to the smaller lambda
