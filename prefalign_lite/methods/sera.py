"""SeRA, Algorithm 1 (Ko et al., "Self-Reviewing and Alignment"), on a Session.

t = 1: train on the whole offline set D with reference pi_SFT. t >= 2: score D with the implicit
reward margin (Eq. 5; the reward r_t from Eq. 7: log pi_{t-1}/pi_{t-2}, the gamma-ensemble from
t = 3), keep the top k; bootstrap R samples of pi_{t-1} per prompt into best-versus-worst pairs,
keep the top k~ by margin; train on the union with reference pi_{t-1}. Iterates are named 1..T and
pi_0 is the SFT model (adapters off). ``select=False, bootstrap=False`` is iterative DPO.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .. import objectives as O
from .. import plugins, selection
from .common import Session


@dataclass(frozen=True)
class SeraConfig:
    iterations: int = 3
    beta: float = 0.5
    keep_fraction: float = 0.7        # k = 0.7 N
    bootstrap_fraction: float = 0.3   # k~ = 0.3 N ("SeRA"); 2.0 for "best-SeRA"
    n_samples: int = 4                # R
    gamma: float = 0.3
    loss: str = "dpo"                 # dpo, ipo, slic, simpo
    select: bool = True
    bootstrap: bool = True


def iterate_names(iterations: int, offset: int = 0, first: int | None = None) -> dict:
    """pi_t as a Session iterate: pi_0 is the SFT model (None), pi_1 is ``first`` when it is shared
    with another variant, else ``offset + 1``; pi_t is ``offset + t``."""
    names = {t: offset + t for t in range(1, iterations + 1)}
    names[0] = names[-1] = None
    if first is not None:
        names[1] = first
    return names


def reward_logps(session: Session, t: int, rows: list[dict], gamma: float, names: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r_t(y_w), r_t(y_l))`` for plain rows, with r_t from SeRA Eq. 7."""
    w1, l1 = session.logps(names[t - 1], rows)
    w2, l2 = session.logps(names[t - 2], rows)
    w3, l3 = session.logps(names[t - 3], rows) if t >= 3 else (None, None)
    return O.sera_ensemble_reward(w1, w2, w3, gamma), O.sera_ensemble_reward(l1, l2, l3, gamma)


def bootstrap_rows(session: Session, t: int, prompts: list[str], cfg: SeraConfig, names: dict) -> tuple[list[dict], torch.Tensor]:
    """R samples of pi_{t-1} per prompt, scored by r_t; best against worst (ties dropped)."""
    samples = session.sample(names[t - 1], prompts, n_samples=cfg.n_samples, temperature=0.7,
                             seed=session.config.seed * 100 + t)
    # score every sample: pair them up two by two so that one batched pass scores both sides
    flat = [{"prompt": p, "chosen": s[i], "rejected": s[i + 1]} for p, s in zip(prompts, samples)
            for i in range(0, cfg.n_samples - 1, 2)]
    r_a, r_b = reward_logps(session, t, flat, cfg.gamma, names)
    scores = torch.stack([r_a, r_b], dim=1).reshape(len(prompts), -1)
    best, worst, margin = selection.extreme_pairs(scores)
    rows, margins = [], []
    for p, s, b, w, m in zip(prompts, samples, best.tolist(), worst.tolist(), margin.tolist()):
        if m > 0 and s[b] != s[w]:  # scores are in sample order (an odd last sample is not scored)
            rows.append({"prompt": p, "chosen": s[b], "rejected": s[w]})
            margins.append(m)
    return rows, torch.tensor(margins)


def objective_for(cfg: SeraConfig):
    return {"dpo": plugins.dpo, "ipo": plugins.ipo, "slic": plugins.slic, "simpo": plugins.simpo}[cfg.loss](cfg.beta)


def run_sera(session: Session, offline: list[dict], cfg: SeraConfig = SeraConfig(), offset: int = 0,
             shared_first: int | None = None) -> list[dict]:
    """One record per iteration: data sizes, share of wrong labels kept (rows may carry
    ``label_correct``), win rate against SFT, seconds. Iterate t is ``offset + t``; with
    ``shared_first`` iteration 1 (identical for every variant: DPO on all of D) is that iterate."""
    records, n = [], len(offline)
    names = iterate_names(cfg.iterations, offset, shared_first)
    for t in range(1, cfg.iterations + 1):
        start = time.perf_counter()
        data = offline
        if t >= 2 and cfg.select:
            r_w, r_l = reward_logps(session, t, offline, cfg.gamma, names)
            data = [offline[i] for i in selection.top_k(r_w - r_l, selection.count_of(cfg.keep_fraction, n)).tolist()]
        boot = []
        if t >= 2 and cfg.bootstrap:
            rows, margins = bootstrap_rows(session, t, list(dict.fromkeys(r["prompt"] for r in offline)), cfg, names)
            boot = [rows[i] for i in selection.top_k(margins, selection.count_of(cfg.bootstrap_fraction, n)).tolist()]
        if not (t == 1 and shared_first is not None):
            train_rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in data] + boot
            session.train(names[t], train_rows, objective_for(cfg), ref=names[t - 1], init_from=names[t - 1])
        wrong = [not r["label_correct"] for r in data if "label_correct" in r]
        records.append({"iteration": t, "offline_pairs": len(data), "bootstrapped_pairs": len(boot),
                        "wrong_labels_kept": sum(wrong) / max(len(wrong), 1), **session.evaluate(names[t]),
                        "seconds": time.perf_counter() - start})
    return records


def reward_length_r2(session: Session, t: int, rows: list[dict]) -> float:
    """SeRA Fig. 2: R^2 between the implicit reward log pi_t(y)/pi_SFT(y) of every response in
    ``rows`` and its length in words (a high value means the model learned length, not quality)."""
    w, l_ = session.logps(t, rows)
    w0, l0 = session.logps(None, rows)
    reward = torch.cat([w - w0, l_ - l0]).double()
    length = torch.tensor([len(r[k].split()) for k in ("chosen", "rejected") for r in rows], dtype=torch.float64)
    r = torch.corrcoef(torch.stack([reward, length]))[0, 1]
    return float(r * r)
