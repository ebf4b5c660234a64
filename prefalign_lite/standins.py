"""Offline stand-ins for the real-data path: preference rows in UltraFeedback-binarized's layout, a
byte-level BPE tokenizer trained here with Qwen2's ChatML chat template, a tiny ``Qwen2ForCausalLM``
policy and a tiny ``Qwen2ForSequenceClassification`` reward model. No hub is reachable offline or in
CI, so the kit builds them itself, saves them with ``save_pretrained`` and the pipeline loads them by
path through ``from_pretrained``: the code path a hub id takes. The text is synthetic English written
from the templates below (never copied from a public dataset). ``standins()`` builds everything once
(~25 s on two CPU cores) and caches it under ``tiny.cache_root()``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import tiny

log = logging.getLogger(__name__)

SMOKE_FIXTURE = Path(__file__).resolve().parent.parent / "data" / "smoke_ultrafeedback.jsonl"
PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# ChatML as Qwen2 writes it, without Qwen's default system turn: each message is
# "<|im_start|>{role}\n{content}<|im_end|>\n"; the generation prompt opens the assistant turn.
CHATML_TEMPLATE = ("{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content']"
                   " + '<|im_end|>' + '\\n' -}}{%- endfor -%}"
                   "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")
SMOKE_ROWS = 200  # the layout repeats each prompt 4 times: 200 rows are ~180 KB
HELDOUT_EVERY = 5  # rows with index % 5 == 0 are held out from reward-model training
LONG_PROMPT_EVERY = 40  # rows with index % 40 == 7 open with a long background paragraph (> 96 tokens)

# topic: (activity as it reads in an instruction, good advice about it)
TOPICS = {
    "money": ("saving money", ["Write down where your money goes for a month.",
        "Move a fixed sum of money to savings on payday.", "Cook at home, since eating out costs money.",
        "Wait a day before spending money on a whim.", "Cancel subscriptions that waste money."]),
    "plants": ("keeping houseplants", ["Water a plant only when its soil feels dry.",
        "Keep most plants near a bright window.", "Put each plant in a pot with a drainage hole.",
        "Wipe dust off the plant leaves now and then.", "Turn the plant each week so it grows evenly."]),
    "running": ("running", ["Start running in short bursts with walking breaks.",
        "Run slowly enough to hold a conversation.", "Add only a little running distance each week.",
        "Wear running shoes that fit and support your feet.", "Rest a day between harder runs."]),
    "bread": ("baking bread", ["Weigh the flour and water for bread on a scale.",
        "Let the bread dough rise until it doubles.", "Knead the bread dough until it is smooth.",
        "Preheat the oven fully before the bread goes in.", "Let the bread cool before you slice it."]),
    "language": ("learning a language", ["Practise the language a little every day.",
        "Learn the most common words of the language first.", "Listen to simple podcasts in the language.",
        "Speak the language out loud early, mistakes and all.", "Review language flash cards for words you forget."]),
    "sleep": ("sleeping better", ["Go to sleep at the same time every night.",
        "Keep the room where you sleep dark and cool.", "Avoid coffee after lunch so you can sleep.",
        "Put screens away an hour before sleep.", "Get daylight every morning to sleep better at night."]),
    "cycling": ("cycling to work", ["Plan a cycling route along quiet streets.",
        "Check the bike tyres and brakes each week.", "Use bike lights and bright clothes after dark.",
        "Keep a spare shirt at work for after cycling.", "Carry a pump and a patch kit on the bike."]),
    "journal": ("keeping a journal", ["Write in the journal for five minutes at a fixed time.",
        "Note one good and one hard thing in the journal.", "Do not worry about spelling in a journal.",
        "Reread old journal entries to spot patterns.", "Keep the journal where you can see it."]),
    "camping": ("camping", ["Practise pitching the camping tent at home.",
        "Check the forecast and pack a warm layer for camping.",
        "Bring more water than you expect to need when camping.", "Pick a camping site with toilets at first.",
        "Pack a torch and spare batteries for camping."]),
    "dog": ("caring for a dog", ["Walk the dog at least twice a day.", "Feed the dog at fixed times.",
        "Reward the dog for good behaviour right away.", "Book a check-up for the dog with a vet.",
        "Give the dog a quiet bed of its own."]),
    "exams": ("studying for exams", ["Split the exam material into small parts.",
        "Test yourself instead of rereading exam notes.", "Take a short study break every half hour.",
        "Start studying weeks before the exams.", "Sleep well the night before the exams."]),
    "rice": ("cooking rice", ["Rinse the rice until the water is clear.",
        "Use a cup and a half of water per cup of rice.", "Keep the lid on while the rice simmers.",
        "Let the rice rest ten minutes off the heat.", "Fluff the rice with a fork."]),
}
INSTRUCTIONS = ["Give me tips for {a}.", "How do I start {a}?", "What helps with {a}?",
                "Write a short guide to {a}.", "What are the first steps in {a}?", "Help me with {a}."]
CONTEXTS = ["", " Keep it short.", " I am a beginner.", " I am busy.", " Explain simply.", " I gave up once.",
            " Use plain words.", " Be practical."]
OPENERS = ["", "", "Sure. ", "Here is what helps. "]
CHOSEN_SCORES = [7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0]  # every rejected answer scores 5.0 or less
VAGUE = ["It depends, so it is hard to say.", "You should search for this online.",
         "Everyone is different.", "That is a big topic and I am not sure."]
BACKGROUND = [
    "I work long hours in an office and often get home late.", "My family lives far away, so I am on my own.",
    "Last year I moved to a small flat in a busy part of the city.", "I have a tight budget this month.",
    "My friends keep telling me to try something new.", "I usually feel tired by the middle of the week.",
    "On weekends I like to stay in and read.", "My neighbour gave me some advice, but it was confusing.",
    "I read a few articles about this and they all disagreed.", "I have tried apps before but never stuck with them.",
    "My schedule changes every week because of shift work.", "I would rather learn slowly than give up again.",
    "There is a park close to my home that I rarely visit.", "I want a plan that I can follow without help."]
SMOKE_MAX_ROWS = len(TOPICS) * len(INSTRUCTIONS) * len(CONTEXTS)  # distinct prompts the templates can make


def smoke_rows(n: int = SMOKE_ROWS, seed: int = 0) -> list[dict]:
    """``n`` synthetic rows in the layout of ``HuggingFaceH4/ultrafeedback_binarized``: ``prompt``,
    ``prompt_id`` (sha256 of the prompt), ``chosen``/``rejected``/``messages`` as a user and an
    assistant turn (``messages`` repeats ``chosen``), ``score_chosen`` above ``score_rejected`` (1-10).
    The chosen answer is on topic and complete; the rejected one is off topic, cut off, repetitive or
    vague, and in about 40% of rows the longer one. Deterministic in ``seed``; distinct prompts; a
    smaller ``n`` gives the first rows of a larger one."""
    if not 0 < n <= SMOKE_MAX_ROWS:
        raise ValueError(f"n must be between 1 and {SMOKE_MAX_ROWS} (the number of distinct prompts), got {n}")
    combos = [(t, i, c) for t in TOPICS for i in range(len(INSTRUCTIONS)) for c in range(len(CONTEXTS))]
    rng = random.Random(seed)
    rng.shuffle(combos)
    rows = []
    for index, (topic, instruction, context) in enumerate(combos[:n]):
        prompt = INSTRUCTIONS[instruction].format(a=TOPICS[topic][0]) + CONTEXTS[context]
        if index % LONG_PROMPT_EVERY == 7:
            prompt = " ".join(rng.sample(BACKGROUND, 12)) + " " + prompt
        chosen = rng.choice(OPENERS) + " ".join(rng.sample(TOPICS[topic][1], rng.choice([2, 2, 3])))
        rejected, score_rejected = _rejected_answer(rng, topic, chosen)
        rows.append({"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(),
                     "chosen": _turns(prompt, chosen), "rejected": _turns(prompt, rejected),
                     "messages": _turns(prompt, chosen), "score_chosen": rng.choice(CHOSEN_SCORES),
                     "score_rejected": score_rejected})
    return rows


def _rejected_answer(rng: random.Random, topic: str, chosen: str) -> tuple[str, float]:
    """A worse answer than ``chosen`` for ``topic``, and its score (below every chosen score)."""
    kind, opener = rng.choice(["off_topic", "off_topic", "truncated", "repetitive", "vague"]), rng.choice(OPENERS)
    if kind == "off_topic":  # fluent and often longer, but about something else
        other = rng.choice([t for t in TOPICS if t != topic])
        return opener + " ".join(rng.sample(TOPICS[other][1], rng.choice([2, 3, 4]))), rng.choice([1.0, 2.0, 3.0])
    if kind == "truncated":  # on topic but stops mid-sentence
        words = chosen.split()
        return " ".join(words[:max(3, len(words) // 2 - 1)]).rstrip("."), rng.choice([3.0, 4.0, 5.0])
    if kind == "repetitive":  # one sentence over and over
        return opener + " ".join([rng.choice(TOPICS[topic][1])] * rng.choice([3, 4])), rng.choice([2.0, 3.0, 4.0])
    return opener + rng.choice(VAGUE), rng.choice([1.0, 2.0])


def _topic_of(prompt: str) -> str:
    """The topic a smoke prompt asks about (its instruction comes last)."""
    found = [(prompt.rfind(activity), topic) for topic, (activity, _) in TOPICS.items() if activity in prompt]
    if not found:
        raise ValueError(f"prompt {prompt[-80:]!r} names none of the smoke topics")
    return max(found)[1]


def _turns(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def write_smoke_rows(path: Path = SMOKE_FIXTURE, n: int = SMOKE_ROWS, seed: int = 0) -> Path:
    """Write ``smoke_rows(n, seed)`` as JSONL, atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, _rows_jsonl(smoke_rows(n, seed)))
    log.info("wrote %d smoke rows to %s", n, path)
    return path


def _rows_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process, in the same folder
    tmp.write_text(text)
    os.replace(tmp, path)


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


def chat_split(tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """``(prompt_ids, answer_ids)``: the generation prompt, and what the whole conversation adds to
    it (the answer and its end token); the same split as ``logps.encode``."""
    head = tokenizer(tokenizer.apply_chat_template(_turns(prompt, answer)[:1], tokenize=False,
                                                   add_generation_prompt=True), add_special_tokens=False)["input_ids"]
    full = tokenizer(tokenizer.apply_chat_template(_turns(prompt, answer), tokenize=False),
                     add_special_tokens=False)["input_ids"]
    if full[:len(head)] != head:
        raise ValueError(f"the chat template does not extend the prompt {prompt!r} for answer {answer!r}")
    return head, full[len(head):]


@dataclass(frozen=True)
class StandinSettings:
    """Everything that decides the stand-ins; its hash (with the rows) is the cache key."""

    n_rows: int = SMOKE_ROWS
    seed: int = 0
    vocab_size: int = 1024
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
    reward_learning_rate: float = 1e-3  # lower: the reward model starts from the trained policy
    reward_extra_pairs: int = 1  # extra worse answers per reward-model training row
    version: int = 1

    def key(self, rows: list[dict]) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True) + "|" + _rows_jsonl(rows)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _qwen2_config(tokenizer, settings: StandinSettings, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=settings.hidden_size, intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers, num_attention_heads=settings.num_heads,
        num_key_value_heads=settings.num_kv_heads, max_position_embeddings=512, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None, **extra)


def _train(model, loss_of_batch, n_examples: int, steps: int, lr: float, batch_size: int, seed: int) -> dict:
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


def _padded(seqs: list[list[int]], pad_id: int):
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
        head, tail = chat_split(tokenizer, r["prompt"], r["chosen"][-1]["content"])
        examples.append(((head + tail)[-cut:], ([-100] * len(head) + tail)[-cut:]))

    def loss_of_batch(batch):
        ids, mask = _padded([examples[i][0] for i in batch], tokenizer.pad_token_id)
        labels, _ = _padded([examples[i][1] for i in batch], -100)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    stats = _train(model, loss_of_batch, len(examples), settings.policy_steps, settings.policy_learning_rate,
                   settings.batch_size, seed)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    log.info("stand-in policy trained: %s", stats)
    return stats


def bradley_terry_loss(reward_chosen, reward_rejected):
    """Per-pair reward-model loss under the Bradley-Terry model, ``-log sigmoid(r(x, y_w) - r(x, y_l))``
    (SPA Eq. 1-2, Sr-DPO Eq. 2-3)."""
    import torch.nn.functional as F

    if reward_chosen.shape != reward_rejected.shape:
        raise ValueError(f"reward_chosen {tuple(reward_chosen.shape)} and reward_rejected "
                         f"{tuple(reward_rejected.shape)} differ in shape")
    return -F.logsigmoid(reward_chosen - reward_rejected)


def heldout_split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(train, held_out)``: the rows with index 0, 5, 10, ... (``HELDOUT_EVERY``) are held out."""
    return ([r for i, r in enumerate(rows) if i % HELDOUT_EVERY],
            [r for i, r in enumerate(rows) if not i % HELDOUT_EVERY])


def _reward_triples(rows: list[dict], extra_per_row: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """``(prompt, better, worse)`` for each row, plus ``extra_per_row`` more per row: half a freshly
    drawn worse answer, half another topic's good answer (the same text is good for one prompt and
    bad for another, so the model must read the prompt)."""
    triples = [(r["prompt"], r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows]
    topics = [_topic_of(p) for p, _, _ in triples] if extra_per_row else []  # smoke prompts only
    for i in [i for _ in range(extra_per_row) for i in range(len(rows))]:
        prompt, better, _ = triples[i]
        if rng.random() < 0.5:
            triples.append((prompt, better, _rejected_answer(rng, topics[i], better)[0]))
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
    reward model is trained on other data), see ``_reward_triples``. It reads the chat exactly as
    ``evaluate.RewardModelJudge`` formats it. Saved with the tokenizer via ``save_pretrained`` into
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
        return [[tokenizer(tokenizer.apply_chat_template(_turns(p, a), tokenize=False), add_special_tokens=False)
                 ["input_ids"][-settings.max_length:] for a in (w, lo)] for p, w, lo in triples]

    def rewards(pairs):  # (chosen rewards, rejected rewards) from one forward pass
        ids, mask = _padded([w for w, _ in pairs] + [lo for _, lo in pairs], tokenizer.pad_token_id)
        return model(input_ids=ids, attention_mask=mask).logits[:, 0].float().split(len(pairs))

    train_pairs = encode(_reward_triples(train + list(extra_rows), settings.reward_extra_pairs, random.Random(seed)))
    held_pairs = encode(_reward_triples(held_out, 0, random.Random(seed)))
    stats = _train(model, lambda batch: bradley_terry_loss(*rewards([train_pairs[i] for i in batch])).mean(),
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
    (or ``tiny.load`` / ``evaluate.RewardModelJudge``) and ``dataset`` with ``data.load_preferences``."""

    policy: Path
    reward_model: Path
    dataset: Path

    @property
    def build_stats(self) -> dict:
        """What the build measured: times, losses, the reward model's held-out accuracy."""
        return json.loads((self.policy.parent / "build_stats.json").read_text())


def standins(root: Path | None = None, settings: StandinSettings = StandinSettings()) -> Standins:
    """The stand-ins for ``settings``, built on first use (~25 s on 2 CPU cores) into
    ``root / "standins-<key>"`` (default root ``tiny.cache_root()``) and reused afterwards. The
    folder is built under a temporary name and renamed when complete, so a reader never sees half
    of it and concurrent builders cannot corrupt each other (the first rename wins)."""
    rows = smoke_rows(settings.n_rows, settings.seed)
    root = Path(root) if root else tiny.cache_root()
    target = root / f"standins-{settings.key(rows)}"
    paths = Standins(target / "policy", target / "reward_model", target / SMOKE_FIXTURE.name)
    if (target / "build_stats.json").exists():
        return paths
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-standins-", dir=root))
    try:
        _build_all(scratch, rows, settings)
        try:
            os.replace(scratch, target)
        except OSError:  # another process finished first; its copy is as good as ours
            log.info("stand-ins %s were built concurrently; keeping the first copy", target.name)
            shutil.rmtree(scratch, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return paths


def _build_all(folder: Path, rows: list[dict], settings: StandinSettings) -> dict:
    start = time.perf_counter()
    log.info("building stand-ins (policy, reward model, %d rows) in %s", len(rows), folder)
    _atomic_write(folder / SMOKE_FIXTURE.name, _rows_jsonl(rows))
    texts = [t for r in rows for t in (r["prompt"], r["chosen"][-1]["content"], r["rejected"][-1]["content"])]
    tokenizer = train_bpe_tokenizer(texts, settings.vocab_size)
    unused = smoke_rows(SMOKE_MAX_ROWS, settings.seed)[len(rows):]  # same shuffle: prompts not in `rows`
    stats = {"rows": len(rows), "vocab_size": len(tokenizer), "settings": dataclasses.asdict(settings),
             "policy": build_policy(folder / "policy", tokenizer, settings.seed, rows, settings),
             "reward_model": build_reward_model(folder / "reward_model", tokenizer, rows, settings.seed, settings,
                                                extra_rows=unused, init_from=folder / "policy")}
    stats["seconds"] = round(time.perf_counter() - start, 1)
    _atomic_write(folder / "build_stats.json", json.dumps(stats, indent=1))  # written last: marks it complete
    log.info("stand-ins built in %.1f s", stats["seconds"])
    return stats
