"""SPA's rival judges on the tiny SFT model: the external reward model and LLM-as-judge."""
import pytest

from prefalign_lite import settings, world
from prefalign_lite.engine import models
from prefalign_lite.engine.reward_model import RewardModel, train_reward_model
from prefalign_lite.methods import judges
from prefalign_lite.world import tiny


@pytest.fixture(scope="module")
def sft():
    path = tiny.sft_model_path()
    model, tokenizer = models.load_pretrained(path)
    return path, model.eval(), tokenizer


def _rows(n: int, seed: int) -> list[dict]:
    tasks = world.distinct_tasks(n, seed=seed)
    return [{"prompt": t.prompt, "chosen": t.answer, "rejected": "0 0 0 0 0"} for t in tasks]


def test_llm_judge_checks_each_answer_and_is_symmetric(sft):
    import random

    _, model, tokenizer = sft
    rng = random.Random(3)
    rows = [{"prompt": t.prompt, "chosen": t.answer, "rejected": world.corrupt(t, 0.85, rng)}
            for t in world.distinct_tasks(200, seed=3)]
    rows = [r for r in rows if r["chosen"] != r["rejected"]]
    swapped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    setting = settings.EmbeddedSetting()
    forward = judges.llm_prefers_first(model, tokenizer, setting, rows, max_length=64)
    backward = judges.llm_prefers_first(model, tokenizer, setting, swapped, max_length=64)
    assert len(forward) == len(rows) and all(isinstance(x, bool) for x in forward)
    assert [not x for x in forward] == backward   # each answer is checked on its own: order cannot matter
    # the SFT model learnt to check: the right answer beats a badly edited one far more often than a
    # coin would (0.82 and 0.86 measured on two draws of prompts; a coin: 0.50 +- 0.07)
    assert sum(forward) >= 0.7 * len(rows)


def test_reward_model_fitted_on_labelled_pairs_ranks_them(sft, tmp_path):
    path, _, _ = sft
    rows = _rows(16, seed=4)
    saved = train_reward_model(path, rows, tmp_path / "rm", epochs=20, learning_rate=2e-3)
    assert (saved / "config.json").exists() and not list(tmp_path.glob(".*partial"))
    judge = RewardModel(saved, batch_size=8)   # read back by path, as a hub reward model would be
    assert sum(judges.reward_model_prefers_first(judge, rows)) >= 15
    tie = [{"prompt": rows[0]["prompt"], "chosen": "1 2", "rejected": "1 2"}]
    assert judges.reward_model_prefers_first(judge, tie) == [False]   # a tie goes to the second answer (Eq. 8)
    with pytest.raises(ValueError, match="at least one"):
        train_reward_model(path, [], tmp_path / "empty")


def test_label_agreement_is_the_share_of_equal_labels_and_refuses_lists_that_do_not_pair():
    from prefalign_lite.methods.judges import label_agreement
    assert label_agreement([True, False, True, True], [True, True, True, False]) == 0.5
    assert label_agreement([False] * 3, [False] * 3) == 1.0
    for a, b in (([True], [True, False]), ([], [])):
        with pytest.raises(ValueError, match="equally long, non-empty"):
            label_agreement(a, b)
