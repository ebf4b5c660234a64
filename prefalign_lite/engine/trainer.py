"""One preference trainer for every objective: a lean loop, the loss a :class:`~.losses.TrainingLoss`.

Per step: one no-grad forward of the reference, one forward+backward of the policy over chosen
and rejected stacked (2B rows), the loss on the per-example log-probs. No separate reference
model is loaded: with LoRA iterates the reference is the same base with another (or no) adapter.
Logged: loss, reward margin, accuracy, share of pairs flagged as noise, learning rate, seconds per
update.

On a GPU the defaults switch on activation checkpointing (non-reentrant, so a frozen 4-bit base
with LoRA adapters needs no trick) and, for a 4-bit or half-precision model on a card with bf16,
bf16 autocast; on a CPU both stay off, the fast path. The
log-probs never build the ``(2B, T, V)`` logits (see :mod:`.logps`), and SPA's extrapolated
log-probs are computed chunk by chunk from the two passes' hidden states.

Rows are tokenised and truncated once, before the first step (TRL's convention, see
:func:`.encoding.truncate_pair`); truncated and skipped pairs are counted and logged under the
trainer's stage label.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from ..core.streams import stream_seed
from . import encoding as E
from . import logps as L
from . import models
from .losses import StepInputs, TrainingLoss
from .processes import rank_and_world, sum_gradients

log = logging.getLogger(__name__)


# The learning rate every method trains at: the rule ``replication.fairness.choose_learning_rate``
# applied to the grid run on plain DPO before any method (``python -m prefalign_lite lr-grid``; the
# grid is toy_results/lr_selection.json). The papers fine-tune fully at 5e-7 (SPA) and 3e-6 (SeRA);
# a rank-16 LoRA is a fifth of the tiny model, so a LoRA-scale rate of 1e-3 wrecks it in one round.
LEARNING_RATE = 1e-4


@dataclass
class TrainConfig:
    """Optimisation, engine and data settings of one training run. ``None`` engine switches follow
    the device: bf16 autocast and activation checkpointing on for CUDA, off for CPU."""

    learning_rate: float = LEARNING_RATE     # AdamW's peak rate (no weight decay)
    epochs: int = 1                          # passes over the rows
    batch_size: int = 32                     # pairs per forward and backward pass
    grad_accumulation: int = 1               # passes per optimizer update: an update sees batch_size * grad_accumulation pairs
    warmup_fraction: float = 0.1             # share of the updates the rate warms up over linearly, then cosine to 0
    max_length: int = 64                     # tokens of prompt + completion; longer pairs are cut (encoding.truncate_pair)
    max_grad_norm: float = 1.0               # gradient norm clipped to this before each update
    seed: int = 0                            # torch's seed at the start and the batch order's stream (core.streams)
    log_every: int = 10                      # updates per logged History record (and at the last update)
    progress: bool = True                    # a tqdm bar on rank 0
    stage: str = "training"                  # label of this run in log lines, errors and the History
    min_completion_tokens: int | None = None  # truncation keeps this many completion tokens (None: max_length // 2)
    on_unusable_pair: str = "error"          # a pair keeping no completion token: "error" or "skip" (counted)
    bf16: bool | None = None                 # bf16 autocast of both forward passes (None: on CUDA for a 4-bit or
                                             # half-precision model, on a card with bf16; a float32 model stays float32)
    gradient_checkpointing: bool | None = None   # non-reentrant activation checkpointing (None: on CUDA)
    logit_chunk_elements: int = L.DEFAULT_CHUNK_ELEMENTS   # logits materialised at once by the chunked log-probs
    pad_token_id: int | None = None          # for token-id rows without a tokenizer (default 0)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "grad_accumulation", "log_every", "logit_chunk_elements"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {value!r}")
        E.completion_reserve(self.max_length, self.min_completion_tokens)
        if self.on_unusable_pair not in E.UNUSABLE_PAIR_MODES:
            raise ValueError(f"TrainConfig.on_unusable_pair must be one of {E.UNUSABLE_PAIR_MODES}, got {self.on_unusable_pair!r}")
        if not 0 <= self.warmup_fraction <= 1:
            raise ValueError(f"TrainConfig.warmup_fraction must be in [0, 1], got {self.warmup_fraction!r}")


@dataclass
class History:
    records: list[dict] = field(default_factory=list)
    stage: str = ""
    pairs: int = 0            # pairs trained on (after skipping)
    pairs_truncated: int = 0  # of those, pairs of which a token was cut
    pairs_skipped: int = 0    # rows left out: they kept no completion token, or the chat template failed on them
    skipped_for: dict = field(default_factory=dict)   # rows left out, counted by reason (encoding.SKIP_REASONS)
    pairs_instruction_lost: int = 0   # pairs whose prompt prefix (Sr-DPO's instruction) a cut could not keep

    def last(self, key: str) -> float:
        """The latest logged value of ``key``; ``KeyError`` naming the stage and the keys logged
        when no record has it."""
        for record in reversed(self.records):
            if key in record:
                return record[key]
        logged = sorted({k for r in self.records for k in r})
        raise KeyError(f"{self.stage or 'training'}: no record has {key!r} "
                       f"({len(self.records)} records; keys logged: {logged})")


def cosine_with_warmup(step: int, total: int, warmup_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup_fraction`` of the steps, then cosine to 0."""
    warm = max(1, int(round(warmup_fraction * total)))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@contextlib.contextmanager
def activation_checkpointing(model, enabled: bool):
    """Non-reentrant activation checkpointing of the decoder layers while inside (restored after).
    With a frozen (4-bit) base and LoRA adapters it needs no input-gradient hook."""
    lm = L.causal_lm(model)
    flag = "is_activation_checkpointing" if hasattr(type(lm), "is_activation_checkpointing") else "is_gradient_checkpointing"
    was = bool(getattr(lm, flag, False))
    if not enabled or was:
        yield
        return
    kwargs = {"use_reentrant": False}
    had_hooks = bool(getattr(lm, "_require_grads_hooks", None) or getattr(lm, "_require_grads_hook", None))
    if hasattr(lm, "activation_checkpointing_enable"):
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    try:
        yield
    finally:
        (getattr(lm, "activation_checkpointing_disable", None) or lm.gradient_checkpointing_disable)()
        if not had_hooks and hasattr(lm, "disable_input_require_grads"):  # transformers adds an input-grad hook
            lm.disable_input_require_grads()


class PreferenceTrainer:
    """Train ``model`` (its trainable parameters) on rows ``{"prompt", "chosen", "rejected"}`` (plain
    strings) or ``{"prompt_ids", "chosen_ids", "rejected_ids"}`` (token ids, no tokenizer needed)
    against ``reference`` — a context manager factory giving the reference model, e.g.
    ``lambda: iterates.use(t - 1)`` — with any :class:`~.losses.TrainingLoss`."""

    def __init__(self, model, tokenizer, objective: TrainingLoss, reference: Callable, config: TrainConfig = TrainConfig(),
                 prefix: str | None = None):
        self.model, self.tokenizer, self.objective, self.reference = model, tokenizer, objective, reference
        self.config, self.prefix = config, prefix
        self.device = next(model.parameters()).device
        cuda = self.device.type == "cuda"
        self.bf16 = (cuda and models.low_precision(model) and models.bf16_supported(self.device)) if config.bf16 is None \
            else config.bf16
        self.checkpointing = cuda if config.gradient_checkpointing is None else config.gradient_checkpointing
        self.stage = config.stage

    # ---- data -----------------------------------------------------------------------------
    @property
    def pad_token_id(self) -> int:
        if self.config.pad_token_id is not None:
            return self.config.pad_token_id
        return E.pad_token_id_or(self.tokenizer)

    def tokenise(self, rows: list[dict], prefix: str | None = None, on_unusable: str | None = None) -> E.TokenisedRows:
        cfg = self.config
        return E.tokenise_rows(self.tokenizer, rows, prefix, cfg.max_length, cfg.min_completion_tokens,
                               on_unusable or cfg.on_unusable_pair, stage=self.stage)

    def encode(self, rows: list[dict], prefix: str | None = None) -> E.PairBatch:
        done = self.tokenise(rows, prefix or self.prefix, on_unusable="error")
        return E.collate(done.pairs, self.pad_token_id, tuple(done.kept))

    def batches(self, rows: list[dict], epoch: int) -> list[list[dict]]:
        return [[rows[i] for i in part] for part in self._batch_indices(len(rows), epoch)]

    def _batch_indices(self, n: int, epoch: int) -> list[list[int]]:
        order = list(range(n))
        random.Random(stream_seed("batch order", self.config.seed, epoch)).shuffle(order)
        size = self.config.batch_size
        return [order[lo:lo + size] for lo in range(0, n, size)]

    # ---- one step ---------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def step_inputs(self, rows: list[dict], step: int, total: int) -> StepInputs:
        """Both forward passes for one batch of rows (the policy's with gradients)."""
        augmented = self.encode(rows, self.objective.augment_prefix) if self.objective.augment_prefix else None
        return self.batch_inputs(self.encode(rows), rows, step, total, augmented)

    def batch_inputs(self, batch: E.PairBatch, rows: list[dict], step: int, total: int,
                     augmented: E.PairBatch | None = None) -> StepInputs:
        """Both forward passes for one collated batch (the policy's with gradients)."""
        batch = batch.to(self.device)
        obj, chunk = self.objective, self.config.logit_chunk_elements
        full, lam = obj.needs_logits, obj.extrapolate_lam
        with self.autocast():
            with self.reference() as ref_model:
                ref = L.forward_pass(ref_model, batch, full_logits=full, chunk_elements=chunk)
            pi = L.forward_pass(self.model, batch, full_logits=full, chunk_elements=chunk)
            ext = self._extrapolated(pi, ref, batch, lam) if lam is not None else None
        (pi_w, pi_l), (ref_w, ref_l) = L.split_pairs(pi.logps), L.split_pairs(ref.logps)
        len_w, len_l = L.split_pairs(pi.lengths)
        ext_w, ext_l = L.split_pairs(ext) if ext is not None else (None, None)
        return StepInputs(pi_w, pi_l, ref_w, ref_l, len_w, len_l, step, total, rows,
                          policy_logits=pi.logits if full else None, ref_logits=ref.logits if full else None,
                          labels=batch.labels if full else None,
                          augmented=self.augmented_logps(augmented) if augmented is not None else None,
                          ext_w=ext_w, ext_l=ext_l)

    def _extrapolated(self, policy: L.ForwardPass, ref: L.ForwardPass, batch: E.PairBatch, lam: float) -> torch.Tensor:
        """SPA Eq. 12 log-probs of the batch, no gradient: from the hidden states when both passes
        went that way, else from the full logits."""
        if policy.states is not None and ref.states is not None:
            s = policy.states
            detached = L.CompletionStates(s.hidden.detach(), s.targets, s.mask, s.head)
            return L.extrapolated_logps_from_states(detached, ref.states, lam, self.config.logit_chunk_elements)
        with torch.no_grad():
            return L.extrapolated_pair_logps(policy.logits.detach(), ref.logits, batch.labels, lam)

    def augmented_logps(self, batch: E.PairBatch | list[dict]) -> tuple[torch.Tensor, ...]:
        """``(pi_w, pi_l, ref_w, ref_l)`` of the completions given ``augment_prefix + prompt``, no grad."""
        if isinstance(batch, list):
            batch = self.encode(batch, self.objective.augment_prefix)
        batch, chunk = batch.to(self.device), self.config.logit_chunk_elements
        with torch.no_grad(), self.autocast():
            pi = L.forward_logps(self.model, batch, chunk_elements=chunk)
            with self.reference() as ref_model:
                ref = L.forward_logps(ref_model, batch, chunk_elements=chunk)
        return (*L.split_pairs(pi), *L.split_pairs(ref))

    # ---- the loop ---------------------------------------------------------------------------
    def prepare(self, rows: list[dict], stage: str) -> tuple[E.TokenisedRows, E.TokenisedRows | None]:
        """Tokenise and truncate every row once; a row unusable in the plain or the augmented
        encoding is an error or a counted skip. Raises ``ValueError`` when nothing is left."""
        if len(rows) == 0:
            raise ValueError(f"{stage}: no pairs to train on (0 rows given)")
        plain = self.tokenise(rows, self.prefix)
        augmented = self.tokenise(rows, self.objective.augment_prefix) if self.objective.augment_prefix else None
        if augmented is not None and augmented.kept != plain.kept:
            both = sorted(set(plain.kept) & set(augmented.kept))
            plain, augmented = _restrict(plain, both, len(rows)), _restrict(augmented, both, len(rows))
        if not plain.pairs:
            raise ValueError(f"{stage}: no pairs to train on: all {len(rows)} rows were skipped because they keep no "
                             f"completion token within max_length {self.config.max_length}")
        return plain, augmented

    def train(self, rows: list[dict], stage: str | None = None) -> History:
        cfg = self.config
        self.stage = stage = stage or cfg.stage
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"{stage}: the model has no trainable parameters (activate an adapter first)")
        data, augmented = self.prepare(rows, stage)
        if self.device.type == "cpu" and models.unpack_cpu_4bit(self.model):
            log.debug("%s: 4-bit weights back from bitsandbytes' CPU inference layout", stage)
        n = len(data.pairs)
        lost = len(augmented.instruction_lost) if augmented is not None else 0
        skipped_for = {why: len(ids) for why, ids in data.skipped_for.items() if ids}
        history = History(stage=stage, pairs=n, pairs_truncated=data.truncated, pairs_skipped=len(data.skipped),
                          skipped_for=skipped_for, pairs_instruction_lost=lost)
        why = "".join(f", {count} for the {reason}" for reason, count in skipped_for.items())
        log.info("%s: %d pairs (%d truncated to max_length %d, %d skipped of %d rows%s%s)", stage, n, data.truncated,
                 cfg.max_length, len(data.skipped), len(rows), why, f"; the prompt prefix lost in {lost}" if lost else "")
        torch.manual_seed(cfg.seed)
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
        rank, world = rank_and_world()
        per_epoch = math.ceil(math.ceil(n / cfg.batch_size) / cfg.grad_accumulation)
        total = max(1, per_epoch * cfg.epochs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, total, cfg.warmup_fraction))
        update, window, logged = 0, [], 0
        self.model.train()
        bar = tqdm(total=total, desc=stage, disable=not cfg.progress or rank > 0, leave=False)
        tick = time.perf_counter()
        with activation_checkpointing(self.model, self.checkpointing):
            for epoch in range(cfg.epochs):
                for group in update_groups(self._batch_indices(n, epoch), cfg.grad_accumulation):
                    pairs = sum(len(idx) for idx in group)   # pairs of this update, over every process
                    for idx in group[rank::world]:
                        rows_b = [rows[data.kept[i]] for i in idx]
                        batch = E.collate([data.pairs[i] for i in idx], self.pad_token_id, tuple(data.kept[i] for i in idx))
                        aug = (E.collate([augmented.pairs[i] for i in idx], self.pad_token_id)
                               if augmented is not None else None)
                        x = self.batch_inputs(batch, rows_b, update, total, aug)
                        loss, metrics = self.objective(x)
                        if not torch.isfinite(loss).all():
                            raise FloatingPointError(f"{stage}: non-finite loss at update {update} (rows {list(batch.rows)[:8]})")
                        share = len(idx) / pairs   # so that the update's gradient is the mean over its pairs
                        (loss.mean() if share == 1 else loss.mean() * share).backward()
                        margin = self.objective.margin(x).detach()
                        window.append({"loss": loss.mean().item(), "margin": margin.mean().item(),
                                       "accuracy": (margin > 0).float().mean().item(), **metrics})
                    if world > 1:
                        sum_gradients(params)
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    update += 1
                    bar.update(1)
                    if window and (update % cfg.log_every == 0 or update == total):
                        now = time.perf_counter()
                        record = {k: sum(w[k] for w in window if k in w) / sum(k in w for w in window) for k in window[-1]}
                        record.update(update=update, epoch=epoch, lr=scheduler.get_last_lr()[0],
                                      seconds_per_update=(now - tick) / (update - logged))
                        tick, logged = now, update
                        history.records.append(record)
                        bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.2f}")
                        log.info("%s: update %d: %s", stage, update, record)
                        window = []
        bar.close()
        self.model.eval()
        return history


def update_groups(batches: list[list[int]], grad_accumulation: int) -> list[list[list[int]]]:
    """An epoch's batches in groups of ``grad_accumulation``, one group per optimizer update (the
    last group of an epoch may be shorter; its gradient is still the mean over its pairs)."""
    return [batches[lo:lo + grad_accumulation] for lo in range(0, len(batches), grad_accumulation)]


def _restrict(done: E.TokenisedRows, keep: list[int], n_rows: int) -> E.TokenisedRows:
    """Only the pairs of the input rows in ``keep`` (a row skipped in one encoding is skipped in both);
    the reasons it gives for its own skipped rows and its pairs that lost their prefix are kept."""
    at, kept = {row: i for i, row in enumerate(done.kept)}, set(keep)
    pairs = [done.pairs[at[r]] for r in keep]
    return E.TokenisedRows(pairs, list(keep), sum(p.truncated for p in pairs), sorted(set(range(n_rows)) - kept),
                           skipped_for=dict(done.skipped_for),
                           instruction_lost=[r for r in done.instruction_lost if r in kept])
