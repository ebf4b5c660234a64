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
