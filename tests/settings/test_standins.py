"""The offline stand-ins for the real-data path: UltraFeedback-layout rows, the locally trained BPE
tokenizer with its ChatML template, the tiny Qwen2 policy and reward model, and their cache.

Cost on 2 CPU cores: ~25 s the first time (the shared build, cached under ``.cache/``), then ~5 s.
"""
import hashlib
import json
import math

import pytest
import torch

from prefalign_lite.engine import data, encoding, models
from prefalign_lite.settings import standins
from prefalign_lite.engine.reward_model import RewardModel


@pytest.fixture(scope="module")
def built():
    return standins.standins()


@pytest.fixture(scope="module")
def tokenizer(built):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(built.policy)


def test_smoke_rows_are_deterministic_valid_and_match_the_committed_fixture():
    rows = standins.smoke_rows()
    assert rows == standins.smoke_rows()
    assert rows != standins.smoke_rows(seed=1)
    assert standins.smoke_rows(50) == rows[:50]
    assert standins.SMOKE_FIXTURE.read_text() == "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    assert standins.SMOKE_FIXTURE.stat().st_size < 200_000
    kept, report = data.load_preferences(standins.SMOKE_FIXTURE)  # strict: raises on any bad row
    assert report.rows_read == report.rows_kept == len(rows) == 200
    assert kept[0]["prompt"] == [{"role": "user", "content": rows[0]["prompt"]}]
    assert len({r["prompt"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"prompt", "prompt_id", "chosen", "rejected", "messages", "score_chosen", "score_rejected"}
        assert r["prompt_id"] == hashlib.sha256(r["prompt"].encode()).hexdigest()
        assert r["messages"] == r["chosen"]
        for side in ("chosen", "rejected"):
            assert [m["role"] for m in r[side]] == ["user", "assistant"] and r[side][0]["content"] == r["prompt"]
        assert isinstance(r["score_chosen"], float) and r["score_chosen"] > r["score_rejected"] >= 1.0
    longer = sum(len(r["rejected"][1]["content"]) > len(r["chosen"][1]["content"]) for r in rows) / len(rows)
    assert 0.2 < longer < 0.6  # length alone does not tell which answer is better (measured 0.39)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n must be between 1 and 576"):
        standins.smoke_rows(0)
    with pytest.raises(ValueError, match="texts is empty"):
        standins.train_bpe_tokenizer([])
    with pytest.raises(ValueError, match="vocab_size"):
        standins.train_bpe_tokenizer(["a b c"], vocab_size=10)
    with pytest.raises(ValueError, match="rows: need at least 6 rows"):
        standins.build_reward_model("unused", None, standins.smoke_rows(3))


def test_tokenizer_is_chatml_and_the_answer_extends_the_generation_prompt_on_every_row(tokenizer):
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.padding_side) == ("<|im_end|>", "<|endoftext|>", "left")
    assert tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    long_prompts = 0
    for r in standins.smoke_rows():
        for side in ("chosen", "rejected"):
            answer = r[side][1]["content"]
            head, tail = encoding.encode(tokenizer, r["prompt"], answer)  # raises if the template does not extend
            assert tokenizer.decode(tail) == answer + "<|im_end|>\n"
        long_prompts += len(head) > 96
    assert long_prompts == 5  # rows 7, 47, 87, 127, 167 exercise prompt truncation


def test_policy_loads_by_path_and_often_stops_at_eos(built, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(built.policy)
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.tie_word_embeddings
    assert models.load_pretrained(built.policy)[1].eos_token_id == tokenizer.eos_token_id
    prompts = [r["prompt"] for r in standins.heldout_split(standins.smoke_rows())[1][:16]]
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    out = model.generate(**enc, do_sample=True, temperature=0.7, top_p=0.95, max_new_tokens=48)[:, enc["input_ids"].shape[1]:]
    ended = (out == tokenizer.eos_token_id).any(dim=1).float().mean().item()
    assert ended >= 0.75  # measured 1.0
    assert all(t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True))


def test_reward_model_prefers_chosen_on_held_out_rows_through_the_judge(built):
    judge = RewardModel(built.reward_model, batch_size=8)
    assert type(judge.model).__name__ == "Qwen2ForSequenceClassification" and judge.model.config.pad_token_id is not None
    held_out = standins.heldout_split(standins.smoke_rows())[1]
    prompts = [r["prompt"] for r in held_out]
    chosen = judge.score(prompts, [r["chosen"][1]["content"] for r in held_out])
    rejected = judge.score(prompts, [r["rejected"][1]["content"] for r in held_out])
    accuracy = float((chosen > rejected).mean())
    assert accuracy >= 0.8  # measured 0.975 on the 40 held-out rows
    assert accuracy == pytest.approx(built.build_stats["reward_model"]["heldout_accuracy"], abs=0.05)
    one_by_one = RewardModel(built.reward_model, batch_size=1).score(prompts[:8], [r["chosen"][1]["content"]
                                                                                         for r in held_out[:8]])
    assert one_by_one == pytest.approx(chosen[:8], abs=1e-4)  # padding does not change a score


def test_the_cache_returns_the_same_paths_without_rebuilding(built, monkeypatch):
    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached stand-in")

    monkeypatch.setattr(standins, "_build_all", no_rebuild)
    assert standins.standins() == built
    assert (built.policy / "config.json").exists() and (built.reward_model / "config.json").exists()
    assert built.dataset.read_text() == standins.SMOKE_FIXTURE.read_text()


def test_a_build_is_renamed_into_place_only_when_complete(tmp_path, monkeypatch):
    quick = standins.StandinSettings(n_rows=20, tokenizer_vocab=300, policy_steps=2, reward_steps=2, batch_size=4)
    real_build, calls = standins._build_all, []

    def failing(folder, rows, settings):
        real_build(folder, rows, settings)
        raise RuntimeError("killed after the build")

    monkeypatch.setattr(standins, "_build_all", failing)
    with pytest.raises(RuntimeError, match="killed"):
        standins.standins(tmp_path, quick)
    assert list(tmp_path.iterdir()) == []  # neither a half-built target nor a scratch folder is left
    monkeypatch.setattr(standins, "_build_all", lambda *a: calls.append(a) or real_build(*a))
    first = standins.standins(tmp_path, quick)
    assert standins.standins(tmp_path, quick) == first and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.policy.parent.name]
    assert first.build_stats["rows"] == 20 and len(first.dataset.read_text().splitlines()) == 20
