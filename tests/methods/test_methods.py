"""The methods end to end on the tiny model through the setting seam, at small sizes (the full runs
are the replication notebooks)."""
import dataclasses

import pytest

from prefalign_lite import settings
from prefalign_lite.methods import baselines, judges, sera, splits, spa, sr_dpo
from prefalign_lite.methods.session import SFT, Session, SessionConfig, head_to_head

N_PROMPTS = 300   # SPA's split: X_1, X_2, X_3 = 40, 100, 150 prompts, seed 10


@pytest.fixture(scope="module")
def session():
    cfg = SessionConfig(n_eval=48, n_train=splits.spa_pool_size(N_PROMPTS) + 64, kl_prompts=24)
    return Session(settings.EmbeddedSetting(), config=cfg)


def test_pool_keeps_evaluation_prompts_apart(session):
    train = {r["prompt"] for r in session.pool.train}
    assert len(session.eval_prompts) == 48 and not train & set(session.eval_prompts)


def test_spa_split_seeds_are_nested_and_rounds_fixed(session):
    small, paper = splits.spa_data(session, N_PROMPTS, 0.008), splits.spa_data(session, N_PROMPTS)
    assert [len(s) for s in paper.prompt_sets] == [40, 100, 150] and small.prompt_sets == paper.prompt_sets
    assert {r["prompt"] for r in small.seed_rows} <= {r["prompt"] for r in paper.seed_rows}
    with pytest.raises(ValueError, match="seed_fraction"):
        splits.spa_data(session, N_PROMPTS, 0.5)
    with pytest.raises(ValueError, match="n_prompts=3 leaves an SPA round without prompts; need at least 4"):
        splits.iteration_sizes(3)
    assert splits.iteration_sizes(4) == [1, 1, 2]


def test_spa_runs_end_to_end_and_records_the_gate(session):
    data = splits.spa_data(session, N_PROMPTS, 0.1)
    sets = [s[:32] for s in data.prompt_sets[:2]]
    loop = spa.run_spa(session, data.seed_rows, sets, spa.SpaConfig(seed_epochs=1), stage="test SPA")
    run = loop.result()
    records = run.rounds
    assert [r["iteration"] for r in records] == [0, 1, 2]
    assert all(0 <= r["win_rate"] <= 1 and r["kl_init"] > -0.05 for r in records)
    assert records[1]["pairs"] + round(records[1]["identical_share"] * 32) == 32
    assert set(run.gate) == {"seed_beats_sft", "seed_win_low", "seed_win_rate", "eq7_accuracy", "passed"}
    assert all("gate" not in r for r in records) and "kl_previous" in records[2]
    assert run.to_json() == {"rounds": records, "gate": run.gate}
    assert {"flag_precision", "wrong_share", "flag_overlap"} <= set(records[1])   # the noise flag's diagnostics
    # a variant shares the seed iterate and switches its judge; its iterates get fresh names
    llm_loop = spa.run_spa(session, data.seed_rows, sets[:1], dataclasses.replace(spa.SpaConfig(), judge="llm", loss="dpo"),
                                seed_iterate=loop.names[0], stage="test SPA llm")
    assert llm_loop.names[0] == loop.names[0] and llm_loop.names[1] not in loop.names.values()
    # the same model evaluated under the same label draws the same answers; under another label, its own stream
    assert session.evaluate(loop.names[0], label="test SPA round 0").record["win_rate"] == records[0]["win_rate"]
    assert session.answers(loop.names[0], label="a") != session.answers(loop.names[0], label="b")
    h2h = head_to_head(session.evaluate(llm_loop.names[1]), session.evaluate(loop.names[1]))
    assert h2h["win"] + h2h["tie"] + h2h["lose"] == pytest.approx(1.0)


def test_the_loop_run_step_by_step_equals_the_one_call(session):
    """The notebooks unroll a round with the loop's steps; the one call must do exactly that."""
    data = splits.spa_data(session, N_PROMPTS, 0.1)
    sets = [s[:16] for s in data.prompt_sets[:2]]
    cfg = spa.SpaConfig(seed_epochs=1)
    whole_loop = spa.run_spa(session, data.seed_rows, sets, cfg, stage="whole")
    whole = whole_loop.result()
    steps = spa.SpaLoop(session, cfg, stage="whole", names={0: whole_loop.names[0], 1: whole_loop.names[1],
                                                           2: whole_loop.names[2]})
    steps.start(data.seed_rows, seed_iterate=whole_loop.names[0])
    sampled = steps.sample(1, sets[0])
    wins = steps.judge(1, sampled)
    annotation = steps.annotate(1, sampled, wins)
    assert steps.gate is None   # annotating measures nothing: the gate is a step of its own
    steps.measure_gate(sampled, wins)
    steps.finish(1, annotation, steps.train(1, annotation.rows))
    by_steps = steps.run(sets[1:], first=2)
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert [strip(r) for r in by_steps.rounds] == [strip(r) for r in whole.rounds] and by_steps.gate == whole.gate


def test_random_labels_are_a_fair_coin(session):
    data = splits.spa_data(session, N_PROMPTS, 0.1)
    loop = spa.SpaLoop(session, spa.SpaConfig(judge="random", loss="dpo", seed_epochs=1), stage="coin")
    loop.start(data.seed_rows)
    wins = loop.judge(1, loop.sample(1, data.prompt_sets[0][:40]))
    assert 0.25 < sum(wins) / len(wins) < 0.75 and wins == loop.judge(1, loop.sample(1, data.prompt_sets[0][:40]))


def test_a_round_whose_samples_are_all_identical_stops_naming_the_stage(session):
    greedy = dataclasses.replace(session.config, sample_temperature=1e-6)
    original, session.config = session.config, greedy
    try:
        with pytest.raises(ValueError, match="test round 1: all 8 sampled pairs were identical"):
            spa.sample_pairs(session, 1, [session.pool.train[0]["prompt"]] * 8, {0: SFT}, "test round 1")
    finally:
        session.config = original


def test_judge_reference_options():
    assert spa.judge_reference(1, "init") is SFT and spa.judge_reference(3, "previous") == 1
    assert spa.judge_reference(1, "previous") is SFT and spa.judge_reference(2, "none") is spa.NO_REFERENCE
    with pytest.raises(ValueError, match="judge_reference"):
        spa.judge_reference(1, "later")
    with pytest.raises(ValueError, match="judge must be one of"):
        spa.SpaConfig(judge="gpt4")


def test_offline_methods_on_flipped_labels(session):
    clean, flipped = splits.offline_set(session, 48), splits.offline_set(session, 48, flip_rate=0.25)
    assert [r["prompt"] for r in clean] == [r["prompt"] for r in flipped]
    assert 0 < sum(a["chosen"] != b["chosen"] for a, b in zip(clean, flipped)) < len(clean)
    record = baselines.dpo_baseline(session, clean)
    assert {"win_rate", "win_low", "gold", "length", "lc_win_rate", "kl_init", "pairs"} <= set(record)
    run = sera.run_sera(session, flipped, sera.SeraConfig(iterations=2))
    records = run.records
    assert [r["iteration"] for r in records] == [1, 2] and records[1]["offline_pairs"] == round(0.7 * len(flipped))
    assert records[1]["bootstrapped_pairs"] > 0
    assert 0 <= sera.reward_r2(session, run.names[1], flipped)["length"] <= 1
    coin = sera.run_sera(session, flipped, sera.SeraConfig(iterations=2, random_labels=True), shared_first=run.names[1])
    assert coin.records[1]["offline_pairs"] == records[1]["offline_pairs"] and coin.records[1]["bootstrapped_pairs"] > 0
    for done in (sr_dpo.sr_dpo(session, flipped), sr_dpo.sr_dpo(session, flipped, naive=True),
                 sr_dpo.dro_dpo(session, flipped)):
        assert 0 <= done.record["win_rate"] <= 1 and done.record["pairs"] == len(flipped)
        assert done.evaluation.scores.shape == (len(session.eval_prompts),)


def test_the_learning_rate_is_the_committed_grids_choice():
    import json
    from importlib import resources

    from prefalign_lite.replication import fairness
    from prefalign_lite.methods.session import LEARNING_RATE

    grid = json.loads((resources.files("prefalign_lite") / "toy_results" / "lr_selection.json").read_text())
    assert fairness.choose_learning_rate(grid["grid"]) == grid["chosen"] == LEARNING_RATE


def test_both_kls_of_an_evaluation_come_from_one_sample(session):
    """``evaluate`` estimates KL to SFT and to the previous iterate on one sample of the iterate:
    the same numbers as two separate estimates (each re-draws the same seeded sample)."""
    from prefalign_lite.engine import losses

    rows = splits.spa_data(session, N_PROMPTS).seed_rows
    session.train(70, rows, losses.Dpo(0.1), ref=SFT, init_from=None, stage="kl test 70")
    session.train(71, rows, losses.Dpo(0.1), ref=70, init_from=70, stage="kl test 71")
    assert session.fresh() not in (70, 71)
    record = session.evaluate(71, previous=70).record
    assert record["kl_init"] == session.kl(71, SFT) and record["kl_previous"] == session.kl(71, 70)
    assert record["kl_previous"] != record["kl_init"]
    assert session.evaluate(70, previous=70).record["kl_previous"] == 0.0
    assert "kl_previous" not in session.evaluate(70).record
    assert session.evaluate(SFT).record["kl_init"] == 0.0


def test_the_reward_model_judge_leaves_no_temporary_folder(session, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rows = splits.external_rows(session, splits.spa_pool_size(N_PROMPTS), 64)
    judge = judges.fit_reward_judge(session, rows)
    assert list(tmp_path.iterdir()) == []   # the judge is in memory; its training folder is gone
    scores = judge.score([r["prompt"] for r in rows[:4]], [r["chosen"] for r in rows[:4]])
    assert scores.shape == (4,) and all(s == s for s in scores)


def test_session_from_parameters_reads_a_notebooks_parameters_as_they_stand():
    params = dict(seed=3, model="", dataset="", judge="", split="", eval_split="", n_eval=8, batch_size=16,
                  grad_accumulation=2, max_length=0, max_prompt_tokens=0, n_prompts=999, beta=0.5)
    session = Session.from_parameters(params, n_train=12)
    assert session.config.seed == 3 and session.config.n_eval == 8 and session.config.n_train == 12
    assert session.config.training.batch_size == 16 and session.config.training.grad_accumulation == 2
    assert session.config.max_length is None and session.max_length == session.setting.max_length
    assert session.config.sample_temperature == SessionConfig.sample_temperature
    assert len(session.eval_prompts) == 8 and len(session.pool.train) == 12
    with pytest.raises(ValueError, match="options of a real dataset"):
        Session.from_parameters(dict(params, split="train_prefs"), n_train=12)


def test_one_default_per_setting_and_a_named_sft():
    from prefalign_lite.engine import trainer
    from prefalign_lite.engine.distributed import main as launcher
    import inspect

    assert SessionConfig().training.learning_rate == trainer.TrainConfig().learning_rate == trainer.LEARNING_RATE
    assert "trainer.TrainConfig.learning_rate" in inspect.getsource(launcher)
    assert SFT is not None and repr(SFT) == "SFT"
