"""The quirk-faithful stand-ins: each reproduces what is public about its real artefact (split names,
columns, long prompts, leading newlines; chat templates, special tokens and their settings,
generation defaults, tied embeddings, vocabulary size, a reward model without a pad token).

Cost on 2 CPU cores: about 35 s per model the first time (cached under the kit's cache folder), then
a few seconds.
"""
import dataclasses
import json

import pytest

from prefalign_lite.engine import chat
from prefalign_lite.settings import FAITHFUL, artefacts, is_standin, resolve
from prefalign_lite.settings import standin_build as B
from prefalign_lite.settings.standin_data import LEADING, ultrafeedback_splits

USER_ASSISTANT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return lambda name: AutoTokenizer.from_pretrained(resolve(f"standin:{name}"))


@pytest.fixture(scope="module")
def config():
    from transformers import AutoConfig

    return lambda name: AutoConfig.from_pretrained(resolve(f"standin:{name}"))


def test_every_name_resolves_and_the_first_standins_still_do():
    assert set(FAITHFUL) == set(B.names())
    for name in ("policy", "reward_model", "dataset", *FAITHFUL):
        assert is_standin(f"standin:{name}")
    with pytest.raises(ValueError, match="unknown stand-in 'standin:qwen'"):
        resolve("standin:qwen")


def test_ultrafeedback_standin_has_exactly_the_real_splits_and_columns():
    import datasets

    saved = datasets.load_from_disk(resolve("standin:ultrafeedback_binarized"))
    assert sorted(saved) == sorted(artefacts.ULTRAFEEDBACK_SPLITS) and "train" not in saved
    for split in saved.values():
        assert tuple(split.column_names) == artefacts.ULTRAFEEDBACK_COLUMNS
    row = saved["train_prefs"][0]
    assert list(row["chosen"][0]) == ["content", "role"]   # datasets orders a struct's fields so
    assert row["chosen"][0]["content"] == row["prompt"] and row["messages"] == row["chosen"]
    assert saved["train_gen"][0]["messages"] == saved["train_gen"][0]["chosen"][:1]
    splits = ultrafeedback_splits()
    test = {r["prompt"] for r in splits["test_prefs"]}
    assert not test & {r["prompt"] for r in splits["train_prefs"]}   # no prompt in both parts
    assert {r["prompt"] for r in splits["train_sft"]} == {r["prompt"] for r in splits["train_prefs"]}
    starts = [r["chosen"][1]["content"][:2] for r in splits["train_prefs"]]
    assert starts.count("\n\n") == sum(1 for i in range(400) if LEADING.get(i % 9) == "\n\n") == 45


def test_the_long_prompt_tail_passes_the_models_context_budgets(tok):
    qwen = tok("qwen2.5-0.5b-instruct")
    lengths = sorted(len(qwen(r["prompt"])["input_ids"]) for r in ultrafeedback_splits()["train_prefs"])
    assert lengths[len(lengths) // 2] < 40                 # most prompts are short
    assert sum(n > 100 for n in lengths) >= 20             # a tail of long ones (measured 23)
    assert lengths[-1] > 1024 and sum(n > 1024 for n in lengths) >= 5   # some over the DPO recipe's max_length


def test_qwen_standin_tokenizer_template_and_generation_defaults(tok, config):
    from transformers import GenerationConfig

    t = tok("qwen2.5-0.5b-instruct")
    assert type(t).__name__ == "Qwen2Tokenizer"
    assert (t.bos_token, t.eos_token, t.pad_token) == (None, "<|im_end|>", "<|endoftext|>")
    assert t.apply_chat_template(USER_ASSISTANT[:1], tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert type(t.backend_tokenizer.normalizer).__name__ == "NFC"
    # Qwen2's pre-tokenizer keeps a run of newlines as one piece (the real vocabulary has "ĊĊĊ"; the
    # stand-in's 1,024 ids stop at "ĊĊ", so three newlines are two ids of one piece)
    pieces = [p for p, _ in t.backend_tokenizer.pre_tokenizer.pre_tokenize_str("assistant\n\n\nHello")]
    assert pieces == ["assistant", "ĊĊĊ", "Hello"]
    assert t.convert_ids_to_tokens(t("assistant\n\nHello", add_special_tokens=False)["input_ids"])[:2] == ["assistant", "ĊĊ"]
    assert t("1234")["input_ids"] == [t.convert_tokens_to_ids(c) for c in "1234"]   # Qwen2 splits every digit
    c = config("qwen2.5-0.5b-instruct")
    assert (c.architectures, c.vocab_size, c.tie_word_embeddings, c.pad_token_id) == (["Qwen2ForCausalLM"], 151936, True, None)
    assert len(t) < 1100 and c.eos_token_id == t.eos_token_id
    g = GenerationConfig.from_pretrained(resolve("standin:qwen2.5-0.5b-instruct"))
    assert (g.top_k, g.top_p, g.temperature, g.repetition_penalty, g.do_sample) == (20, 0.8, 0.7, 1.1, True)
    assert g.eos_token_id == [t.eos_token_id, t.pad_token_id]
    stats = json.loads((B.standin_path("qwen2.5-0.5b-instruct") / "build_stats.json").read_text())
    assert stats["padded_share"] < 1e-4   # the 150K padded rows take no share anywhere in the training text


def test_zephyr_standin_adds_bos_only_through_its_tokenizer(tok, config):
    t = tok("zephyr-7b-sft-full")
    assert (t.bos_token, t.eos_token, t.pad_token, t.unk_token) == ("<s>", "</s>", "</s>", "<unk>")
    assert t.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<0x0A>"]) == [0, 1, 2, 13]
    system = [{"role": "system", "content": ""}] + USER_ASSISTANT
    assert t.apply_chat_template(system, tokenize=False) == "<|system|>\n</s>\n<|user|>\nHi</s>\n<|assistant|>\nYo</s>\n"
    assert t.apply_chat_template(USER_ASSISTANT[:1], tokenize=False, add_generation_prompt=True).endswith("<|assistant|>\n")
    assert "<s>" not in t.chat_template
    assert t("Hi", add_special_tokens=True)["input_ids"][0] == 1 and chat.adds_bos(t)
    assert t.convert_ids_to_tokens(t("a\nb", add_special_tokens=False)["input_ids"]).count("<0x0A>") == 1   # byte fallback
    c = config("zephyr-7b-sft-full")
    assert (c.architectures, c.vocab_size, c.tie_word_embeddings, c.pad_token_id) == (["MistralForCausalLM"], 32000, False, None)


def test_reward_model_standins(tok, config):
    llama = tok("skywork-reward-v2-llama-3.1-8b")
    assert llama.pad_token is None and llama.bos_token == "<|begin_of_text|>" and llama.eos_token == "<|eot_id|>"
    assert llama.apply_chat_template(USER_ASSISTANT, tokenize=False) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|>")
    c = config("skywork-reward-v2-llama-3.1-8b")
    assert (c.architectures, c.pad_token_id, c.vocab_size, c.num_labels) == (["LlamaForSequenceClassification"], None, 128256, 1)
    assert len(c.eos_token_id) == 3
    qwen3 = tok("skywork-reward-v2-qwen3-0.6b")
    assert qwen3.apply_chat_template([USER_ASSISTANT[0], {"role": "assistant", "content": "\n\nYo"}], tokenize=False) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nYo<|im_end|>\n")
    c = config("skywork-reward-v2-qwen3-0.6b")
    assert (c.architectures, c.pad_token_id, c.vocab_size) == (["Qwen3ForSequenceClassification"], qwen3.pad_token_id, 151936)
    for name in ("skywork-reward-v2-llama-3.1-8b", "skywork-reward-v2-qwen3-0.6b"):
        stats = json.loads((B.standin_path(name) / "build_stats.json").read_text())
        assert stats["heldout_accuracy"] >= 0.75   # measured 0.80 and 0.86 on 100 held-out pairs


def test_builds_are_content_keyed_atomic_and_reused(tmp_path, monkeypatch):
    quick = dataclasses.replace(B.FAITHFUL_SETTINGS, policy_steps=2, reward_steps=2, tokenizer_vocab=400, batch_size=4)
    first = B.standin_path("zephyr-7b-sft-full", tmp_path, quick)
    monkeypatch.setattr(B, "build_policy", lambda *a: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert B.standin_path("zephyr-7b-sft-full", tmp_path, quick) == first
    other = B.standin_path("ultrafeedback_binarized", tmp_path, quick)
    assert other.name.startswith("standin-ultrafeedback_binarized-") and other != first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])   # nothing half-built left
