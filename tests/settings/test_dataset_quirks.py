"""Issue 19, items 1 and 12, on the UltraFeedback-binarized stand-in (no ``train`` split): the
dataset setting trains on ``train_prefs`` and evaluates on ``test_prefs`` by default (it loaded
``split="train"`` and raised ``DataSourceError``), the split is a parameter, and the LLM-as-judge
question stays whole at the end of a context cut to the judge's budget (it led the prompt, and the
left cut removed it)."""
import pytest

from prefalign_lite.engine import encoding
from prefalign_lite.settings import DatasetSetting, from_parameters, resolve
from prefalign_lite.settings.dataset import AB_ASK, judge_question
from prefalign_lite.settings.standin_data import ultrafeedback_splits

DATASET, JUDGE = "standin:ultrafeedback_binarized", "standin:skywork-reward-v2-qwen3-0.6b"


def test_item1_the_named_splits_are_the_defaults_and_the_split_is_a_parameter():
    setting = from_parameters(DATASET, JUDGE)
    assert (setting.split, setting.eval_split) == ("train_prefs", "test_prefs")
    splits = ultrafeedback_splits()
    pool = setting.pool(20, 50, seed=0)
    assert set(pool.eval_prompts) <= {r["prompt"] for r in splits["test_prefs"]}
    assert {r["prompt"] for r in pool.train} <= {r["prompt"] for r in splits["train_prefs"]}
    assert len(pool.eval_prompts) == 20 and len(pool.train) == 50
    held_out = DatasetSetting(source=resolve(DATASET), judge_model=resolve(JUDGE), split="test_prefs", eval_split="")
    pool = held_out.pool(10, 30, seed=0)
    test = {r["prompt"] for r in splits["test_prefs"]}
    assert set(pool.eval_prompts) <= test and {r["prompt"] for r in pool.train} <= test
    assert not set(pool.eval_prompts) & {r["prompt"] for r in pool.train}
    with pytest.raises(ValueError, match="asked for 101 evaluation prompts, but split 'test_prefs' has 100"):
        setting.pool(101, 10, seed=0)


def test_item12_the_judge_question_survives_a_long_prompt_at_the_end_of_the_context():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve("standin:qwen2.5-0.5b-instruct"))
    long = max(ultrafeedback_splits()["train_prefs"], key=lambda r: len(r["prompt"]))["prompt"]
    asked = []

    def logps(rows):
        import torch

        asked.extend(rows)
        return torch.zeros(len(rows)), torch.zeros(len(rows))

    rows = [{"prompt": long, "chosen": "Run slowly. " * 40, "rejected": "Walk."}]
    DatasetSetting.llm_first_wins(None, logps, rows, tokenizer=tok, max_length=128)
    assert len(asked) == 2
    for row in asked:
        assert row["prompt"].endswith(AB_ASK) and "(A) " in row["prompt"] and "(B) " in row["prompt"]
        head, tail = encoding.encode(tok, row["prompt"], row["chosen"])
        assert len(head) + len(tail) <= 128   # nothing left for the training-style left cut to remove
    assert judge_question("q", "a", "b").endswith(AB_ASK)
