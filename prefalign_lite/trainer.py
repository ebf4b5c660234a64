"""One preference trainer for every objective: a lean loop, the objective a plug-in.

Per step: one forward+backward of the policy over chosen and rejected stacked (2B rows), one
no-grad forward of the reference, the objective on the per-example log-probs. No separate
reference model is loaded: with LoRA iterates the reference is the same base with another (or no)
adapter. Logged: loss, reward margin, accuracy, share of pairs flagged as noise, learning rate.
"""
from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from . import logps as L

log = logging.getLogger(__name__)


@dataclass
class StepInputs:
    """What an objective sees for one batch (per-example tensors of shape ``(B,)``)."""

    pi_w: torch.Tensor
    pi_l: torch.Tensor
    ref_w: torch.Tensor
    ref_l: torch.Tensor
    len_w: torch.Tensor
    len_l: torch.Tensor
    step: int
    total_steps: int
    rows: list[dict]
    policy_logits: torch.Tensor | None = None
    ref_logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    augmented: tuple[torch.Tensor, ...] | None = None  # (pi_w, pi_l, ref_w, ref_l) given prefix + prompt


@dataclass
class Objective:
    """``loss(inputs) -> (per-example loss, {metric: float})``; ``needs_logits`` keeps the full
    logits of policy and reference for objectives that read them (SPA's extrapolation);
    ``augment_prefix`` adds no-grad log-probs of the completions given ``prefix + prompt`` under
    policy and reference (Sr-DPO's Delta)."""

    loss: Callable[[StepInputs], tuple[torch.Tensor, dict]]
    beta: float
    needs_logits: bool = False
    augment_prefix: str | None = None


@dataclass
class TrainConfig:
    learning_rate: float = 2e-4
    epochs: int = 1
    batch_size: int = 32
    grad_accumulation: int = 1
    warmup_fraction: float = 0.1
    max_length: int = 64
    max_grad_norm: float = 1.0
    seed: int = 0
    log_every: int = 10
    progress: bool = True


@dataclass
class History:
    records: list[dict] = field(default_factory=list)

    def last(self, key: str) -> float:
        return next(r[key] for r in reversed(self.records) if key in r)


def cosine_with_warmup(step: int, total: int, warmup_fraction: float) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup_fraction`` of the steps, then cosine to 0."""
    warm = max(1, int(round(warmup_fraction * total)))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


class PreferenceTrainer:
    """Train ``model`` (its trainable parameters) on rows ``{"prompt", "chosen", "rejected"}`` (plain
    strings) against ``reference`` — a context manager factory giving the reference model, e.g.
    ``lambda: iterates.use(t - 1)`` — with any :class:`Objective`."""

    def __init__(self, model, tokenizer, objective: Objective, reference: Callable, config: TrainConfig = TrainConfig(),
                 prefix: str | None = None):
        self.model, self.tokenizer, self.objective, self.reference = model, tokenizer, objective, reference
        self.config, self.prefix = config, prefix

    def batches(self, rows: list[dict], epoch: int) -> list[list[dict]]:
        order = list(range(len(rows)))
        random.Random(self.config.seed * 1000 + epoch).shuffle(order)
        size = self.config.batch_size
        return [[rows[i] for i in order[lo:lo + size]] for lo in range(0, len(order), size)]

    def encode(self, rows: list[dict]) -> L.PairBatch:
        return L.pair_batch(self.tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows],
                            [r["rejected"] for r in rows], prefix=self.prefix, max_length=self.config.max_length)

    def step_inputs(self, rows: list[dict], step: int, total: int) -> StepInputs:
        """Both forward passes for one batch (the policy's with gradients)."""
        batch = self.encode(rows).to(next(self.model.parameters()).device)
        keep = self.objective.needs_logits
        with self.reference() as ref_model:
            ref, _, ref_logits = L.forward_logps(ref_model, batch, keep_logits=keep)
        pi, lengths, logits = L.forward_logps(self.model, batch, keep_logits=keep)
        (pi_w, pi_l), (ref_w, ref_l), (len_w, len_l) = L.split_pairs(pi), L.split_pairs(ref), L.split_pairs(lengths)
        return StepInputs(pi_w, pi_l, ref_w, ref_l, len_w, len_l, step, total, rows,
                          policy_logits=logits, ref_logits=ref_logits, labels=batch.labels if keep else None,
                          augmented=self.augmented_logps(rows) if self.objective.augment_prefix else None)

    def augmented_logps(self, rows: list[dict]) -> tuple[torch.Tensor, ...]:
        """``(pi_w, pi_l, ref_w, ref_l)`` of the completions given ``augment_prefix + prompt``, no grad."""
        batch = L.pair_batch(self.tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows],
                             [r["rejected"] for r in rows], prefix=self.objective.augment_prefix,
                             max_length=self.config.max_length).to(next(self.model.parameters()).device)
        with torch.no_grad():
            pi = L.forward_logps(self.model, batch)[0]
        with self.reference() as ref_model:
            ref = L.forward_logps(ref_model, batch)[0]
        return (*L.split_pairs(pi), *L.split_pairs(ref))

    def train(self, rows: list[dict]) -> History:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (activate an adapter first)")
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
        per_epoch = math.ceil(len(rows) / cfg.batch_size)
        total = max(1, per_epoch * cfg.epochs // cfg.grad_accumulation)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, total, cfg.warmup_fraction))
        history, update, window = History(), 0, []
        self.model.train()
        bar = tqdm(total=total, desc="training", disable=not cfg.progress, leave=False)
        micro = 0
        for epoch in range(cfg.epochs):
            for rows_b in self.batches(rows, epoch):
                x = self.step_inputs(rows_b, update, total)
                loss, metrics = self.objective.loss(x)
                if not torch.isfinite(loss).all():
                    raise FloatingPointError(f"non-finite loss at update {update} (batch prompts: {[r['prompt'] for r in rows_b][:3]})")
                (loss.mean() / cfg.grad_accumulation).backward()
                margin = self.objective.beta * ((x.pi_w - x.ref_w) - (x.pi_l - x.ref_l)).detach()
                window.append({"loss": loss.mean().item(), "margin": margin.mean().item(),
                               "accuracy": (margin > 0).float().mean().item(), **metrics})
                micro += 1
                if micro % cfg.grad_accumulation:
                    continue
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                update += 1
                bar.update(1)
                if update % cfg.log_every == 0 or update == total:
                    record = {k: sum(w[k] for w in window if k in w) / sum(k in w for w in window)
                              for k in window[-1]}
                    record.update(update=update, epoch=epoch, lr=scheduler.get_last_lr()[0])
                    history.records.append(record)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.2f}")
                    log.info("update %d: %s", update, record)
                    window = []
        bar.close()
        self.model.eval()
        return history
