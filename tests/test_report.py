"""Metrics files, the over-seeds intervals and the verdict rule of the replication report."""
import json
import math

import pytest

from prefalign_lite import report, results


def test_seed_interval_is_the_student_t_interval():
    cell = report.seed_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n), sd = 1
    assert (cell.mean, cell.low, cell.high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert str(report.seed_interval([0.25])) == "0.250"
    with pytest.raises(ValueError, match="no values"):
        report.seed_interval([])


def test_holm_is_the_step_down_adjustment():
    assert report.holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert report.paired_p([0.1, 0.1, 0.1]) == pytest.approx(0.0, abs=1e-12) and report.paired_p([0.0, 0.0]) == 1.0
    assert report.paired_p([0.1, 0.2, 0.15, 0.12, 0.18]) == pytest.approx(0.00124, abs=1e-5)   # t = 8.1, 4 df


@pytest.mark.parametrize("diffs, p, word", [
    ([0.10, 0.11, 0.12, 0.10, 0.09], 0.001, "reproduced"),
    ([-0.10, -0.11, -0.12, -0.10, -0.09], 0.001, "opposite"),
    ([0.002, -0.003, 0.001, 0.0, -0.001], 0.8, "no effect"),
    ([0.10, -0.10, 0.05, 0.0, 0.02], 0.6, "inconclusive"),
    ([0.10, 0.11, 0.12, 0.10, 0.09], 0.08, "inconclusive"),   # significant alone, not after Holm
    ([0.9], math.nan, "inconclusive"),
])
def test_verdict_rule(diffs, p, word):
    assert report.decide(report.seed_interval(diffs), p) == word


def _fabricate(tmp_path, spa_wins, gates):
    for seed, (spa, passed) in enumerate(zip(spa_wins, gates)):
        results.save_metrics(tmp_path / f"seed{seed}" / "11_dpo_baselines",
                             {"seed_dpo": {"win_rate": 0.55 + seed / 1000}, "all_gold_dpo": {"win_rate": 0.62}})
        rounds = [{"win_rate": 0.55 + seed / 1000}, {"win_rate": 0.5, "gate": {"passed": passed}}, {"win_rate": spa},
                  {"win_rate": spa}]
        results.save_metrics(tmp_path / f"seed{seed}" / "13_spa",
                             {"spa": rounds, "by_fraction": {"0.1": rounds[:3]}})
    return report.tables(results.load_runs(tmp_path))


def test_tables_from_a_run_decide_by_the_rule_and_respect_the_gate(tmp_path):
    tables = _fabricate(tmp_path, [0.40, 0.42, 0.39, 0.41, 0.40], [True] * 5)
    verdicts = dict(v for t in tables for v in t.verdicts())
    assert verdicts == {"SPA beats DPO on the seed": "opposite", "SPA beats DPO on all gold (SPA vs Zephyr)": "opposite",
                        "SPA beats DPO with a 10.0% seed": "opposite"}
    assert "| SPA (3 rounds) | 0.404 [" in tables[0].markdown() and "15.39 / 21.13" in tables[0].markdown()
    assert tables[1].title.startswith("SPA Table 3") and "SPA (2 rounds), 3.3% seed" in tables[1].rows
    assert report.counts(tables)["opposite"] == 3
    json.dumps([t.markdown() for t in tables] + [report.summary(tables)])


def test_a_failed_gate_makes_its_claims_not_testable(tmp_path):
    tables = _fabricate(tmp_path, [0.40, 0.42, 0.39, 0.41, 0.40], [True, False, False, False, False])
    assert set(word for t in tables for _, word in t.verdicts()) == {"not testable"}
    assert "gate passed in 1 of 5 seeds" in tables[0].markdown()


def test_metrics_are_written_whole_and_gathered_by_seed(tmp_path):
    assert results.save_metrics("", {"a": 1}) is None
    for seed in (0, 2):
        results.save_metrics(tmp_path / f"seed{seed}" / "11_dpo_baselines", {"win": 0.5 + seed / 10})
    assert not list(tmp_path.rglob("*.partial"))
    assert results.load_runs(tmp_path) == {"11_dpo_baselines": {0: {"win": 0.5}, 2: {"win": 0.7}}}
    with pytest.raises(ValueError):
        results.save_metrics(tmp_path / "bad", {"loss": float("nan")})
    assert not (tmp_path / "bad" / "metrics.json").exists()
