"""The real-data path's inputs that used to fail silently or with the wrong cause: Sr-DPO's quality
prompt under a left cut, reward models checked when they load (one output, a trained head, finite
scores, the context capped at the model's positions), chat templates that cannot split a pair,
paths that do not exist, a tokenizer without a pad token. Each test failed before the change it
covers. Tiny models built here and the kit's stand-ins' tokenizers; no network."""
import json
import logging
import re

import numpy as np
import pytest
import torch
from helpers import reference_of

from prefalign_lite.engine import checkpoints, encoding, logps, losses, models, trainer
from prefalign_lite.engine.reward_model import RewardModel, encode_chats, train_reward_model
from prefalign_lite.methods.judges import llm_prefers_first, reward_model_prefers_first
from prefalign_lite.settings import resolve
from prefalign_lite.settings.dataset import PAPER_QUALITY_PROMPT
from prefalign_lite.world import tiny

LONG = "count a in " + " ".join(["a"] * 20)   # 23 words: the toy template makes it 26 prompt tokens with "best"


def tokens(tok, ids):
    return tok.convert_ids_to_tokens(list(ids))


def tiny_lm(tok, **config):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=config.pop("vocab_size", len(tok)), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, **config)
    return LlamaForCausalLM(cfg).eval()


def saved_classifier(folder, tok, num_labels=1, kind="llama", positions=128):
    from transformers import GPT2Config, GPT2ForSequenceClassification, LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2,
                                                         n_positions=positions, num_labels=num_labels,
                                                         pad_token_id=tok.pad_token_id))
    else:
        model = LlamaForSequenceClassification(LlamaConfig(
            vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=positions, num_labels=num_labels,
            pad_token_id=tok.pad_token_id))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model.eval()


# ---- Sr-DPO's quality prompt under the left cut ------------------------------------------------------

def test_the_cut_takes_the_users_text_and_keeps_the_quality_word():
    tok = tiny.build_tokenizer()
    rows = [{"prompt": LONG, "chosen": "3", "rejected": "4"}]
    done = encoding.tokenise_rows(tok, rows, prefix="best", max_length=12)
    # 26 prompt tokens keep 10: "<|user|>" goes first, then the 15 words right after "best"
    assert tokens(tok, done.pairs[0].prompt_ids) == ["best"] + ["a"] * 8 + ["<|assistant|>"]
    assert done.truncated == 1 and done.instruction_lost == []
    # the same pair without a prefix is cut as before: the last 10 tokens
    plain = encoding.tokenise_rows(tok, rows, max_length=12).pairs[0]
    assert tokens(tok, plain.prompt_ids) == ["a"] * 9 + ["<|assistant|>"]


def test_a_cut_that_stops_before_the_quality_word_is_unchanged():
    tok = tiny.build_tokenizer()
    head, _ = encoding.encode(tok, "best " + LONG, "3")
    span = encoding.instruction_span(tok, "best", LONG)
    assert (span.start, span.end, span.text_end) == (1, 2, 25)
    assert encoding.cut_prompt(head, 26, 0, span) == (head, False)
    assert encoding.cut_prompt(head, 25, 0, span) == (encoding.cut_left(head, 25), False)   # only "<|user|>" goes
    assert encoding.cut_prompt(head, 20, 0, span) == (head[1:2] + head[7:], False)   # then 5 words after "best"
    assert encoding.cut_prompt(head, 2, 0, span) == (head[1:2] + head[25:], False)   # "best <|assistant|>"
    assert encoding.cut_prompt(head, 1, 0, span) == (encoding.cut_left(head, 1), True)
    assert encoding.cut_prompt(head, 20, 0, encoding.InstructionSpan(None)) == (encoding.cut_left(head, 20), True)


def test_the_paper_quality_prompt_survives_on_qwen_and_zephyr():
    from transformers import AutoTokenizer

    user = "Tell me about running. " + ("I run every morning before work and wonder about pace. " * 40).strip()
    row = {"prompt": user, "chosen": "Run slowly at first.", "rejected": "No."}
    for name in ("standin:qwen2.5-0.5b-instruct", "standin:zephyr-7b-sft-full"):
        tok = AutoTokenizer.from_pretrained(resolve(name))
        full, _ = encoding.encode(tok, f"{PAPER_QUALITY_PROMPT} {user}", "Run slowly at first.")
        pair = encoding.tokenise_rows(tok, [row], prefix=PAPER_QUALITY_PROMPT, max_length=256).pairs[0]
        assert pair.truncated and len(pair.prompt_ids) + len(pair.chosen_ids) == 256, name
        assert PAPER_QUALITY_PROMPT in tok.decode(pair.prompt_ids), name
        assert pair.prompt_ids[-40:] == full[-40:]   # the end of the user's text and the generation prompt stay
        first = encoding.bos_kept(tok)
        plain_cut = encoding.cut_left(full, len(pair.prompt_ids), first)   # the cut before: from the left only
        assert PAPER_QUALITY_PROMPT[:40] not in tok.decode(plain_cut), name
    assert first == 1 and pair.prompt_ids[0] == tok.bos_token_id   # Zephyr's BOS stays in front


def test_pairs_without_room_for_the_quality_word_are_counted_and_logged(caplog):
    tok = tiny.build_tokenizer()
    rows = [{"prompt": LONG, "chosen": "3", "rejected": "4"}, {"prompt": "add 1 2", "chosen": "3", "rejected": "4"}]
    caplog.set_level(logging.WARNING, logger="prefalign_lite.engine.encoding")
    done = encoding.tokenise_rows(tok, rows, prefix="best", max_length=3, min_completion_tokens=2, stage="Sr-DPO")
    assert done.instruction_lost == [0, 1] and tokens(tok, done.pairs[0].prompt_ids) == ["<|assistant|>"]
    assert "Sr-DPO: the prompt prefix 'best' did not fit within max_length 3 in 2 of 2 pairs (rows 0, 1)" in caplog.text
    batch = encoding.pair_batch(tok, [LONG], ["3"], ["4"], prefix="best", max_length=3, min_completion_tokens=2)
    assert batch.instruction_lost == 1


def test_sr_dpo_training_and_refinement_log_probs_see_the_quality_word():
    tok = tiny.build_tokenizer()
    model = tiny_lm(tok)
    rows = [{"prompt": LONG, "chosen": "3", "rejected": "4"}] * 2
    run = trainer.PreferenceTrainer(model, tok, losses.make("sr_dpo", beta=0.1, lam=0.5, prefix="best"),
                                    reference_of(model), trainer.TrainConfig(max_length=12, progress=False))
    _, augmented = run.prepare(rows, "Sr-DPO")
    assert tokens(tok, augmented.pairs[0].prompt_ids)[0] == "best"
    w, _ = logps.pair_logps(model, tok, rows[:1], prefix="best", max_length=12)
    expected = encoding.collate(augmented.pairs[:1], tok.pad_token_id)
    assert w.item() == pytest.approx(logps.split_pairs(logps.forward_logps(model, expected))[0].item(), abs=1e-6)


# ---- reward models checked when they load ------------------------------------------------------------

def test_a_two_label_head_is_refused_unless_a_label_is_named(tmp_path):
    tok = tiny.build_tokenizer()
    model = saved_classifier(tmp_path, tok, num_labels=2)
    with pytest.raises(ValueError, match=r"reward model .*: the model has num_labels = 2 .*Pass label=<index in 0\.\.1>"):
        RewardModel(tmp_path)
    with pytest.raises(ValueError, match=r"label must be an integer in \[0, num_labels\) = \[0, 2\), got 2"):
        RewardModel(tmp_path, label=2)
    judge = RewardModel(tmp_path, label=1)
    ids = encode_chats(tok, ["add 1 1"], ["2"])
    with torch.no_grad():
        direct = model(input_ids=torch.tensor(ids)).logits[0]
    assert judge.score(["add 1 1"], ["2"])[0] == pytest.approx(direct[1].item(), abs=1e-5)
    assert direct[0].item() != pytest.approx(direct[1].item(), abs=1e-3)


def test_a_causal_lm_folder_or_a_judge_without_a_template_is_refused(tmp_path):
    tok = tiny.build_tokenizer()
    tiny_lm(tok).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match=r"lm: the checkpoint is a LlamaForCausalLM, not a reward model \(a sequence classifier"):
        RewardModel(tmp_path / "lm")
    config = json.loads((tmp_path / "lm" / "config.json").read_text())
    del config["architectures"]
    (tmp_path / "lm" / "config.json").write_text(json.dumps({**config, "num_labels": 1, "id2label": {"0": "LABEL_0"},
                                                             "label2id": {"LABEL_0": 0}}))
    with pytest.raises(ValueError, match=r"no trained score head \(\['score.weight'\] would be newly initialised"):
        RewardModel(tmp_path / "lm")
    tok.chat_template = None
    saved_classifier(tmp_path / "rm", tok)
    with pytest.raises(ValueError, match=r"rm: its tokenizer has no chat template"):
        RewardModel(tmp_path / "rm")


def _nan_judge(tmp_path):
    """A reward model whose embedding of the token "9" is NaN: only answers holding it score NaN."""
    tok = tiny.build_tokenizer()
    model = saved_classifier(tmp_path, tok)
    with torch.no_grad():
        model.get_input_embeddings().weight[tok.convert_tokens_to_ids("9")] = float("nan")
    model.save_pretrained(tmp_path)
    return RewardModel(tmp_path, batch_size=2)


def test_a_nan_score_is_an_error_naming_the_row(tmp_path):
    judge = _nan_judge(tmp_path)
    with pytest.raises(ValueError, match=r"the score of row 2 is nan \(1 of 3 rows not finite, rows \[2\]; prompt 'add 4 5'"):
        judge.score(["add 1 1", "add 1 2", "add 4 5"], ["2", "3", "9"])
    assert np.isfinite(judge.score(["add 1 1"], ["2"])).all()


def test_spa_reward_model_labelling_refuses_nan_naming_the_pair(tmp_path):
    judge = _nan_judge(tmp_path)
    rows = [{"prompt": "add 1 1", "chosen": "2", "rejected": "3"}, {"prompt": "add 4 5", "chosen": "8", "rejected": "9"}]
    with pytest.raises(ValueError, match=r"reward-model labelling of 2 pairs, the rejected answers: .*row 1 is nan"):
        reward_model_prefers_first(judge, rows)

    class Constant:
        name = "a judge giving inf"

        def score(self, prompts, answers):
            return np.array([0.0, np.inf])[:len(prompts)]
    with pytest.raises(ValueError, match=r"a judge giving inf scored the chosen answer of pair 1 as inf"):
        reward_model_prefers_first(Constant(), rows)


def test_llm_as_judge_refuses_non_finite_verdicts_naming_the_question():
    tok = tiny.build_tokenizer()
    model = tiny_lm(tok)
    with torch.no_grad():
        model.get_input_embeddings().weight[tok.convert_tokens_to_ids("9")] = float("nan")

    class AskAsIs:   # a setting whose question is the row itself
        def llm_first_wins(self, logps, rows, tokenizer=None, max_length=None):
            a, b = logps(rows)
            return (a - b > 0).tolist()
    rows = [{"prompt": "add 1 1", "chosen": "2", "rejected": "3"}, {"prompt": "add 4 5", "chosen": "9", "rejected": "8"}]
    assert len(llm_prefers_first(model, tok, AskAsIs(), rows[:1], max_length=32)) == 1
    with pytest.raises(ValueError, match=r"LLM-as-judge: the verdict log-probs of question 1 are nan and .* \(1 of 2 "
                                         r"questions not finite: \[1\]\); its prompt ends 'add 4 5'"):
        llm_prefers_first(model, tok, AskAsIs(), rows, max_length=32)


def test_the_scoring_context_is_capped_at_the_models_positions(tmp_path):
    tok = tiny.build_tokenizer()
    model = saved_classifier(tmp_path, tok, kind="gpt2", positions=16)
    judge = RewardModel(tmp_path, batch_size=2)   # asks for 4096 tokens by default
    assert judge.max_length == 16
    scores = judge.score([LONG, "add 1 1"], ["20", "2"])   # the first conversation is 27 tokens
    with torch.no_grad():
        last16 = model(input_ids=torch.tensor(encode_chats(tok, [LONG], ["20"], 16))).logits[0, 0].item()
    assert scores[0] == pytest.approx(last16, abs=1e-5) and np.isfinite(scores).all()
    assert RewardModel(tmp_path, max_length=8).max_length == 8


# ---- errors that name the real cause -------------------------------------------------------------------

BAD_TEMPLATE = "{% for m in messages %}{{ m['role'] }}{% endfor %}{% if add_generation_prompt %}!{% endif %}"


def test_a_template_that_does_not_extend_its_prompt_is_reported_as_such_in_skip_mode():
    tok = tiny.build_tokenizer()
    tok.chat_template = BAD_TEMPLATE
    rows = [{"prompt": "add 1 2", "chosen": "3", "rejected": "4"}] * 2
    cfg = trainer.TrainConfig(on_unusable_pair="skip", progress=False)
    run = trainer.PreferenceTrainer(tiny_lm(tok), tok, losses.Dpo(0.1), reference_of(tiny_lm(tok)), cfg)
    with pytest.raises(encoding.ChatTemplateError,
                       match=r"training: no usable pair among 2 rows: skipped 2 rows for the chat template \(rows 0, 1; "
                             r"the first: the chat template"):
        run.train(rows)


def test_rows_one_template_cannot_split_are_counted_by_reason(caplog):
    tok = tiny.build_tokenizer()
    # an answer holding "sort" gets a stray user tag in front: that conversation no longer extends its prompt
    tok.chat_template = tiny.CHAT_TEMPLATE.replace(
        "{% elif message['role'] == 'assistant' %}",
        "{% elif message['role'] == 'assistant' %}{% if 'sort' in message['content'] %}<|user|> {% endif %}")
    rows = [{"prompt": "add 1 2", "chosen": "3", "rejected": "4"},
            {"prompt": "add 1 2", "chosen": "sort", "rejected": "4"},
            {"prompt": LONG, "chosen": "20", "rejected": "19"}]
    caplog.set_level(logging.WARNING, logger="prefalign_lite.engine.encoding")
    done = encoding.tokenise_rows(tok, rows, max_length=12, min_completion_tokens=0, on_unusable="skip", stage="SPA")
    assert done.kept == [0] and done.skipped == [1, 2]
    assert done.skipped_for == {"chat template": [1], "max_length": [2]}
    assert "SPA: skipped 1 rows for the chat template (rows 1; the first: the chat template's" in caplog.text
    assert "SPA: skipped 1 rows for the max_length (rows 2; the first: the chosen completion keeps no token" in caplog.text


def test_a_template_that_drops_the_answer_and_a_missing_template_are_named():
    tok = tiny.build_tokenizer()
    tok.chat_template = "{% for m in messages %}{% if m['role'] == 'user' %}<|user|> {{ m['content'] }} {% endif %}" \
                        "{% endfor %}"
    rows = [{"prompt": "add 1 2", "chosen": "3", "rejected": "4"}]
    with pytest.raises(encoding.ChatTemplateError, match=r"row 0: the chat template renders no token for the "
                                                         r"assistant's answer '3' \(it drops the assistant turn\)"):
        encoding.tokenise_rows(tok, rows, max_length=12, stage="DPO")
    tok.chat_template = None
    with pytest.raises(encoding.TemplateRenderError, match=r"DPO: row 0: the tokenizer .* has no chat template"):
        encoding.tokenise_rows(tok, rows, on_unusable="skip", stage="DPO")
    tok.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(encoding.TemplateRenderError, match=r"fails to render a user conversation: .*roles must alternate"):
        encoding.tokenise_rows(tok, rows, stage="DPO")


def test_a_local_path_that_does_not_exist_says_so(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-model"
    for load in (lambda p: models.load_pretrained(p), lambda p: models.load_base(p, four_bit=False),
                 lambda p: RewardModel(p), lambda p: train_reward_model(p, [{"prompt": "a", "chosen": "b", "rejected": "c"}],
                                                                       tmp_path / "out")):
        with pytest.raises(FileNotFoundError, match=re.escape(f"'{missing}': no such file or folder (") + ".*does not exist"):
            load(str(missing))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("./sft", "~/no-such-prefalign-model", "runs/sft"):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            models.load_pretrained(name)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"'adapter': the folder has no config.json \(a LoRA adapter: give its base model\)"):
        models.load_pretrained("adapter")
    with pytest.raises(ValueError, match="reward model: no path or hub id given"):
        RewardModel("")
    assert not checkpoints.looks_like_path("Qwen/Qwen2.5-0.5B-Instruct") and checkpoints.looks_like_path("a/b/c")
    assert issubclass(checkpoints.ModelPathError, ValueError)   # also caught where config errors are


def test_a_reward_models_folder_as_the_policy_is_refused():
    """The stand-in reward model ties its embeddings, so a causal LM loads from it without a missing
    weight: it used to load as a policy with no complaint."""
    for load in (models.load_pretrained, lambda p: models.load_base(p, four_bit=False)):
        with pytest.raises(ValueError, match=r"reward_model': the checkpoint is a Qwen2ForSequenceClassification, "
                                             r"not a causal language model"):
            load(resolve("standin:reward_model"))


def test_a_tokenizer_larger_than_the_models_embeddings_is_refused(tmp_path):
    tok = tiny.build_tokenizer()
    tiny_lm(tok, vocab_size=len(tok) - 5).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=rf"the tokenizer has {len(tok)} tokens but the model embeds only {len(tok) - 5}"):
        models.load_pretrained(tmp_path)


def test_pair_logps_pads_a_tokenizer_without_a_pad_token_with_id_0():
    tok = tiny.build_tokenizer()
    model = tiny_lm(tok)
    rows = [{"prompt": "add 1 2", "chosen": "3", "rejected": "4 4 4"}, {"prompt": LONG, "chosen": "20", "rejected": "1"}]
    with_pad = logps.pair_logps(model, tok, rows)
    tok.pad_token = None
    without = logps.pair_logps(model, tok, rows)
    assert tok.pad_token_id is None and encoding.pad_token_id_or(tok) == 0
    for a, b in zip(with_pad, without):
        assert torch.allclose(a, b, atol=1e-6)
    assert logps.completion_logps_of(model, tok, ["add 1 2"], ["3"]).shape == (1,)
