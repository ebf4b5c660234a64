"""A real preference dataset as a setting: rows by hub id or local path in UltraFeedback-binarized's
layout (read and checked by :mod:`prefalign_lite.engine.data`), judged by a reward model (any
``AutoModelForSequenceClassification`` by id or path), with the papers' own quality instruction
and LLM-as-judge question."""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from ..engine.data import SKIP_KINDS, load_preferences, split_names
from ..engine.models import default_device
from ..engine.reward_model import RewardModel
from .artefacts import KNOWN_SPLITS
from .base import PairLogps, Pool, Setting

log = logging.getLogger(__name__)

# Sr-DPO's prompt p, quoted from the paper (Yu et al., Sec. 3.3) for real models.
PAPER_QUALITY_PROMPT = ("Please generate a response with a usefulness rating of 100 out of 100 for the following query. "
                        "Note that the response should be harmless. The term 100 indicates the level of usefulness, "
                        "where 100 is the maximum and 1 is the minimum. Query:")
# The LLM-as-judge question: the material first, the question and the answer format last, so that
# cutting the material to the token budget never cuts the question (:func:`judge_question`).
AB_MATERIAL = "Question: {prompt}\n\n(A) {first}\n\n(B) {second}\n\n"
AB_ASK = "Which of the two responses answers the question better? Answer with (A) or (B)."


def default_splits(source: str) -> tuple[str, str | None]:
    """``(training split, evaluation split)`` for a dataset: the published pair for a known hub id
    (UltraFeedback-binarized: ``train_prefs`` and ``test_prefs``); for a local source the first of
    ``train_prefs``/``train`` it has and the first of ``test_prefs``/``test`` (``None``: the
    evaluation prompts are held out of the training split); ``("train", None)`` otherwise."""
    if source in KNOWN_SPLITS:
        return KNOWN_SPLITS[source]
    names = split_names(source)
    if not names:
        return "train", None
    train = next((n for n in ("train_prefs", "train") if n in names), names[0])
    return train, next((n for n in ("test_prefs", "test") if n in names and n != train), None)


SAME_PROMPT = "another pair of the same prompt"   # why a row past the first pair of its prompt is set aside


@dataclass
class SplitRows:
    """One split as a setting reads it: ``rows`` holds one pair per distinct prompt (the first in
    the split's order; prompts compared without surrounding whitespace), ``counts`` every row read:
    ``read`` = ``kept`` + the rows the loader skipped, per kind of :data:`~prefalign_lite.engine.data.SKIP_KINDS`,
    + the rows set aside as :data:`SAME_PROMPT`."""

    source: str
    split: str
    rows: list[dict]
    counts: dict[str, int]

    @property
    def not_used(self) -> str:
        """The rows not used and why (``"not used 11: identical pair 1, another pair of the same prompt 10"``),
        or ``"every row used"``."""
        unused = {why: n for why, n in self.counts.items() if why not in ("read", "kept") and n}
        if not unused:
            return "every row used"
        return f"not used {sum(unused.values())}: " + ", ".join(f"{why} {n}" for why, n in unused.items())

    @property
    def line(self) -> str:
        """The split's log line: what was read, kept and not used, by reason."""
        return (f"dataset {self.source} [{self.split}]: read {self.counts['read']} rows, kept {self.counts['kept']} "
                f"(one pair per distinct prompt); {self.not_used}")


def read_split(source: str, split: str) -> SplitRows:
    """The split's rows, one pair per distinct prompt, bad rows skipped, each row counted by reason
    (:class:`SplitRows`). Keeping one pair keeps prompts disjoint between the parts of SPA's split,
    the offline sets and the evaluation prompts; the other pairs of a prompt are counted, not used."""
    rows, report = load_preferences(source, split=split, on_error="skip", conversational=False)
    first = {}
    for r in rows:
        first.setdefault(r["prompt"].strip(), r)
    counts = {"read": report.rows_read, "kept": len(first), **{kind: report.kinds[kind] for kind in SKIP_KINDS},
              SAME_PROMPT: len(rows) - len(first)}
    read = SplitRows(str(source), split, list(first.values()), counts)
    (log.warning if counts["kept"] < counts["read"] else log.info)("%s", read.line)
    return read


def distinct_prompts(source: str, split: str) -> list[dict]:
    """One row per distinct prompt of ``split`` (its first pair), bad rows skipped (:func:`read_split`)."""
    return read_split(source, split).rows


@dataclass
class DatasetSetting(Setting):
    """A real preference dataset (hub id or local path) judged by a reward model. Training prompts
    come from ``split``, evaluation prompts from ``eval_split`` (``None``: :func:`default_splits`;
    ``""``: held out of the training split). ``row_counts`` says what became of every row: per split
    (``"training"``, ``"evaluation"``) the :attr:`SplitRows.counts`, and for the last :meth:`pool`
    its evaluation and training prompts and the usable ones it did not draw."""

    source: str = ""                      # the preference dataset: hub id, JSONL file or saved folder
    judge_model: str = ""                 # the gold judge: a reward model by hub id or local path
    split: str | None = None              # split of the training prompts (None: default_splits)
    eval_split: str | None = None         # split of the evaluation prompts (None: default_splits; "": held out of split)
    name: str = ""                        # how reports name the setting (default: the dataset's)
    quality_prompt: str = PAPER_QUALITY_PROMPT   # Sr-DPO's p, prepended to the user turn
    max_length: int = 1024                # tokens of prompt + completion in training and log-probs
    max_new_tokens: int = 300             # tokens of a sampled answer
    max_prompt_tokens: int | None = 512   # sampling cuts longer prompts from the left (the DPO recipe's 512)
    sample_top_k: int = 0   # no top-k: a sample is a draw from the model (the checkpoint's own top_k is set aside)
    judge_batch_size: int = 32            # answers the reward model scores per forward pass
    judge_max_length: int | None = 4096   # tokens of prompt + answer the reward model reads
    model: str = ""                       # the SFT model when the notebook names none (default_model)

    def __post_init__(self):
        if not self.source or not self.judge_model:
            raise ValueError("DatasetSetting needs a dataset (source) and a reward model (judge_model)")
        train, held = default_splits(self.source)
        self.split = self.split or train
        self.eval_split = held if self.eval_split is None else (self.eval_split or None)
        training = read_split(self.source, self.split)
        evaluation = read_split(self.source, self.eval_split) if self.eval_split else None
        self.rows, self.eval_rows = training.rows, evaluation.rows if evaluation else []
        self.row_counts = {"training": {"split": self.split, **training.counts}}
        if evaluation:
            self.row_counts["evaluation"] = {"split": self.eval_split, **evaluation.counts}
        self.name = self.name or f"dataset {self.source}"
        self.judge = RewardModel(self.judge_model, device=str(default_device()), batch_size=self.judge_batch_size,
                                 max_length=self.judge_max_length)

    def run_record(self) -> dict:
        """``{"rows": row_counts}``: what became of every row of the dataset (see the class doc)."""
        return {"rows": self.row_counts}

    def default_model(self) -> str:
        if not self.model:
            raise ValueError(f"{self.name}: a real dataset needs a model (the SFT model by hub id or path)")
        return self.model

    def pool(self, n_eval: int, n_train: int, seed: int) -> Pool:
        """``n_eval`` evaluation prompts (from ``eval_split``, else the first of the shuffled training
        prompts) and the next ``n_train`` training prompts; an evaluation prompt is never trained on."""
        rng = random.Random(seed)
        train = list(self.rows)
        rng.shuffle(train)
        if self.eval_split:
            held = list(self.eval_rows)
            rng.shuffle(held)
            if n_eval > len(held):
                raise ValueError(f"{self.name}: asked for {n_eval} evaluation prompts, but split {self.eval_split!r} "
                                 f"has {len(held)} distinct prompts")
            held = held[:n_eval]
            asked = {r["prompt"].strip() for r in held}
            usable = len(train)
            train = [r for r in train if r["prompt"].strip() not in asked]
            also_held = usable - len(train)
            if n_train > len(train):
                raise ValueError(f"{self.name}: asked for {n_train} training prompts, but split {self.split!r} has "
                                 f"{len(train)} distinct prompts outside the evaluation ones")
        else:
            if n_eval + n_train > len(train):
                raise ValueError(f"{self.name}: asked for {n_eval} evaluation + {n_train} training prompts, "
                                 f"but split {self.split!r} has {len(train)} distinct prompts")
            held, train, also_held = train[:n_eval], train[n_eval:], 0
        rows = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in train[:n_train]]
        self.row_counts["pool"] = {"evaluation prompts": len(held), "training prompts": len(rows),
                                   "training prompts held out as evaluation prompts": also_held,
                                   "training prompts not drawn": len(train) - len(rows)}
        log.info("%s, seed %d: %s", self.name, seed, "; ".join(f"{n} {what}" for what, n in self.row_counts["pool"].items()))
        return Pool([r["prompt"] for r in held], rows)

    def llm_first_wins(self, logps: PairLogps, rows: list[dict], tokenizer=None, max_length: int | None = None) -> list[bool]:
        """The paper's pairwise question answered with "(A)" or "(B)", asked in both orders so that
        a preference for a position cancels. With ``tokenizer`` and ``max_length`` the question is
        fitted to the budget by :func:`judge_question`."""
        fit = _fitter(tokenizer, max_length)
        return (_ab_margin(logps, rows, False, fit) - _ab_margin(logps, rows, True, fit) > 0).tolist()


def judge_question(prompt: str, first: str, second: str, fit=None) -> str:
    """The pairwise question: question and answers, then :data:`AB_ASK` last. ``fit(text) -> int``
    counts tokens against a budget; when given, the question's text is cut from the left and the
    answers at their end, each to a share of what the budget leaves, so the ask always survives."""
    text = AB_MATERIAL.format(prompt=prompt, first=first, second=second) + AB_ASK
    if fit is None or fit(text) <= 0:
        return text
    parts = [prompt, first, second]
    for _ in range(8):   # shrink the longest part until the whole fits (token counts are not additive)
        over = fit(AB_MATERIAL.format(prompt=parts[0], first=parts[1], second=parts[2]) + AB_ASK)
        if over <= 0:
            break
        i = max(range(3), key=lambda k: len(parts[k]))
        keep = max(0, len(parts[i]) - max(over * 6, len(parts[i]) // 4))
        parts[i] = parts[i][len(parts[i]) - keep:] if i == 0 else parts[i][:keep]
    return AB_MATERIAL.format(prompt=parts[0], first=parts[1], second=parts[2]) + AB_ASK


def _fitter(tokenizer, max_length: int | None):
    """``text -> tokens over the budget`` of the judge's prompt (room kept for the verdict), or ``None``."""
    if tokenizer is None or not max_length:
        return None
    from ..engine.encoding import encode

    def over(text: str) -> int:
        head, tail = encode(tokenizer, text, "(A)")
        return len(head) + len(tail) - max_length
    return over


def _ab_margin(logps: PairLogps, rows: list[dict], swapped: bool, fit=None):
    """``log p("(A)") - log p("(B)")`` for the pairwise question, answers in the given order."""
    asked = [{"prompt": judge_question(r["prompt"], r["rejected" if swapped else "chosen"],
                                       r["chosen" if swapped else "rejected"], fit),
              "chosen": "(A)", "rejected": "(B)"} for r in rows]
    a, b = logps(asked)
    return a - b
