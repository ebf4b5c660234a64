"""What every method needs: one base model with iterates as LoRA adapters, sampling, log-probs
under any iterate, training an iterate, and evaluation against the SFT model by the setting's gold
judge — with the KL to the starting model that tells whether training wrecked it.

A method never imports the world: prompts, labelled pairs, the judge, the SFT model and the token
budgets come from the :class:`~prefalign_lite.settings.Setting` the session is given.

Iterates are named by integers; :data:`SFT` names the SFT model, ``pi_init``, with the adapters
switched off.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.pairs import label_quality
from ..core import stats
from ..core.streams import label_index, stream_seed
from ..engine import generate, logps, memory, models, trainer
from ..engine.losses import TrainingLoss
from ..engine.trainer import LEARNING_RATE  # noqa: F401  (the rate every method trains at; see engine.trainer)
from ..settings import Setting, from_parameters as setting_from_parameters, resolve

log = logging.getLogger(__name__)


class _SftModel:
    """The name of the SFT model among a session's iterates (the base with every adapter off)."""

    def __repr__(self) -> str:
        return "SFT"


SFT = _SftModel()


@dataclass
class SessionConfig:
    """One run's models, prompts, sampling and evaluation. The optimiser's settings are the
    trainer's own (``training``); the session sets its ``epochs``, ``max_length``, ``seed`` and
    ``stage`` for each iterate it trains. ``None`` means the setting's value or the device's."""

    seed: int = 0                     # the run's seed: every random stream is derived from it (core.streams)
    four_bit: bool | None = None      # 4-bit NF4 base; None: on a GPU where the setting asks for low precision
                                      # (QLoRA), never on a CPU, where NF4 rounding halves the tiny model's skill
                                      # (held-out gold 0.72 -> 0.42, measured)
    lora: models.LoraSettings = field(default_factory=models.LoraSettings)   # every iterate's adapter shape
    n_eval: int = 500                 # held-out evaluation prompts
    n_train: int = 0                  # training prompts drawn from the setting (the methods cut them up)
    eval_temperature: float = 1.0     # the evaluated policy's temperature: the policy as trained (SeRA evaluates at 1.0 too)
    eval_top_p: float = 1.0           # and its nucleus
    sample_temperature: float = 0.7   # temperature of the answers the methods train on
    sample_batch_size: int | None = None   # prompts per generate call (None: generate.default_batch_size for the device)
    max_length: int | None = None     # tokens of prompt + answer in training and log-probs (None: the setting's)
    max_new_tokens: int | None = None # tokens of a sampled answer (None: the setting's)
    max_prompt_tokens: int | None = None   # sampling cuts longer prompts from the left (None: the setting's)
    kl_prompts: int = 100             # evaluation prompts used to estimate the KL between iterates
    merged_sampling: bool | None = None    # sample from a dense merged copy of the iterate (None: on a GPU)
    resident_adapters: int | None = None   # adapters kept on the device, the rest in CPU memory (None: 4 on a GPU)
    training: trainer.TrainConfig = field(default_factory=lambda: trainer.TrainConfig(progress=False))


# The notebook parameters a session is built from (Session.from_parameters), and those of them for
# which "" or 0 means "the setting's own".
SESSION_PARAMETERS = ("seed", "model", "dataset", "judge", "split", "eval_split", "n_eval", "batch_size",
                      "grad_accumulation", "max_length", "max_prompt_tokens", "sample_temperature")
TRAINING_PARAMETERS = ("batch_size", "grad_accumulation")


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
    """One run's models: ``pi_init`` is the base with adapters disabled (iterate :data:`SFT`),
    iterate ``t`` the adapter ``iter{t}``."""

    def __init__(self, setting: Setting, model: str | Path | None = None, config: SessionConfig = SessionConfig()):
        self.setting, self.config = setting, config
        self.sft_path = resolve(str(model)) if model else setting.default_model()
        _, self.tokenizer = models.load_pretrained(self.sft_path, tokenizer_only=True)
        gpu = models.default_device().type == "cuda"
        self.low_precision = gpu and setting.low_precision_on_gpu
        four_bit = config.four_bit if config.four_bit is not None else self.low_precision
        base = models.load_base(self.sft_path, four_bit=four_bit, dtype=None if self.low_precision else torch.float32)
        resident = config.resident_adapters if config.resident_adapters is not None else (4 if gpu else None)
        self.iterates = models.IterateAdapters(base, config.lora, resident=resident)
        self.max_length = config.max_length or setting.max_length
        self.max_new_tokens = config.max_new_tokens or setting.max_new_tokens
        self.max_prompt_tokens = config.max_prompt_tokens or setting.max_prompt_tokens
        self.merged_sampling = gpu if config.merged_sampling is None else config.merged_sampling
        self._merged: tuple | None = None   # (iterate, dense copy) while that iterate is unchanged
        reserve = memory.merged_copy_bytes(self.iterates.base.config) if self.merged_sampling else 0
        self.sample_batch_size = config.sample_batch_size or generate.default_batch_size(self.iterates.base,
                                                                                         reserve_bytes=reserve)
        self.pool = setting.pool(config.n_eval, config.n_train, config.seed)
        self.times: dict[str, float] = {}
        self._last_name = -1
        self.prompt_scores: dict[str, list[float]] = {}   # every evaluation's gold score per prompt, by label
        self.use_prompts(self.pool.eval_prompts)

    @classmethod
    def from_parameters(cls, parameters: dict, n_train: int) -> "Session":
        """The session a method notebook's parameters ask for. ``parameters`` is the notebook's
        parameter dict as it stands: the keys of :data:`SESSION_PARAMETERS` are read (the method's
        own keys are not), and ``""`` or ``0`` for a model, dataset, judge, split or token budget
        means the setting's own. ``n_train`` is how many training prompts the notebook cuts up."""
        p = {k: parameters[k] for k in SESSION_PARAMETERS if k in parameters}
        setting = setting_from_parameters(p.get("dataset", ""), p.get("judge", ""), split=p.get("split") or None,
                                          eval_split=p.get("eval_split") or None)
        training = dataclasses.replace(SessionConfig().training, **{k: p[k] for k in TRAINING_PARAMETERS if k in p})
        config = SessionConfig(seed=p.get("seed", 0), n_eval=p.get("n_eval", SessionConfig.n_eval), n_train=n_train,
                               max_length=p.get("max_length") or None, max_prompt_tokens=p.get("max_prompt_tokens") or None,
                               sample_temperature=p.get("sample_temperature", SessionConfig.sample_temperature),
                               training=training)
        return cls(setting, p.get("model") or None, config)

    def use_prompts(self, prompts: list[str]) -> None:
        """Evaluate on ``prompts`` from now on (the held-out prompts by default; a validation split
        to choose a setting): the SFT model answers them once, the reference of every win rate."""
        if not prompts:
            raise ValueError("evaluation on zero prompts")
        self.eval_prompts = list(prompts)
        self.sft_responses = self.answers(SFT, label="SFT")
        self.sft_scores = self.score(self.eval_prompts, self.sft_responses)
        self.prompt_scores["SFT"] = [round(float(x), 6) for x in self.sft_scores]

    def seed_of(self, stream: str, index: int = 0) -> int:
        """The seed of draw ``index`` of the named random stream of this run (:mod:`prefalign_lite.core.streams`)."""
        return stream_seed(stream, self.config.seed, index)

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

    def model_for(self, t):
        """A context giving iterate ``t`` (:data:`SFT`: the SFT model) in no-grad evaluation mode."""
        if self.iterates.model is None:
            return _no_grad(self.iterates.base)
        return self.iterates.use(None if t is SFT else t)

    def sample(self, t, prompts: list[str], n_samples: int = 1, temperature: float | None = None,
               seed: int = 0, top_p: float = 0.95) -> list[list[str]]:
        """``n_samples`` answers of iterate ``t`` per prompt (the sampler's temperature unless given)."""
        if not prompts:
            raise ValueError("sampling on zero prompts")
        with self._sampler(t) as m:
            out, _ = generate.sample(m, self.tokenizer, prompts, n_samples=n_samples,
                                     temperature=self.config.sample_temperature if temperature is None else temperature,
                                     top_p=top_p, max_new_tokens=self.max_new_tokens, seed=seed,
                                     batch_size=self.sample_batch_size, progress=False,
                                     max_prompt_tokens=self.max_prompt_tokens, top_k=self.setting.sample_top_k)
        return out

    def _sampler(self, t):
        """The model that samples for iterate ``t``: itself, or with ``merged_sampling`` a dense copy
        with its adapter merged (one matmul per projection; rebuilt only after ``t`` changes)."""
        if not self.merged_sampling or self.iterates.model is None:
            return self.model_for(t)
        if self._merged is None or self._merged[0] != t:
            self._merged = None
            dtype = models.default_dtype(self.device) if self.low_precision else torch.float32
            self._merged = (t, self.iterates.merged(None if t is SFT else t, dtype=dtype, base=t is SFT))
        return _no_grad(self._merged[1])

    def logps(self, t, rows: list[dict], prefix: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logp_chosen, logp_rejected)`` of plain-string rows under iterate ``t`` (long prompts cut
        from the left, as in training)."""
        self._release_merged()   # a judging pass's working set and the merged copy are never alive together
        with self.model_for(t) as m:
            return logps.pair_logps(m, self.tokenizer, rows, prefix=prefix, max_length=self.max_length)

    def _release_merged(self) -> None:
        """Free the merged sampling copy (rebuilt by the next :meth:`sample` that needs it)."""
        if self._merged is not None:
            self._merged = None
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    @property
    def device(self):
        return next(self.iterates.base.parameters()).device

    def train(self, t: int, rows: list[dict], objective: TrainingLoss, ref, init_from: int | None,
              epochs: int = 1, stage: str = "training") -> trainer.History:
        """Create iterate ``t`` (from ``init_from``, or a fresh adapter for ``None``) and train it
        against iterate ``ref`` with the session's trainer settings."""
        start = time.perf_counter()
        self._release_merged()   # training needs the memory, and iterate t is about to change
        torch.manual_seed(self.seed_of("lora init", t))  # the same initialisation whatever ran before
        self.iterates.create(t, init_from=init_from)
        cfg = dataclasses.replace(self.config.training, epochs=epochs, max_length=self.max_length,
                                  seed=self.seed_of("training", t), stage=stage)
        history = trainer.PreferenceTrainer(self.iterates.model, self.tokenizer, objective,
                                            lambda: self.model_for(ref), cfg).train(rows)
        self.iterates.activate(t)
        self.times[f"train_iter{t}"] = time.perf_counter() - start
        return history

    # ---- judging and evaluation ------------------------------------------------------------------
    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """The setting's gold judge (the world's gold reward, or a reward model); the merged sampling
        copy is freed first, so that it and the reward model are never on the device together."""
        self._release_merged()
        return np.asarray(self.setting.judge.score(prompts, responses), dtype=float)

    def gold_gaps(self, rows: list[dict]) -> np.ndarray:
        """The gold judge's score of each pair's chosen answer minus its rejected answer."""
        if not rows:
            raise ValueError("gold gaps of zero pairs")
        prompts = [r["prompt"] for r in rows]
        return self.score(prompts, [r["chosen"] for r in rows]) - self.score(prompts, [r["rejected"] for r in rows])

    def label_quality(self, rows: list[dict]) -> dict:
        """How often the label of each pair agrees with the gold judge, **ties excluded**, beside the
        share of ties (:func:`prefalign_lite.core.pairs.label_quality` of the gold gaps)."""
        return {**label_quality(self.gold_gaps(rows)), "pairs": len(rows)}

    def answers(self, t, temperature: float | None = None, label: str | None = None) -> list[str]:
        """One answer of iterate ``t`` per evaluation prompt, at the evaluation temperature unless
        ``temperature`` is given (the sharpening control samples the SFT model at the sampler's).
        Each evaluated model draws from its own sampling stream, seeded by the run's seed and the
        model's ``label``, so that two models tie on a prompt only when their answers are equally
        good, not because they shared random numbers."""
        temperature = self.config.eval_temperature if temperature is None else temperature
        seed = self.seed_of("evaluation answers", label_index(label or f"iterate {t}"))
        return [r[0] for r in self.sample(t, self.eval_prompts, temperature=temperature, top_p=self.config.eval_top_p,
                                          seed=seed)]

    def evaluate(self, t, previous=None, *, label: str | None = None, temperature: float | None = None) -> Evaluation:
        """Gold win rate of iterate ``t`` against the SFT model on the evaluation prompts (ties count
        1/2; bootstrap 95% interval over prompts), mean gold score, length, length-controlled win
        rate, the KL to the SFT model and, when ``previous`` names an iterate (:data:`SFT` included),
        the KL to it. The per-prompt scores are kept under ``label`` in :attr:`prompt_scores` (saved
        with the run)."""
        responses = self.answers(t, temperature, label)
        scores = self.score(self.eval_prompts, responses)
        if label is not None:
            self.prompt_scores[label] = [round(float(x), 6) for x in scores]
        win = stats.wins(scores, self.sft_scores)
        ci = stats.bootstrap_ci(win, seed=self.seed_of("bootstrap"))
        lengths = [len(r.split()) for r in responses]
        record = {"win_rate": ci.mean, "win_low": ci.low, "win_high": ci.high, "gold": float(scores.mean()),
                  "length": float(np.mean(lengths)),
                  "lc_win_rate": stats.length_controlled_win_rate(win, lengths, [len(r.split()) for r in self.sft_responses]),
                  "kl_init": 0.0}
        with_previous = previous is not None
        refs = ([] if t is SFT else [SFT]) + ([previous] if with_previous and previous != t else [])
        kls = self.kls(t, refs) if refs else []   # one sample of pi_t serves both estimates
        if t is not SFT:
            record["kl_init"] = kls.pop(0)
        if with_previous:
            record["kl_previous"] = kls[0] if previous != t else 0.0
        return Evaluation(record, scores)

    def kl(self, t, ref) -> float:
        """``KL(pi_t || pi_ref)`` per answer, estimated from one temperature-1 sample of ``pi_t`` on
        each of ``kl_prompts`` evaluation prompts: the mean of ``log pi_t(y) - log pi_ref(y)``."""
        return self.kls(t, [ref])[0]

    def kls(self, t, refs: list) -> list[float]:
        """:meth:`kl` of ``pi_t`` to each of ``refs``, on the same sample of ``pi_t``."""
        prompts = self.eval_prompts[:self.config.kl_prompts]
        ys = [r[0] for r in self.sample(t, prompts, temperature=1.0, top_p=1.0, seed=self.seed_of("kl sample"))]
        own = self.answer_logps(t, prompts, ys)
        return [float((own - self.answer_logps(ref, prompts, ys)).mean()) for ref in refs]

    def answer_logps(self, t, prompts: list[str], answers: list[str]) -> torch.Tensor:
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
