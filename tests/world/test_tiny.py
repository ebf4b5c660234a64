"""The tiny chat model: tokenizer, size, cached SFT, loading by path, sampling quality."""
import json
import time

import numpy as np
import pytest
import torch

from prefalign_lite import world
from prefalign_lite.engine import generate, models
from prefalign_lite.world import tiny


@pytest.fixture(scope="module")
def sft():
    path = tiny.sft_model_path()  # built once per checkout (cached by configuration), then reused
    return path, *models.load_pretrained(path)


def test_tokenizer_and_chat_template():
    tok = tiny.build_tokenizer()
    text = tok.apply_chat_template([{"role": "user", "content": "sort 3 1"}, {"role": "assistant", "content": "1 3"}], tokenize=False)
    assert text == "<|user|> sort 3 1 <|assistant|> 1 3 <eos> "
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True).split() == ["sort", "3", "1", "1", "3"]
    prompt = tok.apply_chat_template([{"role": "user", "content": "sort 3 1"}], tokenize=False, add_generation_prompt=True)
    assert text.startswith(prompt)


def test_model_size_is_under_half_a_million():
    model = tiny.build_model(tiny.TinyConfig(), tiny.build_tokenizer())
    assert 0.3e6 < sum(p.numel() for p in model.parameters()) < 0.5e6   # 4 layers of width 96: 0.38M


def test_cache_key_follows_the_configuration():
    assert tiny.TinyConfig().key() == tiny.TinyConfig().key()
    assert tiny.TinyConfig(seed=1).key() != tiny.TinyConfig().key()


def test_sft_is_cached_fast_and_under_three_minutes(sft):
    path, _, _ = sft
    start = time.perf_counter()
    assert tiny.sft_model_path() == path
    assert time.perf_counter() - start < 1.0
    stats = json.loads((path / "sft_stats.json").read_text())
    print(f"SFT: {stats['sft_seconds']} s, {stats['parameters']} parameters, loss {stats['train_loss']}")
    assert stats["sft_seconds"] < 180
    assert not list(path.parent.glob(".building-*")), "no half-built model left behind"


def test_loading_by_local_path_is_the_from_pretrained_path(sft, tmp_path):
    path, model, _ = sft
    model.save_pretrained(tmp_path)
    tiny.build_tokenizer().save_pretrained(tmp_path)
    again, tok = models.load_pretrained(tmp_path)
    ids = torch.tensor([tok("<|user|> add 1 2 <|assistant|>", add_special_tokens=False)["input_ids"]])
    assert torch.equal(again(ids).logits, model(ids).logits)


def test_sft_samples_parse_and_spread(sft):
    _, model, tok = sft
    tasks = world.make_tasks(400, seed=999)
    out, stats = generate.sample(model, tok, [t.prompt for t in tasks], temperature=0.7, seed=0, progress=False)
    responses = [o[0] for o in out]
    parse = np.mean([world.parses(t, r) for t, r in zip(tasks, responses)])
    gold = np.array([world.gold_reward(t, r) for t, r in zip(tasks, responses)])
    print(f"SFT samples: parse rate {parse:.3f}, gold mean {gold.mean():.3f} std {gold.std():.3f}; "
          f"{stats.tokens_per_second:.0f} new tokens/s")
    assert parse >= 0.9
    assert gold.std() >= 0.15
    assert gold.mean() < 0.95  # room to improve


def test_generation_is_reproducible(sft):
    _, model, tok = sft
    prompts = [t.prompt for t in world.make_tasks(20, seed=5)]
    a, _ = generate.sample(model, tok, prompts, n_samples=3, temperature=1.0, seed=7, batch_size=16, progress=False)
    b, _ = generate.sample(model, tok, prompts, n_samples=3, temperature=1.0, seed=7, batch_size=16, progress=False)
    c, _ = generate.sample(model, tok, prompts, n_samples=3, temperature=1.0, seed=8, batch_size=16, progress=False)
    assert a == b and a != c
    assert len(a) == 20 and all(len(x) == 3 for x in a)
    greedy, _ = generate.sample(model, tok, prompts[:4], temperature=0.0, progress=False)
    assert greedy == generate.sample(model, tok, prompts[:4], temperature=0.0, seed=123, progress=False)[0]
    with pytest.raises(ValueError, match="top_p"):
        generate.sample(model, tok, prompts, top_p=0.0)
