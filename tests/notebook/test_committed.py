"""notebook_checks: measured numbers against a committed run, within tolerances, one stable line.
Also the packaged toy run that notebook 20 reads without the repository. (About 0.1 s.)"""
import json
import math

import numpy as np
import pytest

from prefalign_lite.notebook import committed as checks
from prefalign_lite.replication import results

COMMITTED = {"win_rate/seed_dpo": 0.503, "win_rate/all_gold": 0.562, "gold": 0.875}


def test_numbers_within_tolerance_print_one_stable_line(capsys):
    measured = {"win_rate/seed_dpo": 0.520, "win_rate/all_gold": 0.540, "gold": np.float32(0.8751)}
    assert checks.check_within_tolerance(measured, COMMITTED, {"win_rate/seed_dpo": 0.03,
                                                               "win_rate/all_gold": 0.03, "gold": 0.01})
    assert capsys.readouterr().out == "3 numbers within tolerance of the committed run: True\n"


def test_the_edge_of_the_tolerance_passes_and_just_past_it_fails(capsys):
    assert checks.check_within_tolerance({"gold": 0.875 + 0.0299}, COMMITTED, 0.03)
    with pytest.raises(AssertionError, match=r"gold: measured 0.9051, committed 0.875, allowed ±0.03, off by 0.0301"):
        checks.check_within_tolerance({"gold": 0.9051}, COMMITTED, 0.03)


def test_every_failure_is_named_with_value_committed_value_and_tolerance(capsys):
    measured = {"win_rate/seed_dpo": 0.60, "win_rate/all_gold": 0.56, "gold": math.nan}
    with pytest.raises(AssertionError) as err:
        checks.check_within_tolerance(measured, COMMITTED, 0.03, against="the committed seed-0 run")
    text = str(err.value)
    assert text.startswith("2 of 3 numbers outside tolerance of the committed seed-0 run:")
    assert "win_rate/seed_dpo: measured 0.6, committed 0.503, allowed ±0.03, off by 0.097" in text
    assert "gold: measured nan is not finite (committed 0.875, allowed ±0.03)" in text
    assert "all_gold" not in text
    assert capsys.readouterr().out == "", "no verdict line when the check fails"


def test_bad_calls_are_refused_by_name():
    with pytest.raises(KeyError, match="'lc_win_rate' has no committed value"):
        checks.check_within_tolerance({"lc_win_rate": 0.5}, COMMITTED, 0.03)
    with pytest.raises(KeyError, match="no tolerance given for 'gold'"):
        checks.check_within_tolerance({"gold": 0.875}, COMMITTED, {"win_rate/seed_dpo": 0.03})
    with pytest.raises(ValueError, match="tolerance for 'gold' must be a finite number >= 0"):
        checks.check_within_tolerance({"gold": 0.875}, COMMITTED, -0.1)
    with pytest.raises(ValueError, match="'gold': measured value must be a number"):
        checks.check_within_tolerance({"gold": "0.875"}, COMMITTED, 0.1)
    with pytest.raises(ValueError, match="measured is empty"):
        checks.check_within_tolerance({}, COMMITTED, 0.1)


def test_flatten_keeps_numbers_under_slash_joined_names():
    nested = {"seed_dpo": {"win_rate": 0.5, "pairs": 62, "ok": True}, "rounds": [0.5, {"acc": 0.27}], "name": "x"}
    assert checks.flatten(nested) == {"seed_dpo/win_rate": 0.5, "seed_dpo/pairs": 62.0,
                                      "rounds/0": 0.5, "rounds/1/acc": 0.27}


def test_committed_metrics_come_from_the_packaged_run():
    committed = checks.committed_metrics("11_dpo_baselines", seed=0)
    packaged = results.load_runs()["11_dpo_baselines"][0]
    assert committed["seed_dpo/win_rate"] == packaged["seed_dpo"]["win_rate"]
    assert committed["all_gold_pairs"] == float(packaged["all_gold_pairs"])
    with pytest.raises(KeyError, match="stage '99_nothing' is not in the committed run"):
        checks.committed_metrics("99_nothing")
    with pytest.raises(KeyError, match="has no seed 27"):
        checks.committed_metrics("11_dpo_baselines", seed=27)


def test_the_packaged_toy_run_is_what_load_runs_reads_by_default(tmp_path):
    packaged = results.load_runs()
    assert results.load_runs("") == packaged
    assert sorted(packaged) == ["11_dpo_baselines", "13_spa", "14_spa_judges_and_ablations", "15_sera",
                                "16_sr_dpo", "17_dro_dpo"]
    assert all(sorted(by_seed) == list(range(20)) for by_seed in packaged.values())   # the protocol's 20 seeds
    # a given folder is still read as before
    (tmp_path / "seed3" / "11_dpo_baselines").mkdir(parents=True)
    (tmp_path / "seed3" / "11_dpo_baselines" / "metrics.json").write_text(json.dumps({"win": 0.5}))
    assert results.load_runs(tmp_path) == {"11_dpo_baselines": {3: {"win": 0.5}}}


DEFAULTS = {"beta": 0.1, "steps": 300}


def test_committed_outputs_compare_at_the_defaults_they_were_made_with(capsys):
    outputs = checks.CommittedOutputs(made_with=DEFAULTS, running_with={"beta": 0.1, "steps": 300})
    assert outputs.changed == []
    assert outputs.check({"recall": 0.352}, {"recall": 0.354}, 0.01) is None
    assert capsys.readouterr().out == "1 numbers within tolerance of the committed outputs: True\n"
    with pytest.raises(AssertionError, match=r"recall: measured 0.4, committed 0.354, allowed ±0.01"):
        outputs.check({"recall": 0.4}, {"recall": 0.354}, 0.01)


def test_committed_outputs_compare_nothing_when_a_parameter_changed(capsys):
    outputs = checks.CommittedOutputs(made_with=DEFAULTS, running_with={"beta": 1.0, "steps": 50})
    assert outputs.changed == ["beta", "steps"]
    outputs.check({"recall": 0.9}, {"recall": 0.354}, 0.01)  # far off, yet not a failure: never committed
    assert capsys.readouterr().out == "parameters beta, steps differ from the committed outputs: nothing compared\n"


def test_committed_outputs_need_the_same_parameter_names():
    with pytest.raises(ValueError, match=r"only in made_with: \['steps'\], only in running_with: \['lr'\]"):
        checks.CommittedOutputs(made_with=DEFAULTS, running_with={"beta": 0.1, "lr": 0.05})


def _run(root, values: dict[int, float]):
    for seed, v in values.items():
        (root / f"seed{seed}" / "11_x").mkdir(parents=True)
        (root / f"seed{seed}" / "11_x" / "metrics.json").write_text(json.dumps({"sft": {"gain": v}}))
    return str(root)


def test_tolerances_take_the_seed_spread_and_twice_what_the_other_kernels_moved(tmp_path):
    run = _run(tmp_path / "run", {0: 0.190, 1: 0.192, 2: 0.188})
    moved = _run(tmp_path / "other", {0: 0.216, 1: 0.213})     # a rebuilt SFT model moves every seed alike
    seed_only = checks.seed_tolerances("11_x", ["sft/gain"], run_dir=run)["sft/gain"]
    assert seed_only == pytest.approx(max(checks.SPREAD_SDS * 0.002, checks.SPREAD_FLOOR))
    with_kernels = checks.seed_tolerances("11_x", ["sft/gain"], run_dir=run, kernels_dir=moved)["sft/gain"]
    assert with_kernels == pytest.approx(checks.KERNEL_FACTOR * 0.026)
    wide = _run(tmp_path / "wide", {0: 0.1, 1: 0.3, 2: 0.5})   # a seed spread wider than the kernels' shift wins
    assert checks.seed_tolerances("11_x", ["sft/gain"], run_dir=wide, kernels_dir=moved)["sft/gain"] == pytest.approx(0.8)


def test_the_packaged_kernel_rerun_sets_the_tolerance_of_what_the_rebuilt_sft_model_moves():
    committed = results.load_runs()["11_dpo_baselines"]
    other = results.load_packaged_runs(checks.KERNEL_RERUN)["11_dpo_baselines"]
    assert sorted(other) == [0, 1, 2, 3, 4]
    moved = max(abs(other[s]["sft"]["quality_gain"] - committed[s]["sft"]["quality_gain"]) for s in other)
    assert moved == pytest.approx(0.0262, abs=1e-4)       # seed 0: 0.2166 under the other kernels, 0.1904 here
    tolerance = checks.seed_tolerances("11_dpo_baselines", ["sft/quality_gain"])["sft/quality_gain"]
    assert tolerance == pytest.approx(checks.KERNEL_FACTOR * moved)


def test_on_another_device_a_number_outside_its_tolerance_is_reported_and_the_notebook_goes_on(capsys):
    """A Colab GPU runtime draws other numbers than the CPUs the committed run was made on: the check
    said so by raising, and "Run all" stopped before the summary. On a CPU it still raises."""
    import copy

    metrics = copy.deepcopy(results.load_runs()["11_dpo_baselines"][0])
    assert checks.check_against_seeds("11_dpo_baselines", metrics, ["seed_dpo/win_rate"], device="cpu") is True
    metrics["seed_dpo"]["win_rate"] += 0.5
    with pytest.raises(AssertionError, match="seed_dpo/win_rate: measured"):
        checks.check_against_seeds("11_dpo_baselines", metrics, ["seed_dpo/win_rate"], device="cpu")
    capsys.readouterr()
    assert checks.check_against_seeds("11_dpo_baselines", metrics, ["seed_dpo/win_rate"], device="cuda") is False
    printed = capsys.readouterr().out
    assert printed.startswith("on cuda, not the committed run's cpu: 1 of 1 numbers outside tolerance")
    assert "the notebook goes on" in printed
