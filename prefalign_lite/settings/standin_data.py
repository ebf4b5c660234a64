"""The stand-in of ``HuggingFaceH4/ultrafeedback_binarized``: a dataset saved with ``save_to_disk``
that has exactly the real splits (``train_prefs``, ``test_prefs``, ``train_sft``, ``test_sft``,
``train_gen``, ``test_gen``; no ``train``), the real columns in their order, a long-prompt tail (one
prompt in 25 opens with a background paragraph of some hundred tokens, one in 60 with well over a
thousand), and answers that start with newlines or a space (as raw model outputs in the real data
do). The text is the kit's own, from the templates of :mod:`.smoke_data`; deterministic in ``seed``.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

from .artefacts import ULTRAFEEDBACK_COLUMNS
from .smoke_data import BACKGROUND, CHOSEN_SCORES, CONTEXTS, INSTRUCTIONS, OPENERS, TOPICS, rejected_answer, topic_of

SPLIT_ROWS = {"train_prefs": 400, "test_prefs": 100, "train_sft": 400, "test_sft": 50, "train_gen": 400,
              "test_gen": 50}
LONG_EVERY, VERY_LONG_EVERY = 25, 60       # prompt index % n == 3 (long) or == 11 (very long)
LEADING = {1: "\n\n", 4: "\n", 7: " "}      # chosen answer index % 9 -> what it starts with
REJECTED_LEADING = {2: "\n", 5: "\n\n"}     # rejected answer index % 9 -> what it starts with


def _background(rng: random.Random, sentences: int) -> str:
    """A background paragraph of ``sentences`` sentences (the BACKGROUND lines, varied by a count)."""
    parts = []
    for i in range(sentences):
        line = rng.choice(BACKGROUND)
        parts.append(line if i % 3 else f"{line[:-1]}, and that is day {i + 1} of it.")
    return " ".join(parts)


def _turns(prompt: str, answer: str | None) -> list[dict]:
    user = {"content": prompt, "role": "user"}
    return [user] if answer is None else [user, {"content": answer, "role": "assistant"}]


def _prompts(seed: int) -> list[str]:
    """Distinct prompts in a fixed shuffled order: the test splits take the first ones, the training
    splits the rest, so that no prompt is in both."""
    combos = [(t, i, c) for t in TOPICS for i in range(len(INSTRUCTIONS)) for c in range(len(CONTEXTS))]
    rng = random.Random(seed)
    rng.shuffle(combos)
    prompts = []
    for index, (topic, instruction, context) in enumerate(combos):
        prompt = INSTRUCTIONS[instruction].format(a=TOPICS[topic][0]) + CONTEXTS[context]
        if index % VERY_LONG_EVERY == 11:
            prompt = _background(rng, rng.randrange(90, 160)) + "\n\n" + prompt
        elif index % LONG_EVERY == 3:
            prompt = _background(rng, rng.randrange(6, 24)) + " " + prompt
        prompts.append(prompt)
    return prompts


def _row(prompt: str, index: int, rng: random.Random, with_answers: bool) -> dict:
    topic = topic_of(prompt)
    chosen = rng.choice(OPENERS) + " ".join(rng.sample(TOPICS[topic][1], rng.choice([2, 2, 3])))
    rejected, score_rejected = rejected_answer(rng, topic, chosen)
    chosen = LEADING.get(index % 9, "") + chosen
    rejected = REJECTED_LEADING.get(index % 9, "") + rejected
    row = {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(),
           "chosen": _turns(prompt, chosen), "rejected": _turns(prompt, rejected),
           "messages": _turns(prompt, chosen if with_answers else None),
           "score_chosen": rng.choice(CHOSEN_SCORES), "score_rejected": score_rejected}
    return {k: row[k] for k in ULTRAFEEDBACK_COLUMNS}


def ultrafeedback_splits(seed: int = 0, sizes: dict[str, int] = SPLIT_ROWS) -> dict[str, list[dict]]:
    """The rows of every split (see the module doc). ``*_prefs`` and ``*_sft`` share their prompts, as
    the real splits do; ``*_gen`` rows keep only the user turn in ``messages``."""
    prompts = _prompts(seed)
    n_test = max(sizes["test_prefs"], sizes["test_sft"], sizes["test_gen"])
    n_train = max(sizes["train_prefs"], sizes["train_sft"], sizes["train_gen"])
    if n_test + n_train > len(prompts):
        raise ValueError(f"the stand-in has {len(prompts)} distinct prompts; {n_test} test + {n_train} training asked")
    pools = {"test": prompts[:n_test], "train": prompts[n_test:n_test + n_train]}
    out = {}
    for split, n in sizes.items():
        part, kind = split.split("_")
        rng = random.Random(f"{seed}-{part}")   # prefs and sft of one part: the same answers
        out[split] = [_row(p, i, rng, with_answers=kind != "gen") for i, p in enumerate(pools[part][:n])]
    return out


def save_ultrafeedback(folder: Path, seed: int = 0, sizes: dict[str, int] = SPLIT_ROWS) -> dict[str, int]:
    """Write the splits with ``datasets.DatasetDict.save_to_disk`` into ``folder``; returns rows per split."""
    import datasets

    splits = ultrafeedback_splits(seed, sizes)
    datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}).save_to_disk(str(folder))
    return {name: len(rows) for name, rows in splits.items()}
