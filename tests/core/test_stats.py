import math

import numpy as np
import pytest

from prefalign_lite.core import stats


def test_bootstrap_and_win_rate():
    est = stats.bootstrap_ci([0, 1] * 200)
    assert est.mean == 0.5 and est.low < 0.5 < est.high and est.high - est.low < 0.11
    assert stats.wins([1, 0.5, 0.2], [0.5, 0.5, 0.9]).tolist() == [1.0, 0.5, 0.0]
    assert stats.win_rate([1, 0.5, 0.2], [0.5, 0.5, 0.9]).mean == 0.5


ZERO = "on zero prompts: nothing to evaluate"


@pytest.mark.parametrize("call, message", [
    (lambda: stats.bootstrap_ci([]), f"bootstrap_ci {ZERO}"),
    (lambda: stats.wins([], []), f"wins {ZERO}"),
    (lambda: stats.win_rate(np.zeros(0), np.zeros(0)), f"wins {ZERO}"),
    (lambda: stats.length_controlled_win_rate([], [], []), f"length_controlled_win_rate {ZERO}"),
    (lambda: stats.mean_length([]), f"mean_length {ZERO}"),
])
def test_evaluation_on_zero_prompts_is_refused_without_a_numpy_warning(call, message):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on the way
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("call, message", [
    (lambda: stats.wins([1, 2], [1]), "wins: one value per prompt is needed but scores_a has 2, scores_b has 1"),
    (lambda: stats.win_rate([1, 2, 3], [1, 2]), "scores_a has 3, scores_b has 2"),
    (lambda: stats.length_controlled_win_rate([1, 0], [3, 4], [3]),
     "win has 2, length_a has 2, length_b has 1"),
])
def test_mismatched_lengths_name_both(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: stats.wins([1, float("nan"), 2], [1, 1, 1]), r"wins: scores_a\[1\] is nan \(1 non-finite value\(s\)\)"),
    (lambda: stats.wins([1, 2], [1, float("inf")]), r"wins: scores_b\[1\] is inf"),
    (lambda: stats.bootstrap_ci([0.5, float("nan"), float("nan")]), r"bootstrap_ci: values\[1\] is nan \(2 non-finite"),
    (lambda: stats.length_controlled_win_rate([1, float("nan")], [1, 2], [1, 1]), r"win\[1\] is nan"),
    (lambda: stats.length_controlled_win_rate([1, 2], [1, 2], [1, 1]), r"win\[1\] is 2.0; wins must lie in \[0, 1\]"),
    (lambda: stats.length_controlled_win_rate([1, 0], [1, -2], [1, 1]), "a negative length at index 1"),
    (lambda: stats.length_controlled_win_rate([1, 0], [1, 2], [1, 1], l2=0), "l2 must be a finite number > 0"),
    (lambda: stats.wins([[1, 2]], [[1, 2]]), r"scores_a must be one number per prompt \(1-D\), got shape \(1, 2\)"),
    (lambda: stats.wins(["a"], [1]), "wins: scores_a must be numbers, one per prompt"),
    (lambda: stats.wins([None, 1], [1, 1]), r"scores_a\[0\] is nan"),
    (lambda: stats.bootstrap_ci([1, 0], n_boot=0), "n_boot must be an integer >= 1, got 0"),
    (lambda: stats.bootstrap_ci([1, 0], level=1.0), r"level must be a number in \(0, 1\), got 1.0"),
    (lambda: stats.mean_length(["a b", None]), r"mean_length: responses\[1\] must be a string, got NoneType"),
])
def test_bad_scores_are_refused_naming_the_index(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_one_prompt_and_a_clean_sweep_give_finite_answers():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = stats.win_rate([1.0], [0.0])
        assert (one.mean, one.low, one.high) == (1.0, 1.0, 1.0)
        sweep = stats.length_controlled_win_rate(np.ones(50), np.arange(50) + 5, np.full(50, 5))
        assert 0.9 < sweep < 1.0  # every prompt won: high but finite, no overflow
        assert stats.length_controlled_win_rate([1, 0], [3, 3], [3, 3]) == pytest.approx(0.5, abs=1e-6)


def test_length_controlled_win_rate_removes_a_pure_length_effect():
    rng = np.random.default_rng(0)
    diff = rng.integers(-3, 6, size=4000)            # A is usually longer...
    win = (rng.random(4000) < 1 / (1 + np.exp(-0.8 * diff))).astype(float)  # ...and wins only through length
    raw = win.mean()
    lc = stats.length_controlled_win_rate(win, diff + 10, np.full(4000, 10))
    print(f"raw win rate {raw:.3f}, length-controlled {lc:.3f}")
    assert raw > 0.58 and abs(lc - 0.5) < 0.03


def test_mean_length():
    assert stats.mean_length(["2", "2 1"]) == 1.5


def test_seed_interval_is_the_student_t_interval():
    cell = stats.seed_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n), sd = 1
    assert (cell.mean, cell.low, cell.high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert str(stats.seed_interval([0.25])) == "0.250"
    with pytest.raises(ValueError, match="no values"):
        stats.seed_interval([])


def test_holm_is_the_step_down_adjustment():
    assert stats.holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert stats.paired_p([0.1, 0.1, 0.1]) == pytest.approx(0.0, abs=1e-12) and stats.paired_p([0.0, 0.0]) == 1.0
    assert stats.paired_p([0.1, 0.2, 0.15, 0.12, 0.18]) == pytest.approx(0.00124, abs=1e-5)   # t = 8.1, 4 df


def test_tost_and_the_minimum_detectable_effect():
    close = [0.001, -0.002, 0.0, 0.002, -0.001, 0.001]
    assert stats.tost_p(close, 0.02) < 0.001 and stats.tost_p(close, 0.0) == 1.0
    assert stats.tost_p([0.05, 0.06, 0.055, 0.05], 0.02) > 0.99
    assert math.isnan(stats.tost_p([0.1], 0.02))
    # (t_{0.975, 19} + t_{0.8, 19}) * sd / sqrt(20)
    assert stats.minimum_detectable_effect(0.01, 20) == pytest.approx((2.0930240544 + 0.8609506) * 0.01 / 20 ** 0.5, rel=1e-6)
