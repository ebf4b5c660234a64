import numpy as np
import pytest
import torch

from prefalign_lite.engine.reward_model import RewardModel, bradley_terry_loss
from prefalign_lite.world import tiny


@pytest.mark.parametrize("call, message", [
    (lambda: RewardModel.score(object.__new__(RewardModel), [], []),
     "RewardModel.score on zero prompts: nothing to evaluate"),
    (lambda: RewardModel.score(object.__new__(RewardModel), ["a", "b"], ["c"]),
     "RewardModel.score: 2 prompts but 1 responses"),
    (lambda: RewardModel.score(object.__new__(RewardModel), ["a", 3], ["c", "d"]),
     r"RewardModel.score: prompts\[1\] must be a string, got int"),
    (lambda: RewardModel("unused", batch_size=0), "batch_size must be an integer >= 1, got 0"),
])
def test_bad_calls_are_refused_naming_the_index(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bradley_terry_loss_values():
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert loss.tolist() == pytest.approx([np.log1p(np.exp(-2.0)), np.log(2.0)])
    with pytest.raises(ValueError, match="differ in shape"):
        bradley_terry_loss(torch.zeros(2), torch.zeros(3))


def test_reward_model_judge_loads_a_local_sequence_classifier(tmp_path):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = tiny.build_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    judge = RewardModel(tmp_path, batch_size=2)
    scores = judge.score(["add 1 1", "add 1 1", "sort 2 1"], ["2", "3", "1 2"])
    assert scores.shape == (3,) and np.isfinite(scores).all() and scores[0] != scores[1]
    alone = judge.score(["add 1 1"], ["3"])  # padding in a batch must not change a score
    assert alone[0] == pytest.approx(scores[1], abs=1e-5)
