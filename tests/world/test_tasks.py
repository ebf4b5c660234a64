import random

import pytest

from prefalign_lite import world
from prefalign_lite.world import Annotator, Task


@pytest.mark.parametrize("task,response,expected", [
    (Task("sort", "sort 3 1 2", "1 2 3"), "1 2 3", 1.0),
    (Task("sort", "sort 3 1 2", "1 2 3"), "1 3 2", 1 / 3),
    (Task("sort", "sort 3 1 2", "1 2 3"), "1 2 3 3", 0.75),        # padding costs
    (Task("sort", "sort 3 1 2", "1 2 3"), "1 2", 2 / 3),
    (Task("sort", "sort 3 1 2", "1 2 3"), "1 2 a", 0.0),            # not a number list: does not parse
    (Task("reverse", "reverse a b c", "c b a"), "c b a", 1.0),
    (Task("reverse", "reverse a b c", "c b a"), "a b c", 1 / 3),
    (Task("count", "count a in a b a c", "2"), "2", 1.0),
    (Task("count", "count a in a b a c", "2"), "3", 0.75),
    (Task("count", "count a in a b a c", "2"), "2 2", 0.0),
    (Task("add", "add 3 4", "7"), "5", 0.5),
    (Task("add", "add 3 4", "7"), "19", 0.0),
    (Task("repeat", "repeat b 3", "b b b"), "b b", 2 / 3),
    (Task("repeat", "repeat b 3", "b b b"), "", 0.0),
])
def test_gold_reward_partial_credit(task, response, expected):
    assert world.gold_reward(task, response) == pytest.approx(expected)


def test_tasks_are_consistent_and_cover_every_family():
    tasks = world.make_tasks(500, seed=1)
    assert {t.family for t in tasks} == set(world.FAMILIES)
    assert all(world.gold_reward(t, t.answer) == 1.0 for t in tasks)
    assert all(w in world.VOCAB for t in tasks for w in t.prompt.split() + t.answer.split())
    with pytest.raises(ValueError, match="family"):
        world.make_task(random.Random(0), "divide")


def test_corrupt_spreads_quality():
    rng = random.Random(0)
    tasks = world.make_tasks(400, seed=2)
    clean = [world.gold_reward(t, world.corrupt(t, 0.0, rng)) for t in tasks]
    noisy = [world.gold_reward(t, world.corrupt(t, 0.7, rng)) for t in tasks]
    assert min(clean) == 1.0
    assert 0.2 < sum(noisy) / len(noisy) < 0.8


def test_annotator_knobs():
    rng = random.Random(0)
    task = Task("sort", "sort 3 1 2", "1 2 3")
    good, bad_long = "1 2 3", "1 3 2 2"
    assert all(Annotator(temperature=1e-3).prefers_first(task, good, bad_long, rng) for _ in range(200))
    assert not any(Annotator(temperature=1e-3, flip_rate=1.0).prefers_first(task, good, bad_long, rng) for _ in range(200))
    biased = Annotator(temperature=0.1, length_bias=20.0)  # 20 per token outweighs a gold gap of 0.75 / 0.1
    assert sum(biased.prefers_first(task, good, bad_long, rng) for _ in range(400)) < 40
    assert Annotator(temperature=1e-9).probability(1.0, 0.0, 1, 1) == 1.0  # no overflow
    with pytest.raises(ValueError, match="temperature"):
        Annotator(temperature=0.0)
    with pytest.raises(ValueError, match="flip_rate"):
        Annotator(flip_rate=1.5)


def test_preference_rows_have_ultrafeedback_layout():
    rows = world.preference_rows(world.make_tasks(50, seed=3), Annotator(), seed=3)
    for r in rows:
        assert set(r) >= {"prompt", "prompt_id", "chosen", "rejected", "score_chosen", "score_rejected",
                          "gold_chosen", "gold_rejected"}
        assert r["chosen"][0] == {"role": "user", "content": r["prompt"]}
        assert r["chosen"][1]["role"] == "assistant" and r["chosen"][1]["content"] != r["rejected"][1]["content"]
        assert r["score_chosen"] == pytest.approx(1 + 9 * r["gold_chosen"], abs=1e-3)
    given = world.preference_rows([Task("add", "add 1 1", "2")], Annotator(temperature=1e-6), responses=[("3", "2")])
    assert given[0]["chosen"][1]["content"] == "2"


def test_sft_demonstrations_format():
    demos = world.sft_demonstrations(20, seed=0)
    assert demos[0]["prompt"][0]["role"] == "user" and demos[0]["completion"][0]["role"] == "assistant"


@pytest.mark.parametrize("call, message", [
    (lambda: world.gold_rewards([], []), "gold_rewards on zero prompts: nothing to evaluate"),
    (lambda: world.gold_rewards([world.Task("add", "add 1 1", "2")], []), "gold_rewards: 1 tasks but 0 responses"),
    (lambda: world.gold_rewards([world.Task("add", "add 1 1", "2")], [None]), r"responses\[0\] must be a string"),
    (lambda: world.gold_rewards(["add 1 1"], ["2"]), r"tasks\[0\] must be a world Task, got str"),
])
def test_gold_rewards_refuse_bad_input_naming_the_index(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_gold_rewards():
    tasks = [world.Task("add", "add 1 1", "2"), world.Task("sort", "sort 2 1", "1 2")]
    assert world.gold_rewards(tasks, ["2", "2 1"]).tolist() == [1.0, 0.0]


def test_the_habit_is_one_systematic_flaw_the_gold_reward_sees():
    sort = world.Task("sort", "sort 3 1 2", "1 2 3")
    add = world.Task("add", "add 3 4", "7")
    assert world.habit(sort) == "1 2 3 3 3" and world.gold_reward(sort, world.habit(sort)) == 3 / 5
    assert world.habit(add) == "9" and world.gold_reward(add, world.habit(add)) == 0.5
    assert world.habit(world.Task("add", "add 9 9 9 9 9", "40")) == "40"   # kept inside the vocabulary
    rng = random.Random(0)
    answers = [world.plain_demonstration(sort, rng) for _ in range(2000)]
    assert abs(answers.count(world.habit(sort)) / 2000 - world.HABIT_SHARE) < 0.03
