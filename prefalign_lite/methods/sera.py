"""SeRA, Algorithm 1 (Ko et al., "Self-Reviewing and Alignment"), on a Session.

t = 1: train on the whole offline set D with reference pi_SFT. t >= 2: score D with the implicit
reward margin (Eq. 5; the reward r_t from Eq. 7: log pi_{t-1}/pi_{t-2}, the gamma-ensemble from
t = 3), keep the top k; bootstrap R samples of pi_{t-1} per prompt into best-versus-worst pairs,
keep the top k~ by margin; train on the union with reference pi_{t-1}. Iterates are named 1..T and
pi_0 is the SFT model (adapters off). ``select=False, bootstrap=False`` is iterative DPO.

"best-SeRA" asks for k~ = 2N bootstrapped pairs, more than one per prompt. The paper does not say
how they are formed; here every prompt first gives its best-versus-worst pair, and the remaining
budget is filled with the next pairs among its R samples (ranked by their reward gap).
"""
from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import objectives as O
from ..core import selection
from ..engine import losses
from .session import SFT, Session, plain


@dataclass(frozen=True)
class SeraConfig:
    """SeRA's Algorithm 1 (App. C.2's TinyLlama settings) and its ablations."""

    iterations: int = 3               # T: rounds, the first on the whole offline set
    beta: float = 0.2                 # SeRA App. C.2, TinyLlama: 0.2 for DPO and SLiC-HF, 1.0 for IPO
    keep_fraction: float = 0.7        # k = 0.7 N: offline pairs kept by the implicit reward margin (Eq. 5)
    bootstrap_fraction: float = 0.3   # k~ = 0.3 N bootstrapped pairs ("SeRA"); 2.0 for "best-SeRA"
    n_samples: int = 4                # R: samples of pi_{t-1} per prompt the bootstrapped pairs are formed from
    gamma: float = 0.3                # Eq. 7: weight of the older iterate in the ensemble reward (from t = 3)
    loss: str = "dpo"                 # the round's loss from the engine's registry: dpo, ipo, slic, simpo
    select: bool = True               # rounds >= 2 keep the top k offline pairs (False: all of them)
    bootstrap: bool = True            # rounds >= 2 add bootstrapped pairs (False with select=False: iterative DPO)
    random_labels: bool = False       # the control: a fair coin instead of the implicit reward (selection
                                      # keeps a random k, each bootstrapped pair is two samples in random order)


def iterate_names(session: Session, iterations: int, first: int | None = None) -> dict:
    """pi_t as a Session iterate: pi_0 is the SFT model (``SFT``), pi_1 is ``first`` when it is
    shared with another variant, every other pi_t a fresh iterate."""
    names = {t: session.fresh() for t in range(2 if first is not None else 1, iterations + 1)}
    names[0] = names[-1] = SFT
    if first is not None:
        names[1] = first
    return names


@dataclass
class SeraRun:
    """A run of SeRA's Algorithm 1: one record per iteration, and the iterate each trained."""

    records: list[dict]
    names: dict


def reward_logps(session: Session, t: int, rows: list[dict], gamma: float, names: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r_t(y_w), r_t(y_l))`` for plain rows, with r_t from SeRA Eq. 7."""
    w1, l1 = session.logps(names[t - 1], rows)
    w2, l2 = session.logps(names[t - 2], rows)
    w3, l3 = session.logps(names[t - 3], rows) if t >= 3 else (None, None)
    return O.sera_ensemble_reward(w1, w2, w3, gamma), O.sera_ensemble_reward(l1, l2, l3, gamma)


def random_bootstrap_rows(texts: list[list[str]], prompts: list[str], budget: int, coin: random.Random) -> list[dict]:
    """The control's bootstrapped pairs: for prompts in random order, two distinct samples in
    random order, until ``budget`` pairs (one per prompt at most)."""
    order = [i for i in range(len(prompts)) if len(texts[i]) >= 2]
    coin.shuffle(order)
    return [dict(zip(("chosen", "rejected"), coin.sample(texts[i], 2)), prompt=prompts[i]) for i in order[:budget]]


def bootstrap_rows(session: Session, t: int, prompts: list[str], cfg: SeraConfig, names: dict, budget: int,
                   stage: str) -> list[dict]:
    """R samples of pi_{t-1} per prompt (temperature 0.7, top-p 0.95), each scored by r_t; per
    prompt the best against the worst, then (for budgets over one pair a prompt) the next pairs;
    the ``budget`` pairs with the largest reward gap. Pairs of identical texts or equal rewards
    are never formed."""
    samples = session.sample(names[t - 1], prompts, n_samples=cfg.n_samples, temperature=0.7,
                             seed=session.seed_of("pair samples", t))
    texts = [list(dict.fromkeys(s)) for s in samples]   # distinct answers per prompt (SeRA: "distinct")
    if cfg.random_labels:
        rows = random_bootstrap_rows(texts, prompts, budget, random.Random(session.seed_of("coin", t)))
        if not rows:
            raise ValueError(f"{stage}: every prompt's {cfg.n_samples} samples were identical; nothing to bootstrap")
        return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]
    flat = [{"prompt": p, "chosen": y, "rejected": y} for p, ys in zip(prompts, texts) for y in ys]
    if not flat:
        raise ValueError(f"{stage}: no samples to bootstrap from")
    reward = reward_logps(session, t, flat, cfg.gamma, names)[0].tolist()
    first_choice, more, i = [], [], 0
    for p, ys in zip(prompts, texts):
        r = reward[i:i + len(ys)]
        i += len(ys)
        ranked = sorted(((r[a] - r[b], a, b) for a, b in itertools.permutations(range(len(ys)), 2) if r[a] > r[b]),
                        reverse=True)
        if ranked:
            chosen, rejected, gap = selection.extreme_pairs(torch.tensor([r], dtype=torch.float64))
            best = int(chosen[0]), int(rejected[0])
            first_choice.append((float(gap[0]), p, ys[best[0]], ys[best[1]]))
            more += [(m, p, ys[a], ys[b]) for m, a, b in ranked if (a, b) != best]
    if not first_choice:
        raise ValueError(f"{stage}: every prompt's {cfg.n_samples} samples were identical or equally rewarded; "
                         "nothing to bootstrap")
    order = sorted(first_choice, key=lambda x: -x[0]) + sorted(more, key=lambda x: -x[0])
    return [{"prompt": p, "chosen": c, "rejected": r} for _, p, c, r in order[:budget]]


def objective_for(cfg: SeraConfig) -> losses.TrainingLoss:
    """The loss of every SeRA round: ``cfg.loss`` from the engine's registry at ``cfg.beta``."""
    return losses.make(cfg.loss, beta=cfg.beta)


def run_sera(session: Session, offline: list[dict], cfg: SeraConfig = SeraConfig(), shared_first: int | None = None,
             stage: str = "SeRA") -> SeraRun:
    """One record per iteration: data sizes, label accuracy (ties excluded) of the offline pairs kept
    and of the bootstrapped pairs, win rate against SFT, KL, seconds. With ``shared_first``
    iteration 1 (identical for every variant: DPO on all of D) is that iterate."""
    if not offline:
        raise ValueError(f"{stage}: the offline set is empty")
    records, n = [], len(offline)
    names = iterate_names(session, cfg.iterations, shared_first)
    prompts = list(dict.fromkeys(r["prompt"] for r in offline))
    for t in range(1, cfg.iterations + 1):
        start, where = time.perf_counter(), f"{stage} round {t}"
        data = offline
        if t >= 2 and cfg.select and cfg.random_labels:
            data = random.Random(session.seed_of("selection coin", t)).sample(offline, selection.count_of(cfg.keep_fraction, n))
        elif t >= 2 and cfg.select:
            r_w, r_l = reward_logps(session, t, offline, cfg.gamma, names)
            data = [offline[i] for i in selection.top_k(r_w - r_l, selection.count_of(cfg.keep_fraction, n)).tolist()]
        boot = []
        if t >= 2 and cfg.bootstrap:
            boot = bootstrap_rows(session, t, prompts, cfg, names, selection.count_of(cfg.bootstrap_fraction, n), where)
        record = {"iteration": t, "offline_pairs": len(data), "bootstrapped_pairs": len(boot),
                  **{f"offline_{k}": v for k, v in session.label_quality(data).items() if k != "pairs"}}
        if boot:
            record.update({f"bootstrap_{k}": v for k, v in session.label_quality(boot).items() if k != "pairs"})
        if not (t == 1 and shared_first is not None):
            session.train(names[t], plain(data) + boot, objective_for(cfg), ref=names[t - 1], init_from=names[t - 1],
                          stage=where)
        record.update(session.evaluate(names[t], previous=names[t - 1], label=where).record,
                      seconds=time.perf_counter() - start)
        records.append(record)
    return SeraRun(records, names)


def reward_r2(session: Session, t: int, rows: list[dict]) -> dict:
    """SeRA Fig. 2: over the **chosen** answers of ``rows``, the R^2 of the implicit reward
    ``log pi_t(y_w) - log pi_SFT(y_w)`` with the answer's length in words, and with its gold score
    (SeRA plots the GPT-4 score; a high length R^2 means the model learned length, not quality)."""
    w, _ = session.logps(t, rows)
    w0, _ = session.logps(SFT, rows)
    reward = (w - w0).double().numpy()
    length = np.array([len(r["chosen"].split()) for r in rows], dtype=float)
    gold = session.score([r["prompt"] for r in rows], [r["chosen"] for r in rows])
    return {"length": _r2(reward, length), "gold": _r2(reward, gold)}


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    if np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)
