"""The synthetic preference rows of the stand-ins, in UltraFeedback-binarized's layout: prompts
and answers written from the templates below (plain English advice on everyday topics, never copied
from a public dataset), a share of long prompts that must be cut from the left, and rejected answers
that score 5 or less. The committed :data:`SMOKE_FIXTURE` is ``rows_jsonl(smoke_rows())``."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

SMOKE_FIXTURE = Path(__file__).resolve().parent.parent.parent / "data" / "smoke_ultrafeedback.jsonl"
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
        rejected, score_rejected = rejected_answer(rng, topic, chosen)
        rows.append({"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(),
                     "chosen": turns(prompt, chosen), "rejected": turns(prompt, rejected),
                     "messages": turns(prompt, chosen), "score_chosen": rng.choice(CHOSEN_SCORES),
                     "score_rejected": score_rejected})
    return rows


def rejected_answer(rng: random.Random, topic: str, chosen: str) -> tuple[str, float]:
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


def topic_of(prompt: str) -> str:
    """The topic a smoke prompt asks about (its instruction comes last)."""
    found = [(prompt.rfind(activity), topic) for topic, (activity, _) in TOPICS.items() if activity in prompt]
    if not found:
        raise ValueError(f"prompt {prompt[-80:]!r} names none of the smoke topics")
    return max(found)[1]


def turns(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def rows_jsonl(rows: list[dict]) -> str:
    """``rows`` as JSONL, one compact JSON object a line: the layout of :data:`SMOKE_FIXTURE`."""
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
