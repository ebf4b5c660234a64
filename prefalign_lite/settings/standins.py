"""Offline stand-ins for the real-data path: preference rows in UltraFeedback-binarized's layout, a
byte-level BPE tokenizer trained here with Qwen2's ChatML chat template, a tiny ``Qwen2ForCausalLM``
policy and a tiny ``Qwen2ForSequenceClassification`` reward model. No hub is reachable offline or in
CI, so the kit builds them itself, saves them with ``save_pretrained`` and the pipeline loads them by
path through ``from_pretrained``: the code path a hub id takes. The text is synthetic English written
from the templates of :mod:`.smoke_data` (never copied from a public dataset). ``standins()`` builds
everything once (~25 s on two CPU cores) and caches it under the kit's cache folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.files import building_folder, cache_root, write_text
from ..engine.encoding import encode
from ..engine.reward_model import bradley_terry_loss
from .smoke_data import (HELDOUT_EVERY, SMOKE_FIXTURE, SMOKE_MAX_ROWS, SMOKE_ROWS, rejected_answer, rows_jsonl,
                         smoke_rows, topic_of, turns)

log = logging.getLogger(__name__)

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# ChatML as Qwen2 writes it, without Qwen's default system turn: each message is
# "<|im_start|>{role}\n{content}<|im_end|>\n"; the generation prompt opens the assistant turn.
CHATML_TEMPLATE = ("{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content']"
                   " + '<|im_end|>' + '\\n' -}}{%- endfor -%}"
                   "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")

def train_bpe_tokenizer(texts: list[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained on ``texts`` with the ``tokenizers`` library, wrapped as a
    ``PreTrainedTokenizerFast`` with Qwen2's ChatML template, ``<|im_end|>`` as EOS,
    ``<|endoftext|>`` as padding and left padding (for generation)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("texts is empty: the tokenizer needs text to learn merges from")
    if vocab_size < 300:
        raise ValueError(f"vocab_size must be at least 300 (256 bytes, 3 special tokens, merges), got {vocab_size}")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=IM_END, pad_token=PAD,
                                        extra_special_tokens=[IM_START], model_max_length=512, padding_side="left")
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


BUILD_VERSION = 1  # part of the first stand-ins' cache key: raise it when their build changes


@dataclass(frozen=True)
class StandinSettings:
    """Everything that decides a stand-in build, for both builders: the first stand-ins
    (:func:`standins`, with the defaults below) and the quirk-faithful ones
    (:func:`.standin_build.standin_path`, from :data:`.standin_build.FAITHFUL_SETTINGS`). Each
    builder hashes the fields it reads into its cache key (:func:`_cache_fields` here,
    ``standin_build._key`` there)."""

    n_rows: int = SMOKE_ROWS  # smoke rows of the first stand-ins (the faithful ones train on standin_data's splits)
    seed: int = 0  # the rows, the initial weights and the batch order
    tokenizer_vocab: int = 1024  # tokens the BPE tokenizer is trained to (the faithful embeddings keep the real size)
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    max_length: int = 128  # training sequences are cut from the left to this many tokens
    batch_size: int = 16
    policy_steps: int = 400
    policy_learning_rate: float = 3e-3
    reward_steps: int = 250
    reward_learning_rate: float = 1e-3  # lower: the first reward model starts from the trained policy
    reward_extra_pairs: int = 1  # extra worse answers per training row of the first reward model
    full_size: bool = False  # faithful Qwen2.5-0.5B only: its real shape, random weights, no training


def _cache_fields(settings: StandinSettings) -> dict:
    """The settings the first stand-ins are built from, as their cache key and ``build_stats.json``
    name them (the tokenizer's size as ``vocab_size``, and :data:`BUILD_VERSION`)."""
    fields = {("vocab_size" if k == "tokenizer_vocab" else k): v for k, v in dataclasses.asdict(settings).items()
              if k != "full_size"}
    return {**fields, "version": BUILD_VERSION}


def _cache_key(settings: StandinSettings, rows: list[dict]) -> str:
    """The first stand-ins' cache key: a hash of :func:`_cache_fields` and the rows."""
    blob = json.dumps(_cache_fields(settings), sort_keys=True) + "|" + rows_jsonl(rows)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _qwen2_config(tokenizer, settings: StandinSettings, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=settings.hidden_size, intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers, num_attention_heads=settings.num_heads,
        num_key_value_heads=settings.num_kv_heads, max_position_embeddings=512, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None, **extra)


def fit(model, loss_of_batch, n_examples: int, steps: int, lr: float, batch_size: int, seed: int) -> dict:
    """AdamW, a short warm-up and a linear decay, over ``steps`` batches of ``batch_size`` example
    indices (epoch after epoch, each shuffled by ``seed``); returns statistics."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / steps))
    rng, order, losses, start = random.Random(seed), [], [], time.perf_counter()
    model.train()
    for _ in range(steps):
        if len(order) < batch_size:
            epoch = list(range(n_examples))
            rng.shuffle(epoch)
            order += epoch
        loss = loss_of_batch(order[:batch_size])
        order = order[batch_size:]
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    return {"seconds": round(time.perf_counter() - start, 1), "steps": steps,
            "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
            "parameters": sum(p.numel() for p in model.parameters())}


def padded_batch(seqs: list[list[int]], pad_id: int):
    """``(input_ids, attention_mask)``, right-padded."""
    import torch

    width = max(len(s) for s in seqs)
    return (torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs]),
            torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs]))


def build_policy(folder: Path, tokenizer, seed: int = 0, rows: list[dict] | None = None,
                 settings: StandinSettings = StandinSettings()) -> dict:
    """A tiny ``Qwen2ForCausalLM``, randomly initialised, then given a short SFT (causal-LM loss on
    the chosen answers of ``rows``, default the smoke rows, prompt masked, through the chat template)
    so that it samples text and ends at ``<|im_end|>``; saved with the tokenizer via
    ``save_pretrained`` into ``folder``. Returns training statistics."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    rows = smoke_rows(settings.n_rows, settings.seed) if rows is None else rows
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(_qwen2_config(tokenizer, settings))
    examples, cut = [], settings.max_length  # a long prompt loses its start; the answer is kept whole
    for r in rows:
        head, tail = encode(tokenizer, r["prompt"], r["chosen"][-1]["content"])
        examples.append(((head + tail)[-cut:], ([-100] * len(head) + tail)[-cut:]))

    def loss_of_batch(batch):
        ids, mask = padded_batch([examples[i][0] for i in batch], tokenizer.pad_token_id)
        labels, _ = padded_batch([examples[i][1] for i in batch], -100)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    stats = fit(model, loss_of_batch, len(examples), settings.policy_steps, settings.policy_learning_rate,
                settings.batch_size, seed)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    log.info("stand-in policy trained: %s", stats)
    return stats


def heldout_split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(train, held_out)``: the rows with index 0, 5, 10, ... (``HELDOUT_EVERY``) are held out."""
    return ([r for i, r in enumerate(rows) if i % HELDOUT_EVERY],
            [r for i, r in enumerate(rows) if not i % HELDOUT_EVERY])


def reward_triples(rows: list[dict], extra_per_row: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """``(prompt, better, worse)`` for each row, plus ``extra_per_row`` more per row: half a freshly
    drawn worse answer, half another topic's good answer (the same text is good for one prompt and
    bad for another, so the model must read the prompt)."""
    triples = [(r["prompt"], r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows]
    topics = [topic_of(p) for p, _, _ in triples] if extra_per_row else []  # smoke prompts only
    for i in [i for _ in range(extra_per_row) for i in range(len(rows))]:
        prompt, better, _ = triples[i]
        if rng.random() < 0.5:
            triples.append((prompt, better, rejected_answer(rng, topics[i], better)[0]))
        else:
            other = rng.choice([k for k, t in enumerate(topics) if t != topics[i]])
            triples.append((prompt, better, triples[other][1]))
    return triples


def build_reward_model(folder: Path, tokenizer, rows: list[dict], seed: int = 0,
                       settings: StandinSettings = StandinSettings(), extra_rows: list[dict] = (),
                       init_from: Path | None = None) -> dict:
    """A tiny ``Qwen2ForSequenceClassification`` (one label; ``pad_token_id`` set so that batches
    score the last real token), its body copied from the causal LM at ``init_from`` if given (the
    usual recipe: start from the SFT model), trained with ``bradley_terry_loss`` on the training part
    of ``rows`` (``heldout_split``) and on ``extra_rows`` (prompts outside the data set, as a public
    reward model is trained on other data), see :func:`reward_triples`. It reads the chat exactly as
    ``engine.reward_model.RewardModel`` formats it. Saved with the tokenizer via ``save_pretrained`` into
    ``folder``; returns statistics with the share of held-out pairs ranked correctly."""
    import torch
    from transformers import Qwen2ForCausalLM, Qwen2ForSequenceClassification

    if len(rows) <= HELDOUT_EVERY:
        raise ValueError(f"rows: need at least {HELDOUT_EVERY + 1} rows to train and hold out, got {len(rows)}")
    train, held_out = heldout_split(rows)
    torch.manual_seed(seed)
    model = Qwen2ForSequenceClassification(_qwen2_config(tokenizer, settings, num_labels=1))
    if init_from is not None:
        model.model.load_state_dict(Qwen2ForCausalLM.from_pretrained(init_from).model.state_dict())

    def encode(triples):  # the whole two-turn chat, cut from the left, for both answers
        return [[tokenizer(tokenizer.apply_chat_template(turns(p, a), tokenize=False), add_special_tokens=False)
                 ["input_ids"][-settings.max_length:] for a in (w, lo)] for p, w, lo in triples]

    def rewards(pairs):  # (chosen rewards, rejected rewards) from one forward pass
        ids, mask = padded_batch([w for w, _ in pairs] + [lo for _, lo in pairs], tokenizer.pad_token_id)
        return model(input_ids=ids, attention_mask=mask).logits[:, 0].float().split(len(pairs))

    train_pairs = encode(reward_triples(train + list(extra_rows), settings.reward_extra_pairs, random.Random(seed)))
    held_pairs = encode(reward_triples(held_out, 0, random.Random(seed)))
    stats = fit(model, lambda batch: bradley_terry_loss(*rewards([train_pairs[i] for i in batch])).mean(),
                len(train_pairs), settings.reward_steps, settings.reward_learning_rate, settings.batch_size, seed)
    with torch.no_grad():
        r_w, r_l = rewards(held_pairs)
    stats.update(train_pairs=len(train_pairs), heldout_pairs=len(held_pairs),
                 heldout_accuracy=round(float((r_w > r_l).float().mean()), 4))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    log.info("stand-in reward model trained: %s", stats)
    return stats


@dataclass(frozen=True)
class Standins:
    """Paths of the built stand-ins: load ``policy`` and ``reward_model`` with ``from_pretrained``
    (or ``engine.models.load_pretrained`` / ``engine.reward_model.RewardModel``) and ``dataset``
    with ``engine.data.load_preferences``."""

    policy: Path
    reward_model: Path
    dataset: Path

    @property
    def build_stats(self) -> dict:
        """What the build measured: times, losses, the reward model's held-out accuracy."""
        return json.loads((self.policy.parent / "build_stats.json").read_text())


def standins(root: Path | None = None, settings: StandinSettings = StandinSettings()) -> Standins:
    """The stand-ins for ``settings``, built on first use (~25 s on 2 CPU cores) into
    ``root / "standins-<key>"`` (default root: the kit's cache folder) and reused afterwards. The
    folder is built under a temporary name and renamed when complete, so a reader never sees half
    of it and concurrent builders cannot corrupt each other (the first rename wins)."""
    rows = smoke_rows(settings.n_rows, settings.seed)
    root = Path(root) if root else cache_root()
    target = root / f"standins-{_cache_key(settings, rows)}"
    paths = Standins(target / "policy", target / "reward_model", target / SMOKE_FIXTURE.name)
    if (target / "build_stats.json").exists():
        return paths
    with building_folder(target, exist_ok=True) as scratch:  # another process may finish first; its copy is as good
        _build_all(scratch, rows, settings)
    return paths


def _build_all(folder: Path, rows: list[dict], settings: StandinSettings) -> dict:
    start = time.perf_counter()
    log.info("building stand-ins (policy, reward model, %d rows) in %s", len(rows), folder)
    write_text(folder / SMOKE_FIXTURE.name, rows_jsonl(rows))
    texts = [t for r in rows for t in (r["prompt"], r["chosen"][-1]["content"], r["rejected"][-1]["content"])]
    tokenizer = train_bpe_tokenizer(texts, settings.tokenizer_vocab)
    unused = smoke_rows(SMOKE_MAX_ROWS, settings.seed)[len(rows):]  # same shuffle: prompts not in `rows`
    stats = {"rows": len(rows), "vocab_size": len(tokenizer), "settings": _cache_fields(settings),
             "policy": build_policy(folder / "policy", tokenizer, settings.seed, rows, settings),
             "reward_model": build_reward_model(folder / "reward_model", tokenizer, rows, settings.seed, settings,
                                                extra_rows=unused, init_from=folder / "policy")}
    stats["seconds"] = round(time.perf_counter() - start, 1)
    write_text(folder / "build_stats.json", json.dumps(stats, indent=1))  # written last: marks it complete
    log.info("stand-ins built in %.1f s", stats["seconds"])
    return stats
