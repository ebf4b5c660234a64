import numpy as np
import pytest
import torch

from prefalign_lite import evaluate, tiny, world


def test_bootstrap_and_win_rate():
    est = evaluate.bootstrap_ci([0, 1] * 200)
    assert est.mean == 0.5 and est.low < 0.5 < est.high and est.high - est.low < 0.11
    assert evaluate.wins([1, 0.5, 0.2], [0.5, 0.5, 0.9]).tolist() == [1.0, 0.5, 0.0]
    assert evaluate.win_rate([1, 0.5, 0.2], [0.5, 0.5, 0.9]).mean == 0.5
    with pytest.raises(ValueError):
        evaluate.bootstrap_ci([])
    with pytest.raises(ValueError, match="shape"):
        evaluate.wins([1, 2], [1])


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
