"""The embedded world: short instruction tasks over a small vocabulary, a graded gold reward,
demonstrators with a known error rate, a simulated rater, and the world's own UltraFeedback.

Five task families (prompt -> correct answer), lists of 3 to 7 items:

    sort 3 1 2 8          -> 1 2 3 8
    reverse c a b         -> b a c
    count a in a b a c    -> 2
    add 3 4 5             -> 12
    drop b in a b c b     -> a c            (``none`` when nothing is left)

The gold reward is in [0, 1] with partial credit: for list answers, the share of positions right
(over the longer of answer and target, so padding an answer costs); for numbers, 1 minus a quarter
per unit of error. Anything that does not parse as an answer of the right kind scores 0.

Half of the plain demonstrations come from a **habitual demonstrator** whose answers are right but
for one systematic flaw (a list repeats its last item twice more, a number is two too high;
:func:`habit`), the rest from demonstrators that make random edits. The SFT model's most likely answer therefore carries
the flaw, as a real SFT model carries the habits of its data (verbosity, say): sampling it more
sharply does not remove the flaw, preferences do. The raters prefer longer answers a little, so the
world's preference data is wrong in that direction more often than at random.

The world also teaches its tiny model, through the SFT demonstrations, the two skills the papers
take for granted in a real SFT model:

* a **quality instruction**: a prompt prefixed with ``best`` is demonstrated by cleaner
  demonstrators, so "best sort 3 1 2" draws better answers than "sort 3 1 2" (Sr-DPO's prompt p);
* a **noisy judging skill**: ``check <prompt>`` followed by an answer and the verdict ``good``
  (a perfect answer) or ``bad``, with a share of verdicts wrong, so the model can be asked to judge
  (LLM-as-judge) and is right more often than a coin but far from always.

Prompts are split once and for all into a held-out part (evaluation only) and a training part by a
hash of their text, so no evaluation prompt is ever trained on, whatever the seed or the method.
"""
from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["LETTERS", "NUMBERS", "FAMILIES", "QUALITY_WORD", "CHECK_WORD", "GOOD", "BAD", "VOCAB", "MIN_ITEMS",
           "MAX_ITEMS", "DEMO_NOISE", "HABIT_SHARE", "QUALITY_NOISE", "QUALITY_SHARE", "CHECK_SHARE", "CHECK_FLIP",
           "GENERATOR_NOISE", "HELD_OUT_SHARE", "Task", "make_task", "task_of", "make_tasks", "is_held_out",
           "distinct_tasks", "parses", "gold_reward", "gold_rewards", "corrupt", "habit", "plain_demonstration",
           "generator_answer", "Annotator", "sft_demonstrations",
           "quality_prompt", "check_prompt", "check_completion", "ultrafeedback_rows", "preference_rows"]

LETTERS = list("abcdefgh")
NUMBERS = [str(i) for i in range(41)]
FAMILIES = ("sort", "reverse", "count", "add", "drop")
QUALITY_WORD = "best"                  # Sr-DPO's quality instruction, in the world's words
CHECK_WORD, GOOD, BAD = "check", "good", "bad"   # the judging skill
VOCAB = list(FAMILIES) + ["in", "none", QUALITY_WORD, CHECK_WORD, GOOD, BAD] + LETTERS + NUMBERS
MIN_ITEMS, MAX_ITEMS = 3, 7

# Demonstrators: the edit rate of each demonstration is drawn from these.
DEMO_NOISE = (0.0, 0.35, 0.6, 0.85)   # plain prompts
HABIT_SHARE = 0.5                      # share of plain demonstrations written by the habitual demonstrator
QUALITY_NOISE = (0.0, 0.0, 0.1)        # prompts asking for the best answer
QUALITY_SHARE = 0.2                    # share of demonstrations with the quality instruction
CHECK_SHARE = 0.3                      # share of demonstrations of the judging skill
CHECK_FLIP = 0.15                      # share of wrong verdicts among them
# The four "other models" whose answers make up the world's UltraFeedback: edit rates, and one
# model (None) that answers with the habit.
GENERATOR_NOISE = (0.0, 0.15, 0.35, 0.7)
HELD_OUT_SHARE = 8                     # 1 prompt in 8 (by hash) is reserved for evaluation


@dataclass(frozen=True)
class Task:
    family: str
    prompt: str
    answer: str

    @property
    def items(self) -> list[str]:
        """The tokens an answer of this family may contain."""
        if self.family in ("count", "add"):
            return NUMBERS
        if self.family == "drop":
            return LETTERS + ["none"]
        return NUMBERS[:10] if self.family == "sort" else LETTERS


def make_task(rng: random.Random, family: str | None = None) -> Task:
    """One random task; ``family`` picks its kind (default: uniform over the five)."""
    family = family or rng.choice(FAMILIES)
    n = rng.randint(MIN_ITEMS, MAX_ITEMS)
    if family == "sort":
        return _task("sort", [rng.randint(0, 9) for _ in range(n)])
    if family == "reverse":
        return _task("reverse", [rng.choice(LETTERS) for _ in range(n)])
    if family == "count":
        return _task("count", [rng.choice(LETTERS[:4]) for _ in range(n + 2)])
    if family == "add":
        return _task("add", [rng.randint(0, 9) for _ in range(3)])
    if family == "drop":
        xs = [rng.choice(LETTERS[:5]) for _ in range(n + 1)]
        return _task("drop", [rng.choice(xs)] + xs)
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def _task(family: str, xs: list) -> Task:
    """The task of ``family`` on the items ``xs`` (for count and drop, ``xs[0]`` is the target)."""
    if family == "sort":
        return Task(family, "sort " + _j(xs), _j(sorted(xs)))
    if family == "reverse":
        return Task(family, "reverse " + _j(xs), _j(xs[::-1]))
    if family == "count":
        return Task(family, f"count {xs[0]} in " + _j(xs[1:]), str(xs[1:].count(xs[0])))
    if family == "add":
        return Task(family, "add " + _j(xs), str(sum(int(x) for x in xs)))
    kept = [x for x in xs[1:] if x != xs[0]]
    return Task(family, f"drop {xs[0]} in " + _j(xs[1:]), _j(kept) if kept else "none")


def task_of(prompt: str) -> Task:
    """The task a prompt asks for (a leading quality instruction is ignored): what the gold judge
    needs to score an answer given only the prompt's text."""
    words = prompt.split()
    if words[:1] == [QUALITY_WORD]:
        words = words[1:]
    try:
        family, rest = words[0], words[1:]
        if family in ("count", "drop"):
            if rest[1] != "in" or not rest[2:]:
                raise ValueError
            rest = [rest[0]] + rest[2:]
        elif family in ("sort", "add"):
            rest = [int(x) for x in rest]
        if family not in FAMILIES or not rest:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"not a task of the embedded world: {prompt!r}") from None
    return _task(family, rest)


def make_tasks(n: int, seed: int = 0, family: str | None = None) -> list[Task]:
    rng = random.Random(seed)
    return [make_task(rng, family) for _ in range(n)]


def is_held_out(prompt: str) -> bool:
    """Whether a prompt belongs to the evaluation part of the world (one in ``HELD_OUT_SHARE``)."""
    return zlib.crc32(prompt.encode()) % HELD_OUT_SHARE == 0


def distinct_tasks(n: int, seed: int = 0, held_out: bool = False, exclude: set[str] = frozenset()) -> list[Task]:
    """``n`` tasks with distinct prompts from the held-out part (evaluation) or the training part,
    none of them in ``exclude``; deterministic given ``seed``."""
    rng, seen, out = random.Random(seed), set(exclude), []
    for _ in range(200 * n + 1000):
        if len(out) == n:
            return out
        task = make_task(rng)
        if task.prompt not in seen and is_held_out(task.prompt) == held_out:
            seen.add(task.prompt)
            out.append(task)
    raise ValueError(f"could not draw {n} distinct prompts (got {len(out)}); ask for fewer")


def parses(task: Task, response: str) -> bool:
    """A non-empty answer of the right kind (one number for count/add, a list of the family's items)."""
    tokens = response.split()
    if not tokens or any(t not in task.items for t in tokens):
        return False
    return len(tokens) == 1 if task.family in ("count", "add") else True


def gold_reward(task: Task, response: str) -> float:
    """The true quality of ``response`` in [0, 1], with partial credit (see the module doc)."""
    if not parses(task, response):
        return 0.0
    got, want = response.split(), task.answer.split()
    if task.family in ("count", "add"):
        return max(0.0, 1.0 - abs(int(got[0]) - int(want[0])) / 4.0)
    right = sum(g == w for g, w in zip(got, want))
    return right / max(len(got), len(want))


def gold_rewards(tasks: list[Task], responses: list[str]) -> np.ndarray:
    """The gold reward of each response to its task; zero tasks, a length mismatch or a wrong type
    is a ``ValueError`` naming the index."""
    if len(tasks) != len(responses):
        raise ValueError(f"gold_rewards: {len(tasks)} tasks but {len(responses)} responses")
    if not tasks:
        raise ValueError("gold_rewards on zero prompts: nothing to evaluate")
    for i, (task, response) in enumerate(zip(tasks, responses)):
        if not isinstance(task, Task):
            raise ValueError(f"gold_rewards: tasks[{i}] must be a world Task, got {type(task).__name__}")
        if not isinstance(response, str):
            raise ValueError(f"gold_rewards: responses[{i}] must be a string, got {type(response).__name__}")
    return np.array([gold_reward(t, r) for t, r in zip(tasks, responses)])


def corrupt(task: Task, noise: float, rng: random.Random) -> str:
    """An answer of graded quality: the correct answer with about ``noise`` x length random edits
    (substitute, drop, insert, or pad by repeating the last token — a *longer*, worse answer, so
    that a length-loving rater has something to be wrong about). Numbers drift by 1-2."""
    tokens = task.answer.split()
    if task.family in ("count", "add"):
        value = int(tokens[0])
        if rng.random() < noise:
            value = min(40, max(0, value + rng.choice([-2, -1, 1, 2])))
        if rng.random() < noise / 2:
            return f"{value} {value}"  # padded: does not parse
        return str(value)
    edits = sum(rng.random() < noise for _ in range(len(tokens) + 1))
    for _ in range(edits):
        kind = rng.choice(["substitute", "drop", "insert", "pad"])
        if kind == "substitute" and tokens:
            tokens[rng.randrange(len(tokens))] = rng.choice(task.items[:10])
        elif kind == "drop" and len(tokens) > 1:
            tokens.pop(rng.randrange(len(tokens)))
        elif kind == "insert":
            tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(task.items[:10]))
        elif tokens:
            tokens.append(tokens[-1])
    return _j(tokens)


def habit(task: Task) -> str:
    """The habitual demonstrator's answer: right but for one systematic flaw, the same every time —
    a list repeats its last item twice more (a longer, worse answer), a number is two too high.
    Half of the plain demonstrations are written this way, so the SFT model's most likely answer
    carries the flaw: sampling it more sharply cannot remove it, only preferences can."""
    if task.family in ("count", "add"):
        return str(min(40, int(task.answer) + 2))
    tokens = task.answer.split()
    return _j(tokens + tokens[-1:] * 2)


def plain_demonstration(task: Task, rng: random.Random) -> str:
    """An answer to a plain prompt as the SFT data has it: the habit (a ``HABIT_SHARE`` of the
    time), else the right answer edited at a rate drawn from ``DEMO_NOISE``."""
    if rng.random() < HABIT_SHARE:
        return habit(task)
    return corrupt(task, rng.choice(DEMO_NOISE), rng)


def generator_answer(task: Task, noise: float | None, rng: random.Random) -> str:
    """One "other model"'s answer: edited at rate ``noise``, or the habit (``noise`` None)."""
    return habit(task) if noise is None else corrupt(task, noise, rng)


@dataclass(frozen=True)
class Annotator:
    """Simulated rater: Bradley–Terry on the gold reward with a ``temperature``, a preference of
    ``length_bias`` per extra token for the longer answer, then a ``flip_rate`` of labels flipped."""

    temperature: float = 0.1
    flip_rate: float = 0.0
    length_bias: float = 0.0

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not 0 <= self.flip_rate <= 1:
            raise ValueError(f"flip_rate must be in [0, 1], got {self.flip_rate!r}")

    def utility(self, gold: float, length: int) -> float:
        return gold / self.temperature + self.length_bias * length

    def probability(self, gold_1: float, gold_2: float, len_1: int, len_2: int) -> float:
        """Probability that the rater prefers response 1 (before the flip)."""
        u = self.utility(gold_1, len_1) - self.utility(gold_2, len_2)
        return 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))

    def prefers_first(self, task: Task, first: str, second: str, rng: random.Random) -> bool:
        p = self.probability(gold_reward(task, first), gold_reward(task, second), len(first.split()), len(second.split()))
        return (rng.random() < p) != (rng.random() < self.flip_rate)

    def best_of(self, task: Task, responses: list[str], rng: random.Random) -> int:
        """The response the rater rates highest (Gumbel noise on the utility: the Plackett–Luce
        generalisation of the pairwise rule, so two responses are judged as by ``prefers_first``)."""
        noisy = [self.utility(gold_reward(task, r), len(r.split())) - math.log(-math.log(1.0 - rng.random()))
                 for r in responses]
        return max(range(len(responses)), key=noisy.__getitem__)


def sft_demonstrations(n: int, seed: int = 0) -> list[dict]:
    """Demonstrations in TRL's conversational prompt/completion format: plain tasks answered by
    demonstrators of mixed quality, tasks with the quality instruction answered by cleaner ones, and
    judging demonstrations ``check <prompt>`` -> ``<answer> good|bad`` with a share of wrong
    verdicts (see the module doc)."""
    rng, rows = random.Random(seed), []
    for task in make_tasks(n, seed=seed):
        u = rng.random()
        if u < CHECK_SHARE:
            answer = plain_demonstration(task, rng)
            good = (gold_reward(task, answer) == 1.0) != (rng.random() < CHECK_FLIP)
            user, reply = check_prompt(task.prompt), check_completion(answer, good)
        elif u < CHECK_SHARE + QUALITY_SHARE:
            user, reply = quality_prompt(task.prompt), corrupt(task, rng.choice(QUALITY_NOISE), rng)
        else:
            user, reply = task.prompt, plain_demonstration(task, rng)
        rows.append({"prompt": [{"role": "user", "content": user}], "completion": [{"role": "assistant", "content": reply}]})
    return rows


def quality_prompt(prompt: str) -> str:
    return f"{QUALITY_WORD} {prompt}"


def check_prompt(prompt: str) -> str:
    return f"{CHECK_WORD} {prompt}"


def check_completion(answer: str, good: bool) -> str:
    return f"{answer} {GOOD if good else BAD}"


def ultrafeedback_rows(tasks: list[Task], annotator: Annotator, seed: int = 0) -> list[dict]:
    """The world's UltraFeedback-binarized: for each task, one answer from each of the four
    generators of ``GENERATOR_NOISE`` (the "other models", one of them habitual); chosen is the one the ``annotator``
    rates highest, rejected one of the others at random (as UltraFeedback-binarized is built), then
    ``annotator.flip_rate`` of the labels swapped. Tasks whose four answers are identical are
    skipped. Rows carry the gold rewards (``gold_chosen``, ``gold_rejected``) for evaluation only."""
    rng, rows = random.Random(seed), []
    for i, task in enumerate(tasks):
        answers = [generator_answer(task, noise, rng) for noise in GENERATOR_NOISE]
        best = annotator.best_of(task, answers, rng)
        others = [a for a in answers if a != answers[best]]
        if not others:
            continue
        first, second = answers[best], rng.choice(others)
        if rng.random() < annotator.flip_rate:
            first, second = second, first
        rows.append(_uf_row(task, first, second, f"{seed}-{i}"))
    return rows


def preference_rows(tasks: list[Task], annotator: Annotator, seed: int = 0,
                    responses: list[tuple[str, str]] | None = None) -> list[dict]:
    """Two answers per task (``responses[i]`` when given, else two generator answers of mixed
    quality) labelled pairwise by ``annotator``, in UltraFeedback's column layout."""
    rng, rows = random.Random(seed), []
    for i, task in enumerate(tasks):
        first, second = responses[i] if responses is not None else _two_different(task, rng)
        if not annotator.prefers_first(task, first, second, rng):
            first, second = second, first
        rows.append(_uf_row(task, first, second, f"{seed}-{i}"))
    return rows


def _uf_row(task: Task, chosen: str, rejected: str, prompt_id: str) -> dict:
    g_w, g_l = gold_reward(task, chosen), gold_reward(task, rejected)
    return {"prompt": task.prompt, "prompt_id": prompt_id, "family": task.family,
            "chosen": [{"role": "user", "content": task.prompt}, {"role": "assistant", "content": chosen}],
            "rejected": [{"role": "user", "content": task.prompt}, {"role": "assistant", "content": rejected}],
            "score_chosen": round(1 + 9 * g_w, 3), "score_rejected": round(1 + 9 * g_l, 3),
            "gold_chosen": g_w, "gold_rejected": g_l}


def _two_different(task: Task, rng: random.Random) -> tuple[str, str]:
    for _ in range(100):
        a = generator_answer(task, rng.choice(GENERATOR_NOISE), rng)
        b = generator_answer(task, rng.choice(GENERATOR_NOISE), rng)
        if a != b:
            return a, b
    return a, corrupt(task, 1.0, rng) + " " + task.items[0]


def _j(xs) -> str:
    return " ".join(str(x) for x in xs)
