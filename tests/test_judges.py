"""SPA's rival judges on the tiny SFT model: the seed-fitted reward model and LLM-as-judge."""
import pytest

from prefalign_lite import evaluate, judges, tiny, world


@pytest.fixture(scope="module")
def sft():
    path = tiny.sft_model_path()
    model, tokenizer = tiny.load(path)
    return path, model.eval(), tokenizer


def test_llm_judge_is_symmetric_in_the_order_of_the_answers(sft):
    _, model, tokenizer = sft
    tasks = world.make_tasks(12, seed=3)
    first, second = [t.answer for t in tasks], [t.answer + " a" for t in tasks]
    forward = judges.llm_prefers_first(model, tokenizer, [t.prompt for t in tasks], first, second, batch_size=5)
    backward = judges.llm_prefers_first(model, tokenizer, [t.prompt for t in tasks], second, first)
    assert len(forward) == 12 and all(isinstance(x, bool) for x in forward)
    assert [not x for x in forward] == backward  # asking in both orders removes position bias exactly
    assert judges.judge_prompt("add 1 2", "3", "4") == "rate add 1 2 answer a 3 answer b 4 good"
    assert set(judges.judge_prompt("add 1 2", "3", "4").split()) <= set(world.VOCAB)


def test_reward_model_fitted_on_a_seed_ranks_its_pairs(sft, tmp_path):
    path, _, _ = sft
    tasks = world.make_tasks(16, seed=4)
    rows = [{"prompt": t.prompt, "chosen": t.answer, "rejected": "0 0 0 0 0"} for t in tasks]
    saved = judges.train_reward_model(path, rows, tmp_path / "rm", epochs=20, learning_rate=2e-3)
    assert (saved / "config.json").exists() and not list(tmp_path.glob(".*partial"))
    judge = evaluate.RewardModelJudge(saved, batch_size=8)   # read back by path, as a hub reward model would be
    wins = judges.reward_model_prefers_first(judge, [r["prompt"] for r in rows], [r["chosen"] for r in rows],
                                             [r["rejected"] for r in rows])
    assert sum(wins) >= 15
    with pytest.raises(ValueError, match="at least one"):
        judges.train_reward_model(path, [], tmp_path / "empty")
