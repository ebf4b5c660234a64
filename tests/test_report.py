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


@pytest.mark.parametrize("a, b, word", [
    ([0.60, 0.61, 0.62], [0.50, 0.50, 0.51], "reproduced"),
    ([0.40, 0.41, 0.42], [0.50, 0.50, 0.51], "not reproduced"),
    ([0.60, 0.40, 0.55], [0.50, 0.50, 0.50], "inconclusive"),
    ([0.90], [0.10], "inconclusive"),
])
def test_verdict_rule(a, b, word):
    assert report.verdict(a, b)[1] == word
    with pytest.raises(ValueError, match="paired"):
        report.verdict(a, b + [0.5])


def test_metrics_are_written_whole_and_gathered_by_seed(tmp_path):
    assert results.save_metrics("", {"a": 1}) is None
    for seed in (0, 2):
        results.save_metrics(tmp_path / f"seed{seed}" / "11_dpo_baselines", {"win": 0.5 + seed / 10})
    assert not list(tmp_path.rglob("*.partial"))
    assert results.load_runs(tmp_path) == {"11_dpo_baselines": {0: {"win": 0.5}, 2: {"win": 0.7}}}
    with pytest.raises(ValueError):
        results.save_metrics(tmp_path / "bad", {"loss": float("nan")})
    assert not (tmp_path / "bad" / "metrics.json").exists()


def test_tables_from_a_run(tmp_path):
    """The Table 1 claims from three fabricated seeds: the rule, not the eye, decides."""
    for seed, (seed_dpo, spa, gold) in enumerate([(0.52, 0.40, 0.56), (0.51, 0.42, 0.57), (0.53, 0.39, 0.55)]):
        results.save_metrics(tmp_path / f"seed{seed}" / "11_dpo_baselines",
                             {"seed_dpo": {"win_rate": seed_dpo}, "all_gold_dpo": {"win_rate": gold}})
        results.save_metrics(tmp_path / f"seed{seed}" / "12_spa",
                             {"spa": [{"win_rate": seed_dpo}, {"win_rate": spa}],
                              "by_fraction": {"0.033": [{"win_rate": seed_dpo}, {"win_rate": spa}]}})
    tables = report.tables(results.load_runs(tmp_path))
    verdicts = dict(tables[0].verdicts())
    assert verdicts == {"SPA beats DPO on the seed": "not reproduced", "SPA beats DPO on all gold (SPA vs Zephyr)": "not reproduced",
                        "DPO on all gold beats the SFT model": "reproduced"}
    assert "| SPA (3 rounds) | 0.403 [" in tables[0].markdown() and tables[1].title.startswith("SPA Table 3")
    json.dumps([t.markdown() for t in tables])
