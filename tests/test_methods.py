"""SPA's Algorithm 1 end to end on the tiny model, small sizes (the full runs are notebooks 11-15)."""
import pytest

from prefalign_lite import world
from prefalign_lite.methods import baselines, spa
from prefalign_lite.methods.common import Session, SessionConfig, gold_labelled


@pytest.fixture(scope="module")
def session():
    return Session(config=SessionConfig(n_eval=64, four_bit=True))


def test_spa_runs_end_to_end_on_one_4bit_base(session):
    seed_tasks = world.make_tasks(80, seed=1)
    seed_rows = gold_labelled(seed_tasks, session.sample(None, [t.prompt for t in seed_tasks], n_samples=2, temperature=1.0))
    sets = [world.make_tasks(48, seed=2), world.make_tasks(48, seed=3)]
    records = spa.run_spa(session, seed_rows, sets, spa.SpaConfig(seed_epochs=1))
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert all(0 <= r["win_rate"] <= 1 and r["pairs"] > 10 for r in records)
    assert 0.3 < records[1]["label_accuracy"] <= 1.0
    assert sorted(session.iterates.names) == ["iter0", "iter1", "iter2"]
    # one base model: every iterate is an adapter on the same 4-bit modules
    quantized = [m for m in session.iterates.model.modules() if type(m).__module__.startswith("bitsandbytes")]
    assert len(quantized) == 6 * 7  # 6 layers x 7 projections, each held once, shared by all iterates


def test_judge_reference_options():
    assert spa.judge_reference(1, "init") is None and spa.judge_reference(3, "previous") == 1
    assert spa.judge_reference(1, "previous") is None and spa.judge_reference(2, "none") == "none"
    with pytest.raises(ValueError, match="judge_reference"):
        spa.judge_reference(1, "later")
    with pytest.raises(ValueError, match="judge must be one of"):
        spa.SpaConfig(judge="gpt4")
    with pytest.raises(ValueError, match="judge_reference"):
        spa.SpaConfig(judge_reference="later")


def test_dpo_baseline_record(session):
    tasks = world.make_tasks(64, seed=4)
    rows = gold_labelled(tasks, session.sample(None, [t.prompt for t in tasks], n_samples=2, temperature=1.0))
    record = baselines.dpo_baseline(session, rows, name=9)
    assert {"win_rate", "gold", "length", "lc_win_rate", "pairs", "seconds"} <= set(record)


def test_sera_and_single_pass_methods(session):
    from prefalign_lite.methods import sera, single_pass

    tasks = world.make_tasks(64, seed=6)
    from prefalign_lite.methods.common import rater_labelled

    offline = rater_labelled(tasks, session.sample(None, [t.prompt for t in tasks], n_samples=2, temperature=1.0),
                             world.Annotator(temperature=0.1, flip_rate=0.2), seed=6)
    assert offline and 0 < sum(not r["label_correct"] for r in offline) < len(offline)
    records = sera.run_sera(session, offline, sera.SeraConfig(iterations=3))
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert records[0]["offline_pairs"] == len(offline) and records[1]["offline_pairs"] == round(0.7 * len(offline))
    assert records[1]["bootstrapped_pairs"] > 0
    for fn in (lambda: single_pass.sr_dpo(session, offline, name=21), lambda: single_pass.sr_dpo(session, offline, prefix=None, name=22),
               lambda: single_pass.dro_dpo(session, offline, name=23)):
        assert 0 <= fn()["win_rate"] <= 1


def test_spa_variants_share_the_seed_model_and_switch_judges(session):
    import dataclasses

    seed_tasks = world.make_tasks(60, seed=11)
    seed_rows = gold_labelled(seed_tasks, session.sample(None, [t.prompt for t in seed_tasks], n_samples=2, temperature=1.0))
    sets = [world.make_tasks(40, seed=12)]
    plain = spa.SpaConfig(seed_epochs=1, refinement=False)
    first = spa.run_spa(session, seed_rows, sets, plain, offset=200)
    for i, judge in enumerate(("reward_model", "llm"), start=1):
        records = spa.run_spa(session, seed_rows, sets, dataclasses.replace(plain, judge=judge), seed_iterate=200, offset=200 + 10 * i)
        assert records[0]["win_rate"] == first[0]["win_rate"]          # the shared seed model, not retrained
        assert records[1]["pairs"] == first[1]["pairs"] and 0 <= records[1]["label_accuracy"] <= 1
    assert {"iter200", "iter201", "iter211", "iter221"} <= set(session.iterates.names)
    h2h = session.head_to_head(211, 201)
    assert h2h["win"] + h2h["tie"] + h2h["lose"] == pytest.approx(1.0)


def test_sera_variants_share_round_one(session):
    from prefalign_lite.methods import sera, setups

    offline = setups.offline_set(session, 48, flip_rate=0.2, data_seed=3)
    base = sera.run_sera(session, offline, sera.SeraConfig(iterations=2, select=False, bootstrap=False), offset=300)
    shared = sera.run_sera(session, offline, sera.SeraConfig(iterations=2), offset=310, shared_first=301)
    assert shared[0]["win_rate"] == base[0]["win_rate"] and "iter311" not in session.iterates.names
    assert 0 <= sera.reward_length_r2(session, 312, offline) <= 1
