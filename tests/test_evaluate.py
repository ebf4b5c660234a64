import numpy as np
import pytest
import torch

from prefalign_lite import evaluate, tiny, world


def test_bootstrap_and_win_rate():
    est = evaluate.bootstrap_ci([0, 1] * 200)
    assert est.mean == 0.5 and est.low < 0.5 < est.high and est.high - est.low < 0.11
    assert evaluate.wins([1, 0.5, 0.2], [0.5, 0.5, 0.9]).tolist() == [1.0, 0.5, 0.0]
    assert evaluate.win_rate([1, 0.5, 0.2], [0.5, 0.5, 0.9]).mean == 0.5


ZERO = "on zero prompts: nothing to evaluate"


@pytest.mark.parametrize("call, message", [
    (lambda: evaluate.bootstrap_ci([]), f"bootstrap_ci {ZERO}"),
    (lambda: evaluate.wins([], []), f"wins {ZERO}"),
    (lambda: evaluate.win_rate(np.zeros(0), np.zeros(0)), f"wins {ZERO}"),
    (lambda: evaluate.length_controlled_win_rate([], [], []), f"length_controlled_win_rate {ZERO}"),
    (lambda: evaluate.mean_length([]), f"mean_length {ZERO}"),
    (lambda: evaluate.gold_rewards([], []), f"gold_rewards {ZERO}"),
    (lambda: evaluate.RewardModelJudge.score(object.__new__(evaluate.RewardModelJudge), [], []),
     f"RewardModelJudge.score {ZERO}"),
])
def test_evaluation_on_zero_prompts_is_refused_without_a_numpy_warning(call, message):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on the way
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("call, message", [
    (lambda: evaluate.wins([1, 2], [1]), "wins: one value per prompt is needed but scores_a has 2, scores_b has 1"),
    (lambda: evaluate.win_rate([1, 2, 3], [1, 2]), "scores_a has 3, scores_b has 2"),
    (lambda: evaluate.length_controlled_win_rate([1, 0], [3, 4], [3]),
     "win has 2, length_a has 2, length_b has 1"),
    (lambda: evaluate.gold_rewards([world.Task("add", "add 1 1", "2")], []), "gold_rewards: 1 tasks but 0 responses"),
    (lambda: evaluate.RewardModelJudge.score(object.__new__(evaluate.RewardModelJudge), ["a", "b"], ["c"]),
     "RewardModelJudge.score: 2 prompts but 1 responses"),
])
def test_mismatched_lengths_name_both(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: evaluate.wins([1, float("nan"), 2], [1, 1, 1]), r"wins: scores_a\[1\] is nan \(1 non-finite value\(s\)\)"),
    (lambda: evaluate.wins([1, 2], [1, float("inf")]), r"wins: scores_b\[1\] is inf"),
    (lambda: evaluate.bootstrap_ci([0.5, float("nan"), float("nan")]), r"bootstrap_ci: values\[1\] is nan \(2 non-finite"),
    (lambda: evaluate.length_controlled_win_rate([1, float("nan")], [1, 2], [1, 1]), r"win\[1\] is nan"),
    (lambda: evaluate.length_controlled_win_rate([1, 2], [1, 2], [1, 1]), r"win\[1\] is 2.0; wins must lie in \[0, 1\]"),
    (lambda: evaluate.length_controlled_win_rate([1, 0], [1, -2], [1, 1]), "a negative length at index 1"),
    (lambda: evaluate.length_controlled_win_rate([1, 0], [1, 2], [1, 1], l2=0), "l2 must be a finite number > 0"),
    (lambda: evaluate.wins([[1, 2]], [[1, 2]]), r"scores_a must be one number per prompt \(1-D\), got shape \(1, 2\)"),
    (lambda: evaluate.wins(["a"], [1]), "wins: scores_a must be numbers, one per prompt"),
    (lambda: evaluate.wins([None, 1], [1, 1]), r"scores_a\[0\] is nan"),
    (lambda: evaluate.bootstrap_ci([1, 0], n_boot=0), "n_boot must be an integer >= 1, got 0"),
    (lambda: evaluate.bootstrap_ci([1, 0], level=1.0), r"level must be a number in \(0, 1\), got 1.0"),
    (lambda: evaluate.mean_length(["a b", None]), r"mean_length: responses\[1\] must be a string, got NoneType"),
    (lambda: evaluate.gold_rewards([world.Task("add", "add 1 1", "2")], [None]), r"responses\[0\] must be a string"),
    (lambda: evaluate.gold_rewards(["add 1 1"], ["2"]), r"tasks\[0\] must be a world.Task, got str"),
    (lambda: evaluate.RewardModelJudge.score(object.__new__(evaluate.RewardModelJudge), ["a", 3], ["c", "d"]),
     r"RewardModelJudge.score: prompts\[1\] must be a string, got int"),
    (lambda: evaluate.RewardModelJudge("unused", batch_size=0), "batch_size must be an integer >= 1, got 0"),
])
def test_bad_scores_are_refused_naming_the_index(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_one_prompt_and_a_clean_sweep_give_finite_answers():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = evaluate.win_rate([1.0], [0.0])
        assert (one.mean, one.low, one.high) == (1.0, 1.0, 1.0)
        sweep = evaluate.length_controlled_win_rate(np.ones(50), np.arange(50) + 5, np.full(50, 5))
        assert 0.9 < sweep < 1.0  # every prompt won: high but finite, no overflow
        assert evaluate.length_controlled_win_rate([1, 0], [3, 3], [3, 3]) == pytest.approx(0.5, abs=1e-6)


def test_length_controlled_win_rate_removes_a_pure_length_effect():
    rng = np.random.default_rng(0)
    diff = rng.integers(-3, 6, size=4000)            # A is usually longer...
    win = (rng.random(4000) < 1 / (1 + np.exp(-0.8 * diff))).astype(float)  # ...and wins only through length
    raw = win.mean()
    lc = evaluate.length_controlled_win_rate(win, diff + 10, np.full(4000, 10))
    print(f"raw win rate {raw:.3f}, length-controlled {lc:.3f}")
    assert raw > 0.58 and abs(lc - 0.5) < 0.03


def test_gold_rewards_and_lengths():
    tasks = [world.Task("add", "add 1 1", "2"), world.Task("sort", "sort 2 1", "1 2")]
    assert evaluate.gold_rewards(tasks, ["2", "2 1"]).tolist() == [1.0, 0.0]
    assert evaluate.mean_length(["2", "2 1"]) == 1.5


def test_reward_model_judge_loads_a_local_sequence_classifier(tmp_path):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = tiny.build_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    judge = evaluate.RewardModelJudge(tmp_path, batch_size=2)
    scores = judge.score(["add 1 1", "add 1 1", "sort 2 1"], ["2", "3", "1 2"])
    assert scores.shape == (3,) and np.isfinite(scores).all() and scores[0] != scores[1]
    alone = judge.score(["add 1 1"], ["3"])  # padding in a batch must not change a score
    assert alone[0] == pytest.approx(scores[1], abs=1e-5)
