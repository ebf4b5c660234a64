"""SPA, Algorithm 1 (Kim et al., "Spread Preference Annotation"), on a Session.

pi_0 = DPO on the gold seed from pi_init (3 epochs). For t = 1..T on fresh prompts X_t:
sample two responses from pi_{t-1}; judge them with Eq. 7-8 (implicit reward of pi_{t-1} against
the judge reference, pi_init by default); train pi_t from pi_{t-1} with reference pi_{t-1} on the
refined loss Eq. 10 with de-coupled noise detection (Eq. 11-12, lambda_t = 1/2, 1/4, 1/8).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from .. import objectives as O
from .. import plugins, world
from .common import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpaConfig:
    beta: float = 0.5
    alpha: float = 0.1
    k: float = 0.1
    lams: tuple[float, ...] = (0.5, 0.25, 0.125)
    seed_epochs: int = 3
    refinement: bool = True          # ablation: False = data expansion only
    decoupled: bool = True           # ablation: False = flag with the policy itself (Eq. 9)
    judge_reference: str = "init"    # "init" (SPA), "previous" (pi_{t-2}), "none" (no reference)


def judge_reference(t: int, how: str) -> int | None | str:
    if how == "init":
        return None
    if how == "previous":
        return t - 2 if t >= 2 else None
    if how == "none":
        return "none"
    raise ValueError(f"judge_reference must be 'init', 'previous' or 'none', got {how!r}")


def self_annotate(session: Session, t: int, tasks: list[world.Task], cfg: SpaConfig) -> list[dict]:
    """Eq. 7-8: two samples of pi_{t-1} per prompt, labelled by its implicit reward."""
    samples = session.sample(t - 1, [x.prompt for x in tasks], n_samples=2, seed=session.config.seed * 100 + t)
    rows = [{"prompt": x.prompt, "chosen": a, "rejected": b, "task": x} for x, (a, b) in zip(tasks, samples) if a != b]
    pi_1, pi_2 = session.logps(t - 1, rows)
    ref = judge_reference(t, cfg.judge_reference)
    init_1, init_2 = (torch.zeros_like(pi_1), torch.zeros_like(pi_2)) if ref == "none" else session.logps(ref, rows)
    first_wins = O.spa_label(O.spa_preference(pi_1, pi_2, init_1, init_2, cfg.beta))
    labelled = []
    for row, keep in zip(rows, first_wins.tolist()):
        chosen, rejected = (row["chosen"], row["rejected"]) if keep else (row["rejected"], row["chosen"])
        labelled.append({"prompt": row["prompt"], "chosen": chosen, "rejected": rejected,
                         "label_correct": world.gold_reward(row["task"], chosen) >= world.gold_reward(row["task"], rejected)})
    return labelled


def run_spa(session: Session, seed_rows: list[dict], prompt_sets: list[list[world.Task]], cfg: SpaConfig = SpaConfig()) -> list[dict]:
    """Returns one record per iterate (0 = DPO on the seed): win rate against SFT and timings."""
    start = time.perf_counter()
    session.train(0, seed_rows, plugins.dpo(cfg.beta), ref=None, init_from=None, epochs=cfg.seed_epochs)
    records = [{"iteration": 0, "pairs": len(seed_rows), **session.evaluate(0), "seconds": time.perf_counter() - start}]
    for t, tasks in enumerate(prompt_sets, start=1):
        start = time.perf_counter()
        rows = self_annotate(session, t, tasks, cfg)
        lam = cfg.lams[min(t - 1, len(cfg.lams) - 1)]
        objective = (plugins.spa_refined(cfg.beta, cfg.alpha, cfg.k, lam, decoupled=cfg.decoupled)
                     if cfg.refinement else plugins.dpo(cfg.beta))
        history = session.train(t, rows, objective, ref=t - 1, init_from=t - 1)
        records.append({"iteration": t, "pairs": len(rows),
                        "label_accuracy": sum(r["label_correct"] for r in rows) / max(len(rows), 1),
                        "noise_share": history.last("noise_share") if cfg.refinement else 0.0,
                        **session.evaluate(t), "seconds": time.perf_counter() - start})
        log.info("SPA iteration %d: %s", t, records[-1])
    return records
