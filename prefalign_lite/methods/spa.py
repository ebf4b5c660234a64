"""SPA, Algorithm 1 (Kim et al., "Spread Preference Annotation"), on a Session.

pi_0 = DPO on the gold seed from pi_init (3 epochs). For t = 1..T on fresh prompts X_t:
sample two responses from pi_{t-1}; judge them with Eq. 7-8 (implicit reward of pi_{t-1} against
the judge reference, pi_init by default); train pi_t from pi_{t-1} with reference pi_{t-1} on the
refined loss Eq. 10 with de-coupled noise detection (Eq. 11-12, lambda_t = 1/2, 1/4, 1/8).

The ablations of SPA Tables 2, 6 and 7 are switches of ``SpaConfig``; variants can share one seed
iterate (``seed_iterate``) and live side by side as differently numbered adapters (``offset``).
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import evaluate, judges, plugins, world
from .. import objectives as O
from .common import Session

log = logging.getLogger(__name__)
JUDGES = ("implicit", "reward_model", "llm")


@dataclass(frozen=True)
class SpaConfig:
    beta: float = 0.5
    alpha: float = 0.1
    k: float = 0.1
    lams: tuple[float, ...] = (0.5, 0.25, 0.125)
    seed_epochs: int = 3
    refinement: bool = True          # ablation: False = data expansion only
    decoupled: bool = True           # ablation: False = flag with the policy itself (Eq. 9)
    judge: str = "implicit"          # Eq. 7-8 ("implicit"), a reward model fitted on the seed, the LLM asked
    judge_reference: str = "init"    # implicit judge against: "init" (SPA), "previous" (pi_{t-2}), "none"

    def __post_init__(self):
        if self.judge not in JUDGES:
            raise ValueError(f"judge must be one of {JUDGES}, got {self.judge!r}")
        judge_reference(1, self.judge_reference)


def judge_reference(t: int, how: str) -> int | None | str:
    """The iteration whose model is the reference of the implicit judge at iteration ``t``."""
    if how == "init":
        return None
    if how == "previous":
        return t - 2 if t >= 2 else None
    if how == "none":
        return "none"
    raise ValueError(f"judge_reference must be 'init', 'previous' or 'none', got {how!r}")


def self_annotate(session: Session, t: int, tasks: list[world.Task], cfg: SpaConfig, names: dict,
                  reward_judge=None) -> list[dict]:
    """Two samples of pi_{t-1} per prompt, labelled by the configured judge. ``names`` maps an
    iteration to its Session iterate (``None`` = pi_init)."""
    samples = session.sample(names[t - 1], [x.prompt for x in tasks], n_samples=2, seed=session.config.seed * 100 + t)
    keep = [(x, a, b) for x, (a, b) in zip(tasks, samples) if a != b]
    prompts, first, second = [x.prompt for x, _, _ in keep], [a for _, a, _ in keep], [b for _, _, b in keep]
    if cfg.judge == "reward_model":
        first_wins = judges.reward_model_prefers_first(reward_judge, prompts, first, second)
    elif cfg.judge == "llm":
        with session.model_for(names[t - 1]) as m:
            first_wins = judges.llm_prefers_first(m, session.tokenizer, prompts, first, second)
    else:
        rows = [{"prompt": p, "chosen": a, "rejected": b} for p, a, b in zip(prompts, first, second)]
        pi_1, pi_2 = session.logps(names[t - 1], rows)
        ref = judge_reference(t, cfg.judge_reference)
        init_1, init_2 = (torch.zeros_like(pi_1), torch.zeros_like(pi_2)) if ref == "none" else session.logps(names.get(ref), rows)
        first_wins = O.spa_label(O.spa_preference(pi_1, pi_2, init_1, init_2, cfg.beta)).tolist()
    labelled = []
    for (task, a, b), win in zip(keep, first_wins):
        chosen, rejected = (a, b) if win else (b, a)
        labelled.append({"prompt": task.prompt, "chosen": chosen, "rejected": rejected,
                         "label_correct": world.gold_reward(task, chosen) >= world.gold_reward(task, rejected)})
    return labelled


def iteration(session: Session, t: int, tasks: list[world.Task], cfg: SpaConfig, names: dict, reward_judge=None) -> dict:
    """One SPA iteration: annotate with pi_{t-1}, train ``names[t]`` from it (reference pi_{t-1})."""
    start = time.perf_counter()
    rows = self_annotate(session, t, tasks, cfg, names, reward_judge)
    lam = cfg.lams[min(t - 1, len(cfg.lams) - 1)]
    objective = (plugins.spa_refined(cfg.beta, cfg.alpha, cfg.k, lam, decoupled=cfg.decoupled)
                 if cfg.refinement else plugins.dpo(cfg.beta))
    history = session.train(names[t], rows, objective, ref=names[t - 1], init_from=names[t - 1])
    record = {"iteration": t, "pairs": len(rows),
              "label_accuracy": sum(r["label_correct"] for r in rows) / max(len(rows), 1),
              "noise_share": history.last("noise_share") if cfg.refinement else 0.0,
              **session.evaluate(names[t]), "seconds": time.perf_counter() - start}
    log.info("SPA iteration %d: %s", t, record)
    return record


def fit_reward_judge(session: Session, seed_rows: list[dict], folder: Path | None = None):
    """The PairRM analogue: a reward model fitted on the gold seed, read back by path."""
    folder = Path(folder or tempfile.mkdtemp(prefix="prefalign-rm-"))
    path = judges.train_reward_model(session.sft_path, seed_rows, folder / "reward_model", seed=session.config.seed)
    return evaluate.RewardModelJudge(path, batch_size=64)


def run_spa(session: Session, seed_rows: list[dict], prompt_sets: list[list[world.Task]], cfg: SpaConfig = SpaConfig(),
            seed_iterate: int | None = None, offset: int = 0, reward_judge=None) -> list[dict]:
    """One record per iteration (0 = DPO on the seed): win rate against SFT and timings.

    Iteration t >= 1 is the Session iterate ``offset + t``. With ``seed_iterate`` the seed DPO
    model is that (already trained) iterate and is not trained again."""
    names = {t: offset + t for t in range(1, len(prompt_sets) + 1)}
    start = time.perf_counter()
    if seed_iterate is None:
        names[0] = offset
        session.train(offset, seed_rows, plugins.dpo(cfg.beta), ref=None, init_from=None, epochs=cfg.seed_epochs)
    else:
        names[0] = seed_iterate
    records = [{"iteration": 0, "pairs": len(seed_rows), **session.evaluate(names[0]), "seconds": time.perf_counter() - start}]
    if cfg.judge == "reward_model" and reward_judge is None:
        reward_judge = fit_reward_judge(session, seed_rows)
    for t, tasks in enumerate(prompt_sets, start=1):
        records.append(iteration(session, t, tasks, cfg, names, reward_judge))
    return records
