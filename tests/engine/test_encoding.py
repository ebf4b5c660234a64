"""The truncation policy (prompt cut from the left first, a reserve of completion tokens, then the
completions' ends), unusable pairs as errors or counted skips, stage labels, empty training sets
and History.last on a missing key. About 4 s (one tiny model load)."""
import pytest
import torch
from helpers import reference_of

from prefalign_lite.engine import encoding, logps, losses, models, trainer
from prefalign_lite.world import tiny

P, C, R = list(range(100, 110)), list(range(200, 206)), list(range(300, 303))  # 10 prompt, 6 + 3 completion


def test_a_pair_that_fits_is_left_alone():
    pair = encoding.truncate_pair(P, C, R, max_length=16)
    assert (pair.prompt_ids, pair.chosen_ids, pair.rejected_ids, pair.truncated) == (P, C, R, False)
    assert encoding.truncate_pair(P, C, R, max_length=None).truncated is False


def test_the_prompt_is_cut_from_the_left_first():
    # 10 + 6 > 14: the reserve (7) covers the whole longer completion, so only the prompt's start goes
    pair = encoding.truncate_pair(P, C, R, max_length=14)
    assert pair.prompt_ids == P[2:] and pair.chosen_ids == C and pair.rejected_ids == R and pair.truncated


def test_the_completion_end_goes_only_past_the_reserve():
    # max_length 10, reserve 4: the prompt keeps 10 - 4 = 6 tokens (its end), the completions 4
    pair = encoding.truncate_pair(P, C, R, max_length=10, min_completion_tokens=4)
    assert pair.prompt_ids == P[4:] and pair.chosen_ids == C[:4] and pair.rejected_ids == R
    # a short prompt leaves the completions more room than the reserve
    short = encoding.truncate_pair(P[:2], C, R, max_length=6, min_completion_tokens=1)
    assert short.prompt_ids == P[:2] and short.chosen_ids == C[:4]
    # the default reserve is half of max_length
    half = encoding.truncate_pair(P, C + C, R, max_length=8)
    assert len(half.prompt_ids) == 4 and half.chosen_ids == (C + C)[:4]


def test_same_policy_on_text_rows_keeps_the_end_token():
    tok = tiny.build_tokenizer()
    words = " ".join(["a"] * 30)
    batch = encoding.pair_batch(tok, [f"count a in {words}"], ["3"], ["4"], max_length=12)
    assert batch.input_ids.shape == (2, 12) and batch.pairs_truncated == 1
    kept = tok.convert_ids_to_tokens(batch.input_ids[0].tolist())
    assert kept[-3:] == ["<|assistant|>", "3", "<eos>"]  # the answer and its end token survive
    assert "<|user|>" not in kept  # the start of the prompt went first


def test_unusable_pairs_raise_naming_row_side_and_lengths():
    with pytest.raises(encoding.UnusablePairError, match=r"rejected completion keeps no token \(10 prompt, 6 chosen and 0"):
        encoding.truncate_pair(P, C, [], max_length=32)
    with pytest.raises(encoding.UnusablePairError, match="chosen completion keeps no token"):
        encoding.truncate_pair(P, C, R, max_length=10, min_completion_tokens=0)  # TRL's keep_start case
    with pytest.raises(encoding.UnusablePairError, match="the prompt keeps no token"):
        encoding.truncate_pair([], C, R, max_length=32)
    rows = [{"prompt_ids": P, "chosen_ids": C, "rejected_ids": R}, {"prompt_ids": P, "chosen_ids": C, "rejected_ids": []}]
    with pytest.raises(ValueError, match=r"SPA round 2: row 1: the rejected completion keeps no token .*0 rejected"):
        encoding.tokenise_rows(None, rows, max_length=32, stage="SPA round 2")
    done = encoding.tokenise_rows(None, rows, max_length=32, on_unusable="skip")
    assert done.kept == [0] and done.skipped == [1] and done.truncated == 0


@pytest.mark.parametrize("kwargs, field", [
    ({"min_completion_tokens": 64}, "min_completion_tokens"), ({"max_length": 1}, "max_length"),
    ({"on_unusable_pair": "drop"}, "on_unusable_pair"), ({"batch_size": 0}, "batch_size")])
def test_bad_train_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        trainer.TrainConfig(**kwargs)


def test_bad_rows_name_the_row_and_field():
    with pytest.raises(ValueError, match=r"row 0: field 'chosen_ids' must be a list of token ids"):
        encoding.tokenise_rows(None, [{"prompt_ids": [1], "chosen_ids": "abc", "rejected_ids": [2]}], max_length=8)
    with pytest.raises(ValueError, match=r"row 0: field 'rejected' must be a string"):
        encoding.tokenise_rows(None, [{"prompt": "x", "chosen": "y"}], max_length=8)
    with pytest.raises(ValueError, match="row 0 is text but no tokenizer"):
        encoding.tokenise_rows(None, [{"prompt": "x", "chosen": "y", "rejected": "z"}], max_length=8)


@pytest.fixture(scope="module")
def model():
    path = tiny.sft_model_path()
    policy, tok = models.load_pretrained(path)
    ref, _ = models.load_pretrained(path)
    return policy, ref, tok


def _long_and_short_rows():
    long_prompt = "count a in " + " ".join(["a"] * 20)
    return [{"prompt": "add 1 2", "chosen": "3", "rejected": "4"},
            {"prompt": long_prompt, "chosen": "20", "rejected": "19"},
            {"prompt": "sort 3 1 2", "chosen": "1 2 3", "rejected": "3 2 1"}]


def test_history_counts_truncated_and_skipped_pairs_per_stage(model, caplog):
    policy, ref, tok = model
    cfg = trainer.TrainConfig(max_length=12, min_completion_tokens=0, on_unusable_pair="skip", batch_size=2,
                              log_every=1, progress=False, stage="SPA round 2")
    caplog.set_level("INFO", logger="prefalign_lite.engine.trainer")
    history = trainer.PreferenceTrainer(policy, tok, losses.Dpo(0.1), reference_of(ref), cfg).train(_long_and_short_rows())
    # min_completion_tokens=0: the long prompt fills max_length, nothing of its answers is left
    assert (history.stage, history.pairs, history.pairs_skipped, history.pairs_truncated) == ("SPA round 2", 2, 1, 0)
    assert "SPA round 2: 2 pairs (0 truncated to max_length 12, 1 skipped of 3 rows, 1 for the max_length)" in caplog.text
    assert history.skipped_for == {"max_length": 1} and history.pairs_instruction_lost == 0
    assert history.records[-1]["update"] == 1 and history.records[-1]["seconds_per_update"] > 0
    kept = trainer.PreferenceTrainer(policy, tok, losses.Dpo(0.1), reference_of(ref),
                                     trainer.TrainConfig(max_length=12, progress=False)).train(_long_and_short_rows())
    assert (kept.pairs, kept.pairs_skipped, kept.pairs_truncated) == (3, 0, 1)


def test_strict_mode_names_stage_row_and_side(model):
    policy, ref, tok = model
    cfg = trainer.TrainConfig(max_length=12, min_completion_tokens=0, progress=False)
    with pytest.raises(ValueError, match=r"SeRA t=2: row 1: the chosen completion keeps no token \(\d+ prompt"):
        trainer.PreferenceTrainer(policy, tok, losses.Dpo(0.1), reference_of(ref), cfg).train(
            _long_and_short_rows(), stage="SeRA t=2")


def test_nothing_to_train_on_is_an_error_naming_the_stage_and_cause(model):
    policy, ref, tok = model
    run = trainer.PreferenceTrainer(policy, tok, losses.Dpo(0.1), reference_of(ref),
                                    trainer.TrainConfig(progress=False, stage="SPA round 1"))
    with pytest.raises(ValueError, match=r"SPA round 1: no pairs to train on \(0 rows given\)"):
        run.train([])
    skip_all = trainer.TrainConfig(max_length=12, min_completion_tokens=0, on_unusable_pair="skip", progress=False)
    run = trainer.PreferenceTrainer(policy, tok, losses.Dpo(0.1), reference_of(ref), skip_all)
    with pytest.raises(ValueError, match=r"Sr-DPO: no pairs to train on: all 1 rows were skipped .*max_length 12"):
        run.train(_long_and_short_rows()[1:2], stage="Sr-DPO")


def test_history_last_on_a_missing_key_is_a_key_error():
    history = trainer.History(records=[{"loss": 0.5, "margin": 0.1}], stage="SPA round 3")
    assert history.last("loss") == 0.5
    with pytest.raises(KeyError, match=r"SPA round 3: no record has 'noise_share'.*keys logged: \['loss', 'margin'\]"):
        history.last("noise_share")
    with pytest.raises(KeyError, match="0 records"):
        trainer.History().last("loss")


def test_token_id_rows_train_without_a_tokenizer(model):
    policy, ref, tok = model
    rows = [{"prompt_ids": [3, 5, 6, 7], "chosen_ids": [8, 2], "rejected_ids": [9, 9, 2]} for _ in range(4)]
    run = trainer.PreferenceTrainer(policy, None, losses.Dpo(0.1), reference_of(ref),
                                    trainer.TrainConfig(batch_size=2, progress=False, log_every=1))
    batch = run.encode(rows[:2])
    assert batch.input_ids.tolist()[0] == [3, 5, 6, 7, 8, 2, 0] and batch.labels.tolist()[2][4:] == [9, 9, 2]
    history = run.train(rows)
    assert history.pairs == 4 and len(history.records) == 2 and torch.isfinite(torch.tensor(history.last("loss")))


def test_a_non_finite_loss_stops_the_stage_naming_it(model):
    policy, ref, tok = model
    class NanLoss(losses.TrainingLoss):
        beta = 0.1

        def __call__(self, x):
            return (x.pi_w - x.pi_w.detach()) * float("nan"), {}

    nan_loss = NanLoss()
    run = trainer.PreferenceTrainer(policy, tok, nan_loss, reference_of(ref), trainer.TrainConfig(progress=False))
    with pytest.raises(FloatingPointError, match=r"SeRA round 2: non-finite loss at update 0 \(rows \["):
        run.train(_long_and_short_rows(), stage="SeRA round 2")


def test_remembered_encodings_follow_the_chat_template():
    tok = tiny.build_tokenizer()
    first = encoding.encode(tok, "add 1 2", "3")
    assert encoding.encode(tok, "add 1 2", "3") == first
    head, tail = first
    head.append(99)   # callers get copies: the memo is not changed through them
    assert encoding.encode(tok, "add 1 2", "3")[0] == head[:-1]
    tok.chat_template = tok.chat_template.replace("<|assistant|> {{ message['content'] }}", "<|assistant|> <|assistant|> {{ message['content'] }}")
    assert encoding.encode(tok, "add 1 2", "3")[1] == [tok.convert_tokens_to_ids("<|assistant|>")] + first[1]
