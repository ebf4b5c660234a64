"""What every method needs: one base model with iterates as LoRA adapters, sampling, log-probs
under any iterate, training an iterate, and evaluation against the SFT model by the setting's gold
judge — with the KL to the starting model that tells whether training wrecked it.

A method never imports the world: prompts, labelled pairs, the judge, the SFT model and the token
budgets come from the :class:`~prefalign_lite.settings.Setting` the session is given.

Iterates are named by integers; ``SFT`` (``None``) is the SFT model, ``pi_init``, with the adapters
switched off.
"""
from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core import stats
from ..engine import generate, logps, models, trainer
from ..engine.losses import TrainingLoss
from ..settings import Setting, resolve

log = logging.getLogger(__name__)

SFT = None   # the iterate name of the SFT model (adapters off)

# The learning rate every method uses: the rule `replication.fairness.choose_learning_rate` applied
# to the grid run on plain DPO before any method (`python -m prefalign_lite lr-grid`; the grid is
# toy_results/lr_selection.json). The papers fine-tune fully at 5e-7 (SPA) and 3e-6 (SeRA); a
# rank-16 LoRA is a fifth of the tiny model, so a LoRA-scale rate of 1e-3 wrecks it in one round.
LEARNING_RATE = 1e-4


@dataclass
class SessionConfig:
    seed: int = 0
    four_bit: bool | None = None      # None: 4-bit NF4 on a GPU (QLoRA), full precision on a CPU: NF4 rounding
                                      # halves the tiny model's skill (held-out gold 0.72 -> 0.42, measured)
    lora: models.LoraSettings = field(default_factory=models.LoraSettings)
    n_eval: int = 500
    n_train: int = 0                  # training prompts drawn from the setting (the methods cut them up)
    eval_temperature: float = 1.0     # the protocol's: the policy as trained (SeRA evaluates at 1.0 too)
    eval_top_p: float = 1.0
    sample_temperature: float = 0.7
    batch_size: int = 32              # pairs per forward and backward pass
    sample_batch_size: int | None = None   # None: generate.default_batch_size for the device
    learning_rate: float = LEARNING_RATE
    max_length: int | None = None     # None: the setting's
    max_new_tokens: int | None = None # None: the setting's
    kl_prompts: int = 100             # evaluation prompts used to estimate the KL between iterates
    # ---- the shape of a run on real hardware (issue 19) ----
    grad_accumulation: int = 1        # passes per optimizer update: an update sees batch_size * grad_accumulation pairs
    max_prompt_tokens: int | None = None   # sampling cuts longer prompts from the left (None: the setting's)
    merged_sampling: bool | None = None    # sample from a dense merged copy of the iterate (None: on a GPU)
    resident_adapters: int | None = None   # adapters kept on the device, the rest in CPU memory (None: 4 on a GPU)


@dataclass
class Evaluation:
    """One evaluated model: the numbers a notebook saves (``record``) and the gold judge's score of
    its answer to each evaluation prompt (``scores``, in the session's prompt order)."""

    record: dict
    scores: np.ndarray


def head_to_head(a: Evaluation, b: Evaluation) -> dict:
    """Win / tie / lose shares of model ``a`` against model ``b`` on the same prompts, by the gold judge."""
    sa, sb = a.scores, b.scores
    if sa.shape != sb.shape:
        raise ValueError(f"head_to_head: {sa.size} scores against {sb.size}; evaluate both on one session's prompts")
    return {"win": float(np.mean(sa > sb)), "tie": float(np.mean(sa == sb)), "lose": float(np.mean(sa < sb))}


class Session:
    """One run's models: ``pi_init`` is the base with adapters disabled (``t = SFT``), iterate
    ``t`` the adapter ``iter{t}``."""

    def __init__(self, setting: Setting, model: str | Path | None = None, config: SessionConfig = SessionConfig()):
        self.setting, self.config = setting, config
        self.sft_path = resolve(str(model)) if model else setting.default_model()
        _, self.tokenizer = models.load_pretrained(self.sft_path, tokenizer_only=True)
        four_bit = config.four_bit if config.four_bit is not None else models.default_device().type == "cuda"
        base = models.load_base(self.sft_path, four_bit=four_bit)
        gpu = next(base.parameters()).device.type == "cuda"
        resident = config.resident_adapters if config.resident_adapters is not None else (4 if gpu else None)
        self.iterates = models.IterateAdapters(base, config.lora, resident=resident)
        self.max_length = config.max_length or setting.max_length
        self.max_new_tokens = config.max_new_tokens or setting.max_new_tokens
        self.max_prompt_tokens = config.max_prompt_tokens or getattr(setting, "max_prompt_tokens", None)
        self.merged_sampling = gpu if config.merged_sampling is None else config.merged_sampling
        self._merged: tuple | None = None   # (iterate, dense copy) while that iterate is unchanged
        self.sample_batch_size = config.sample_batch_size or generate.default_batch_size(self.iterates.base)
        self.pool = setting.pool(config.n_eval, config.n_train, config.seed)
        self.times: dict[str, float] = {}
        self._last_name = -1
        self.prompt_scores: dict[str, list[float]] = {}   # every evaluation's gold score per prompt, by label
        self.use_prompts(self.pool.eval_prompts)

    def use_prompts(self, prompts: list[str]) -> None:
        """Evaluate on ``prompts`` from now on (the held-out prompts by default; a validation split
        to choose a setting): the SFT model answers them once, the reference of every win rate."""
        if not prompts:
            raise ValueError("evaluation on zero prompts")
        self.eval_prompts = list(prompts)
        self.sft_responses = self.answers(SFT, label="SFT")
        self.sft_scores = self.score(self.eval_prompts, self.sft_responses)
        self.prompt_scores["SFT"] = [round(float(x), 6) for x in self.sft_scores]

    # ---- models ------------------------------------------------------------------------------
    def fresh(self) -> int:
        """A name for a new iterate: the next integer, in the order of the calls, that no adapter of
        this session has (the name seeds the iterate's LoRA initialisation and its data order, so a
        notebook that trains its models in the same order gets the same bits)."""
        taken = set(self.iterates.names)
        self._last_name += 1
        while self.iterates.name(self._last_name) in taken:
            self._last_name += 1
        return self._last_name

    def model_for(self, t: int | None):
        """A context giving iterate ``t`` (``SFT``: the SFT model) in no-grad evaluation mode."""
        return self.iterates.use(t) if self.iterates.model is not None else _no_grad(self.iterates.base)

    def sample(self, t: int | None, prompts: list[str], n_samples: int = 1, temperature: float | None = None,
               seed: int = 0, top_p: float = 0.95) -> list[list[str]]:
        if not prompts:
            raise ValueError("sampling on zero prompts")
        with self._sampler(t) as m:
            out, _ = generate.sample(m, self.tokenizer, prompts, n_samples=n_samples,
                                     temperature=self.config.sample_temperature if temperature is None else temperature,
                                     top_p=top_p, max_new_tokens=self.max_new_tokens, seed=seed,
                                     batch_size=self.sample_batch_size, progress=False,
                                     max_prompt_tokens=self.max_prompt_tokens,
                                     top_k=getattr(self.setting, "sample_top_k", generate.DEFAULT_TOP_K))
        return out

    def _sampler(self, t: int | None):
        """The model that samples for iterate ``t``: itself, or with ``merged_sampling`` a dense copy
        with its adapter merged (one matmul per projection; rebuilt only after ``t`` changes)."""
        if not self.merged_sampling or self.iterates.model is None:
            return self.model_for(t)
        if self._merged is None or self._merged[0] != t:
            self._merged = None
            self._merged = (t, self.iterates.merged(t, dtype=models.default_dtype(self.device), base=t is SFT))
        return _no_grad(self._merged[1])

    def logps(self, t: int | None, rows: list[dict], prefix: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logp_chosen, logp_rejected)`` of plain-string rows under iterate ``t`` (long prompts cut
        from the left, as in training)."""
        with self.model_for(t) as m:
            return logps.pair_logps(m, self.tokenizer, rows, prefix=prefix, max_length=self.max_length)

    @property
    def device(self):
        return next(self.iterates.base.parameters()).device

    def train(self, t: int, rows: list[dict], objective: TrainingLoss, ref: int | None, init_from: int | None,
              epochs: int = 1, stage: str = "training") -> trainer.History:
        """Create iterate ``t`` (from ``init_from`` or fresh) and train it against iterate ``ref``."""
        start = time.perf_counter()
        self._merged = None   # training needs the memory, and iterate t is about to change
        torch.manual_seed(self.config.seed * 1_000 + t)  # LoRA's initialisation: the same whatever ran before
        self.iterates.create(t, init_from=init_from)
        cfg = trainer.TrainConfig(learning_rate=self.config.learning_rate, epochs=epochs, batch_size=self.config.batch_size,
                                  grad_accumulation=self.config.grad_accumulation,
                                  max_length=self.max_length, seed=self.config.seed + t, progress=False, stage=stage)
        history = trainer.PreferenceTrainer(self.iterates.model, self.tokenizer, objective,
                                            lambda: self.model_for(ref), cfg).train(rows)
        self.iterates.activate(t)
        self.times[f"train_iter{t}"] = time.perf_counter() - start
        return history

    # ---- judging and evaluation ------------------------------------------------------------------
    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """The setting's gold judge (the world's gold reward, or a reward model)."""
        return np.asarray(self.setting.judge.score(prompts, responses), dtype=float)

    def gold_gaps(self, rows: list[dict]) -> np.ndarray:
        """The gold judge's score of each pair's chosen answer minus its rejected answer."""
        if not rows:
            raise ValueError("gold gaps of zero pairs")
        prompts = [r["prompt"] for r in rows]
        return self.score(prompts, [r["chosen"] for r in rows]) - self.score(prompts, [r["rejected"] for r in rows])

    def label_quality(self, rows: list[dict]) -> dict:
        """How often the label of each pair agrees with the gold judge, **ties excluded**, beside the
        share of ties (a tie says nothing about the judge that labelled the pair)."""
        gap = self.gold_gaps(rows)
        decided = gap != 0
        accuracy = float(np.mean(gap[decided] > 0)) if decided.any() else float("nan")
        return {"label_accuracy": accuracy, "tie_share": float(1 - decided.mean()), "pairs": len(rows)}

    def answers(self, t: int | None, temperature: float | None = None, label: str | None = None) -> list[str]:
        """One answer of iterate ``t`` per evaluation prompt, at the evaluation temperature unless
        ``temperature`` is given (the sharpening control samples the SFT model at the sampler's).
        Each evaluated model draws from its own sampling stream, seeded by the run's seed and the
        model's ``label``, so that two models tie on a prompt only when their answers are equally
        good, not because they shared random numbers."""
        temperature = self.config.eval_temperature if temperature is None else temperature
        stream = zlib.crc32((label or f"iterate {t}").encode())
        return [r[0] for r in self.sample(t, self.eval_prompts, temperature=temperature, top_p=self.config.eval_top_p,
                                          seed=self.config.seed * 1_000_003 + stream)]

    def evaluate(self, t: int | None, previous: int | None = None, *, with_previous: bool = False,
                 label: str | None = None, temperature: float | None = None) -> Evaluation:
        """Gold win rate of iterate ``t`` against the SFT model on the evaluation prompts (ties count
        1/2; bootstrap 95% interval over prompts), mean gold score, length, length-controlled win
        rate, the KL to the SFT model and, ``with_previous``, the KL to iterate ``previous``. The
        per-prompt scores are kept under ``label`` in :attr:`prompt_scores` (saved with the run)."""
        responses = self.answers(t, temperature, label)
        scores = self.score(self.eval_prompts, responses)
        if label is not None:
            self.prompt_scores[label] = [round(float(x), 6) for x in scores]
        win = stats.wins(scores, self.sft_scores)
        ci = stats.bootstrap_ci(win, seed=self.config.seed)
        lengths = [len(r.split()) for r in responses]
        record = {"win_rate": ci.mean, "win_low": ci.low, "win_high": ci.high, "gold": float(scores.mean()),
                  "length": float(np.mean(lengths)),
                  "lc_win_rate": stats.length_controlled_win_rate(win, lengths, [len(r.split()) for r in self.sft_responses]),
                  "kl_init": 0.0}
        refs = ([] if t is SFT else [SFT]) + ([previous] if with_previous and previous != t else [])
        kls = self.kls(t, refs) if refs else []   # one sample of pi_t serves both estimates
        if t is not SFT:
            record["kl_init"] = kls.pop(0)
        if with_previous:
            record["kl_previous"] = kls[0] if previous != t else 0.0
        return Evaluation(record, scores)

    def kl(self, t: int | None, ref: int | None) -> float:
        """``KL(pi_t || pi_ref)`` per answer, estimated from one temperature-1 sample of ``pi_t`` on
        each of ``kl_prompts`` evaluation prompts: the mean of ``log pi_t(y) - log pi_ref(y)``."""
        return self.kls(t, [ref])[0]

    def kls(self, t: int | None, refs: list[int | None]) -> list[float]:
        """:meth:`kl` of ``pi_t`` to each of ``refs``, on the same sample of ``pi_t``."""
        prompts = self.eval_prompts[:self.config.kl_prompts]
        ys = [r[0] for r in self.sample(t, prompts, temperature=1.0, top_p=1.0, seed=self.config.seed + 2)]
        own = self.answer_logps(t, prompts, ys)
        return [float((own - self.answer_logps(ref, prompts, ys)).mean()) for ref in refs]

    def answer_logps(self, t: int | None, prompts: list[str], answers: list[str]) -> torch.Tensor:
        """``log pi_t(answer | prompt)`` of each answer (one pass per answer, cut as in training)."""
        with self.model_for(t) as m:
            return logps.completion_logps_of(m, self.tokenizer, prompts, answers, max_length=self.max_length)


def plain(rows: list[dict]) -> list[dict]:
    """Only the three fields the trainer reads."""
    return [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]


class _no_grad:
    """The bare base as a context (before any adapter exists), without gradients."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self._ctx = torch.no_grad()
        self._ctx.__enter__()
        return self.model

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
