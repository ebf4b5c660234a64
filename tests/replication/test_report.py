"""The verdict rule (docs/protocol.md §7) and the report's tables, on fabricated runs."""
import math

import pytest

from prefalign_lite.core import stats
from prefalign_lite.methods.experiments import Baselines, Spa
from prefalign_lite.replication import report, results, verdicts


def _decide(diffs, margin=0.02, **claim):
    table = verdicts.Table("T", {"A": [0.5 + d for d in diffs], "B": [0.5] * len(diffs)}, list(range(len(diffs))),
                           [verdicts.Claim("A beats B", "A", "B", margin=margin, **claim)])
    return verdicts.decide_all([table])[0].claims[0]


UP = [0.030, 0.034, 0.028, 0.031, 0.033, 0.029, 0.032, 0.030]


@pytest.mark.parametrize("diffs, margin, claim, word", [
    (UP, 0.02, {}, "reproduced"),
    ([-d for d in UP], 0.02, {}, "opposite"),
    ([0.002, -0.003, 0.001, 0.0, -0.001, 0.002, -0.002, 0.001], 0.02, {}, "no effect"),
    ([0.004, 0.005, 0.006, 0.004, 0.005, 0.006, 0.005, 0.004], 0.05, {}, "reproduced"),   # inside the margin, but not 0
    ([0.10, -0.10, 0.05, 0.0, 0.02, -0.06, 0.08, -0.03], 0.02, {}, "inconclusive"),
    ([0.002, -0.003, 0.001, 0.0, -0.001, 0.002, -0.002, 0.001], 0.0, {}, "inconclusive"),  # a zero margin shows nothing
    (UP, 0.02, {"testable": False}, "not testable"),
    (UP, 0.02, {"diagnostic": verdicts.Diagnostic("flag precision", None, void=True)}, "void"),
])
def test_verdict_rule(diffs, margin, claim, word):
    assert _decide(diffs, margin, **claim).verdict == word


def test_an_interval_that_excludes_zero_is_never_no_effect():
    small = [0.004, 0.006, 0.005, 0.004, 0.006, 0.005, 0.005, 0.004, 0.006, 0.005, 0.004, 0.005]
    claim = _decide(small, margin=0.05)
    assert claim.diff.low > 0 and claim.verdict != "no effect"


def test_holm_covers_both_tests_of_every_claim_and_the_mde_is_reported():
    tables = [verdicts.Table("T", {"A": [0.5 + d for d in UP], "B": [0.5] * 8, "C": [0.5] * 8}, list(range(8)),
                             [verdicts.Claim("A beats B", "A", "B"), verdicts.Claim("C beats B", "C", "B")])]
    a, c = verdicts.decide_all(tables)[0].claims
    raw = [a.p, c.p, a.p_tost, c.p_tost]
    assert [a.adjusted_p, c.adjusted_p, a.adjusted_p_tost, c.adjusted_p_tost] == pytest.approx(stats.holm(raw), nan_ok=True)
    sd = stats.sample_sd(UP)
    assert a.mde == pytest.approx(stats.minimum_detectable_effect(sd, 8, 0.05 / 4, 0.8))


def _fabricate(tmp_path, spa_wins, eq7, seed_wins=0.56):
    for seed, (spa, acc) in enumerate(zip(spa_wins, eq7)):
        results.save_metrics(tmp_path / f"seed{seed}" / Baselines.stage,
                             {Baselines.seed_dpo: {"win_rate": seed_wins + seed / 1000}, Baselines.all_gold: {"win_rate": 0.62}})
        rounds = [{"win_rate": seed_wins + seed / 1000}, {"win_rate": 0.5}, {"win_rate": spa}, {"win_rate": spa}]
        gate = {"eq7_accuracy": acc, "passed": acc > 0.6}
        results.save_metrics(tmp_path / f"seed{seed}" / Spa.stage,
                             {Spa.run: {"rounds": rounds, "gate": gate}, Spa.by_fraction: {"0.1": {"rounds": rounds[:3], "gate": gate}}})
    return report.tables(results.load_runs(tmp_path))


def test_tables_from_a_run_decide_by_the_rule_with_a_pooled_gate(tmp_path):
    tables = _fabricate(tmp_path, [0.40, 0.42, 0.39, 0.41, 0.40], [0.66, 0.63, 0.70, 0.61, 0.65])
    decided = dict(v for t in tables for v in t.verdicts())
    assert decided == {"SPA beats DPO on the seed": "opposite", "SPA beats DPO on all gold (SPA vs Zephyr)": "opposite",
                       "SPA beats DPO with a 10.0% seed": "opposite"}
    assert "| SPA (3 rounds) | 0.404 [" in tables[0].markdown() and "15.39 / 21.13" in tables[0].markdown()
    assert "gate, pooled over 5 seeds" in tables[0].markdown() and "**passed**" in tables[0].markdown()
    assert tables[1].title.startswith("SPA Table 3") and "SPA (2 rounds), 3.3% seed" in tables[1].rows
    # the paper's effect, scaled by the anchor: (15.39 - 9.03) LC points * (0.62 - 0.5) / (11.75 - 7.58)
    first = tables[0].claims[0]
    assert first.paper_effect == pytest.approx(6.36 * 0.12 / 4.17) and first.margin == pytest.approx(first.paper_effect)
    assert verdicts.counts(tables)["opposite"] == 3
    assert "| SPA Table 1 | SPA beats DPO on the seed | -0.1" in verdicts.summary(tables)


def test_a_gate_that_fails_pooled_makes_its_claims_not_testable(tmp_path):
    tables = _fabricate(tmp_path, [0.60, 0.62, 0.59, 0.61, 0.60], [0.58, 0.55, 0.62, 0.57, 0.59])   # mean Eq. 7 below 0.6
    assert set(word for t in tables for _, word in t.verdicts()) == {"not testable"}
    assert "**failed**" in tables[0].markdown()


def test_a_shift_that_crosses_the_rule_is_reported_as_a_possible_flip():
    table = verdicts.Table("T", {"A": [0.5 + d for d in UP], "B": [0.5] * 8}, list(range(8)),
                           [verdicts.Claim("A beats B", "A", "B")])
    decided = verdicts.decide_all([table])
    assert verdicts.shifted(decided, {"A beats B": 0.001}) == {}
    assert verdicts.shifted(decided, {"A beats B": 0.04}) == {"A beats B": "reproduced -> opposite"}


def test_a_kernel_rerun_must_make_the_same_claims_as_the_run(tmp_path):
    # the scale-smoke runs reported with the toy run's packaged rerun: different claims, a clear error
    here = _fabricate(tmp_path / "a", [0.40, 0.42, 0.39, 0.41, 0.40], [0.66, 0.63, 0.70, 0.61, 0.65])
    report.check_same_claims(here, here, "the same run")
    other = verdicts.Table("T", {"A": [0.5] * 3, "B": [0.4] * 3}, [0, 1, 2], [verdicts.Claim("SPA beats DPO with a 0.8% seed", "A", "B")])
    with pytest.raises(ValueError, match="0.8% seed.*not a rerun of this run's seeds"):
        report.check_same_claims(here, [other], "the kernel rerun X")
