"""The floor every method stands on: sampling answer pairs, ordering them by a judge, and training
one iterate and evaluating it. The pair itself and label quality are in :mod:`prefalign_lite.core.pairs`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..core.pairs import Pair, ordered
from ..engine.losses import TrainingLoss
from .session import SFT, Evaluation, Session, plain

__all__ = ["Pair", "SampledPairs", "SinglePass", "ordered", "sample_pairs", "train_and_evaluate"]


@dataclass
class SampledPairs:
    """Two answers per prompt as pairs (``chosen`` the first, ``rejected`` the second, not yet
    judged), with how many prompts were sampled and how many pairs were dropped as identical."""

    pairs: list[Pair]
    n_prompts: int
    identical: int

    @property
    def identical_share(self) -> float:
        return self.identical / self.n_prompts


def sample_pairs(session: Session, iterate, prompts: list[str], seed: int, stage: str,
                 temperature: float | None = None) -> SampledPairs:
    """Two answers of ``iterate`` per prompt at the sampler's temperature (unless given), drawn with
    ``seed``; pairs of identical texts are dropped (their DPO gradient is exactly zero). Zero
    prompts, or every pair identical, is a ``ValueError`` naming the stage."""
    if not prompts:
        raise ValueError(f"{stage}: no prompts to sample pairs on")
    samples = session.sample(iterate, prompts, n_samples=2, temperature=temperature, seed=seed)
    pairs = [Pair(p, a, b) for p, (a, b) in zip(prompts, samples) if a != b]
    if not pairs:
        used = session.config.sample_temperature if temperature is None else temperature
        raise ValueError(f"{stage}: all {len(prompts):,} sampled pairs were identical "
                         f"(temperature {used}?); nothing to train on")
    return SampledPairs(pairs, len(prompts), len(prompts) - len(pairs))


@dataclass
class SinglePass:
    """One trained model: the numbers a notebook saves, its evaluation (for head-to-heads) and its
    iterate name."""

    record: dict
    evaluation: Evaluation
    name: int


def train_and_evaluate(session: Session, rows: list[dict], objective: TrainingLoss, name: int | None = None,
                       epochs: int = 1, stage: str = "single pass") -> SinglePass:
    """One iterate (``name``, a fresh one by default) trained on ``rows`` from pi_init with
    reference pi_init, and its evaluation against the SFT model."""
    start = time.perf_counter()
    name = session.fresh() if name is None else name
    history = session.train(name, plain(rows), objective, ref=SFT, init_from=None, epochs=epochs, stage=stage)
    evaluation = session.evaluate(name, label=stage)
    record = {"pairs": len(rows), "pairs_truncated": history.pairs_truncated, **evaluation.record,
              "final_margin": history.last("margin"), "seconds": time.perf_counter() - start}
    return SinglePass(record, evaluation, name)
