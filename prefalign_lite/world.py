"""The embedded world: short instruction tasks over a small vocabulary, a graded gold reward,
a simulated annotator, and builders for demonstrations and an UltraFeedback-like offline set.

Five task families (prompt -> correct answer):

    sort 3 1 2            -> 1 2 3
    reverse c a b         -> b a c
    count a in a b a c    -> 2
    add 3 4               -> 7
    repeat b 3            -> b b b

The gold reward is in [0, 1] with partial credit: for list answers, the share of positions right
(over the longer of answer and target, so padding an answer costs); for numbers, 1 minus a quarter
per unit of error. Anything that does not parse as an answer of the right kind scores 0.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

LETTERS = list("abcdefgh")
NUMBERS = [str(i) for i in range(21)]
FAMILIES = ("sort", "reverse", "count", "add", "repeat")
# Words for instructions added to a prompt (e.g. Sr-DPO's quality instruction, in the world's own
# vocabulary): "answer perfect" plays the part of "a response rated 100 out of 100".
INSTRUCTION_WORDS = ["in", "answer", "perfect", "good", "rate"]
VOCAB = list(FAMILIES) + INSTRUCTION_WORDS + LETTERS + NUMBERS


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
        return NUMBERS[:10] if self.family == "sort" else LETTERS


def make_task(rng: random.Random, family: str | None = None) -> Task:
    """One random task; ``family`` picks its kind (default: uniform over the five)."""
    family = family or rng.choice(FAMILIES)
    n = rng.randint(2, 5)
    if family == "sort":
        xs = [rng.randint(0, 9) for _ in range(n)]
        return Task(family, "sort " + _j(xs), _j(sorted(xs)))
    if family == "reverse":
        xs = [rng.choice(LETTERS) for _ in range(n)]
        return Task(family, "reverse " + _j(xs), _j(xs[::-1]))
    if family == "count":
        target = rng.choice(LETTERS[:4])
        xs = [rng.choice(LETTERS[:4]) for _ in range(n + 1)]
        return Task(family, f"count {target} in " + _j(xs), str(xs.count(target)))
    if family == "add":
        a, b = rng.randint(0, 10), rng.randint(0, 10)
        return Task(family, f"add {a} {b}", str(a + b))
    if family == "repeat":
        x, k = rng.choice(LETTERS), rng.randint(1, 5)
        return Task(family, f"repeat {x} {k}", _j([x] * k))
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def make_tasks(n: int, seed: int = 0, family: str | None = None) -> list[Task]:
    rng = random.Random(seed)
    return [make_task(rng, family) for _ in range(n)]


def parses(task: Task, response: str) -> bool:
    """A response parses if it is a non-empty answer of the right kind (one number for count/add,
    a list of the family's items otherwise)."""
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


def corrupt(task: Task, noise: float, rng: random.Random) -> str:
    """A response of graded quality: the correct answer with about ``noise`` x length random edits
    (substitute, drop, insert, or pad by repeating the last token — a *longer*, worse answer, so
    that a length-loving annotator has something to be wrong about). Numbers drift by 1-2."""
    tokens = task.answer.split()
    if task.family in ("count", "add"):
        value = int(tokens[0])
        if rng.random() < noise:
            value = min(20, max(0, value + rng.choice([-2, -1, 1, 2])))
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

    def probability(self, gold_1: float, gold_2: float, len_1: int, len_2: int) -> float:
        """Probability that the rater prefers response 1 (before the flip)."""
        u = (gold_1 - gold_2) / self.temperature + self.length_bias * (len_1 - len_2)
        return 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))

    def prefers_first(self, task: Task, first: str, second: str, rng: random.Random) -> bool:
        p = self.probability(gold_reward(task, first), gold_reward(task, second), len(first.split()), len(second.split()))
        return (rng.random() < p) != (rng.random() < self.flip_rate)


# Quality levels of the generators that write the offline set's responses (edit rate per token).
GENERATOR_NOISE = (0.0, 0.15, 0.35, 0.7)


def sft_demonstrations(n: int, seed: int = 0, noise_levels=(0.0, 0.0, 0.1, 0.3, 0.5)) -> list[dict]:
    """Noisy demonstrations in TRL's conversational prompt/completion format: each answer comes
    from a generator whose noise is drawn from ``noise_levels``, so the model learns the tasks
    imperfectly and its samples spread in quality."""
    rng = random.Random(seed)
    rows = []
    for task in make_tasks(n, seed=seed):
        response = corrupt(task, rng.choice(noise_levels), rng)
        rows.append({"prompt": [{"role": "user", "content": task.prompt}],
                     "completion": [{"role": "assistant", "content": response}]})
    return rows


def preference_rows(tasks: list[Task], annotator: Annotator, seed: int = 0,
                    responses: list[tuple[str, str]] | None = None) -> list[dict]:
    """An UltraFeedback-like offline set in its column layout (``prompt``, ``prompt_id``,
    ``chosen``/``rejected`` as user+assistant message lists, ``score_chosen``/``score_rejected``)
    plus ``gold_chosen``/``gold_rejected`` (the true rewards, for evaluation only), labelled by
    ``annotator``. The two responses per prompt are ``responses[i]`` when given (e.g. samples of the
    SFT model), else drawn from programmatic generators of mixed quality (identical pairs redrawn)."""
    rng = random.Random(seed)
    rows = []
    for i, task in enumerate(tasks):
        first, second = responses[i] if responses is not None else _two_different(task, rng)
        if not annotator.prefers_first(task, first, second, rng):
            first, second = second, first
        g_w, g_l = gold_reward(task, first), gold_reward(task, second)
        rows.append({
            "prompt": task.prompt, "prompt_id": f"{seed}-{i}", "family": task.family,
            "chosen": [{"role": "user", "content": task.prompt}, {"role": "assistant", "content": first}],
            "rejected": [{"role": "user", "content": task.prompt}, {"role": "assistant", "content": second}],
            "score_chosen": round(1 + 9 * g_w, 3), "score_rejected": round(1 + 9 * g_l, 3),
            "gold_chosen": g_w, "gold_rejected": g_l,
        })
    return rows


def _two_different(task: Task, rng: random.Random) -> tuple[str, str]:
    for _ in range(100):
        a = corrupt(task, rng.choice(GENERATOR_NOISE), rng)
        b = corrupt(task, rng.choice(GENERATOR_NOISE), rng)
        if a != b:
            return a, b
    return a, corrupt(task, 1.0, rng) + " " + task.items[0]


def _j(xs) -> str:
    return " ".join(str(x) for x in xs)
