"""The verdict rule and the tables of the replication report, on fabricated runs."""
import math

import pytest

from prefalign_lite.core import stats
from prefalign_lite.methods.experiments import Baselines, Spa
from prefalign_lite.replication import report, results, verdicts


@pytest.mark.parametrize("diffs, p, word", [
    ([0.10, 0.11, 0.12, 0.10, 0.09], 0.001, "reproduced"),
    ([-0.10, -0.11, -0.12, -0.10, -0.09], 0.001, "opposite"),
    ([0.002, -0.003, 0.001, 0.0, -0.001], 0.8, "no effect"),
    ([0.10, -0.10, 0.05, 0.0, 0.02], 0.6, "inconclusive"),
    ([0.10, 0.11, 0.12, 0.10, 0.09], 0.08, "inconclusive"),   # significant alone, not after Holm
    ([0.9], math.nan, "inconclusive"),
])
def test_verdict_rule(diffs, p, word):
    assert verdicts.decide(stats.seed_interval(diffs), p) == word


def _fabricate(tmp_path, spa_wins, gates):
    for seed, (spa, passed) in enumerate(zip(spa_wins, gates)):
        results.save_metrics(tmp_path / f"seed{seed}" / Baselines.stage,
                             {Baselines.seed_dpo: {"win_rate": 0.55 + seed / 1000}, Baselines.all_gold: {"win_rate": 0.62}})
        rounds = [{"win_rate": 0.55 + seed / 1000}, {"win_rate": 0.5}, {"win_rate": spa}, {"win_rate": spa}]
        gate = {"passed": passed}
        results.save_metrics(tmp_path / f"seed{seed}" / Spa.stage,
                             {Spa.run: {"rounds": rounds, "gate": gate}, Spa.by_fraction: {"0.1": {"rounds": rounds[:3], "gate": gate}}})
    return report.tables(results.load_runs(tmp_path))


def test_tables_from_a_run_decide_by_the_rule_and_respect_the_gate(tmp_path):
    tables = _fabricate(tmp_path, [0.40, 0.42, 0.39, 0.41, 0.40], [True] * 5)
    decided = dict(v for t in tables for v in t.verdicts())
    assert decided == {"SPA beats DPO on the seed": "opposite", "SPA beats DPO on all gold (SPA vs Zephyr)": "opposite",
                        "SPA beats DPO with a 10.0% seed": "opposite"}
    assert "| SPA (3 rounds) | 0.404 [" in tables[0].markdown() and "15.39 / 21.13" in tables[0].markdown()
    assert tables[1].title.startswith("SPA Table 3") and "SPA (2 rounds), 3.3% seed" in tables[1].rows
    assert verdicts.counts(tables)["opposite"] == 3
    assert "| SPA Table 1 | SPA beats DPO on the seed | -0.1" in verdicts.summary(tables)


def test_a_failed_gate_makes_its_claims_not_testable(tmp_path):
    tables = _fabricate(tmp_path, [0.40, 0.42, 0.39, 0.41, 0.40], [True, False, False, False, False])
    assert set(word for t in tables for _, word in t.verdicts()) == {"not testable"}
    assert "gate passed in 1 of 5 seeds" in tables[0].markdown()
