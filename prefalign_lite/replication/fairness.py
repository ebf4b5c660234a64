"""Is the world a fair test? Checks on the SFT model and plain DPO only, decided before any
SPA / SeRA / Sr-DPO / DRO result is looked at (the pipeline runs them as a stage of their own,
after the baselines and before every method). If a check fails, the world changes, never a method.

Per seed (the baselines stage), on the held-out prompts (docs/protocol.md, section 4):

* ``perfect_share``: the share of the SFT model's answers the gold judge scores 1 (room to improve);
* ``quality_gain``: gold score of the SFT model asked with the quality instruction, minus without
  (Sr-DPO's Delta rests on the model following it);
* ``judge_accuracy``: the SFT model as LLM-as-judge on pairs of its own answers, ties excluded;
* the win rates against SFT of DPO on the 3.3% seed and on all gold labels.

Across seeds (the fairness-checks stage) each becomes one entry of ``fairness.json``:
``{"check", "value", "low", "high", "threshold", "passed"}`` with a 95% t-interval over seeds.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.files import write_json
from ..core.stats import seed_interval
from ..methods import judges
from ..methods.experiments import Baselines, Checks
from ..methods.session import SFT

CHECKS = {  # name: (what, threshold, how the value passes)
    "sft_perfect_share": ("share of SFT answers that are perfect", "<= 0.35", lambda c: c["value"] <= 0.35),
    "dpo_all_gold_vs_sft": ("DPO on all gold minus SFT, win rate", ">= +0.10, interval above 0",
                            lambda c: c["value"] >= 0.10 and c["low"] > 0),
    "seed_dpo_below_all_gold": ("DPO on all gold minus DPO on the 3.3% seed, win rate", "interval above 0",
                                lambda c: c["low"] > 0),
    "quality_instruction_gain": ("SFT gold score with the quality instruction minus without", "interval above 0",
                                 lambda c: c["low"] > 0),
    "sft_judge_accuracy": ("SFT as LLM-as-judge on its own answer pairs, ties excluded", "in [0.55, 0.80]",
                           lambda c: 0.55 <= c["value"] <= 0.80),
    "label_sensitivity": ("DPO on on-policy pairs, gold labels minus random labels, win rate", ">= +0.04, interval above 0",
                          lambda c: c["value"] >= 0.04 and c["low"] > 0),
    "offline_label_agreement": ("the off-policy set's labels against gold, ties excluded", "in [0.70, 0.85]",
                                lambda c: 0.70 <= c["value"] <= 0.85),
    "sr_dpo_precondition_ratio": ("after DPO's schedule: mean |Delta_pi| / mean |beta h| on the Sr-DPO pairs", ">= 0.25",
                                  lambda c: c["value"] >= 0.25),
    "sr_dpo_precondition_corr": ("after DPO's schedule: corr(Delta_pi, gold gap) on the Sr-DPO pairs", "interval above 0",
                                 lambda c: c["low"] > 0),
}
SR_DPO_PRECONDITION = ("sr_dpo_precondition_ratio", "sr_dpo_precondition_corr")


def sft_measurements(session, seed: int = 0) -> dict:
    """The SFT-side numbers of one seed (see the module doc)."""
    prompts = session.eval_prompts
    quality = [f"{session.setting.quality_prompt} {p}" for p in prompts]
    with_instruction = [r[0] for r in session.sample(None, quality, temperature=session.config.eval_temperature,
                                                     seed=session.config.seed + 1)]
    gain = session.score(prompts, with_instruction) - session.sft_scores
    pairs = session.sample(None, prompts, n_samples=2, seed=session.config.seed + 3)
    rows = [{"prompt": p, "chosen": a, "rejected": b} for p, (a, b) in zip(prompts, pairs) if a != b]
    with session.model_for(SFT) as m:
        first = judges.llm_prefers_first(m, session.tokenizer, session.setting, rows, session.max_length)
    judged = [r if f else {"prompt": r["prompt"], "chosen": r["rejected"], "rejected": r["chosen"]} for r, f in zip(rows, first)]
    quality_of = session.label_quality(judged)
    return {"perfect_share": float(np.mean(session.sft_scores >= 1.0)), "sft_gold": float(session.sft_scores.mean()),
            "gold_with_instruction": float(np.mean(session.score(prompts, with_instruction))),
            "quality_gain": float(gain.mean()), "judge_accuracy": quality_of["label_accuracy"],
            "judge_pair_ties": quality_of["tie_share"], "judge_pairs": len(rows)}


def checks(per_seed: dict[int, dict]) -> list[dict]:
    """The checks from the baselines stage's metrics of every seed (``{seed: metrics}``); a check
    whose measurement the run does not hold is left out."""
    if not per_seed:
        raise ValueError("fairness: the run holds no baseline stage for any seed")
    seeds = sorted(per_seed)
    runs = [per_seed[s] for s in seeds]
    sft = [m[Baselines.sft] for m in runs]
    all_gold = [m[Baselines.all_gold]["win_rate"] for m in runs]
    seed_dpo = [m[Baselines.seed_dpo]["win_rate"] for m in runs]
    values = {"sft_perfect_share": [m["perfect_share"] for m in sft],
              "dpo_all_gold_vs_sft": [w - 0.5 for w in all_gold],
              "seed_dpo_below_all_gold": [a - b for a, b in zip(all_gold, seed_dpo)],
              "quality_instruction_gain": [m["quality_gain"] for m in sft],
              "sft_judge_accuracy": [m["judge_accuracy"] for m in sft]}
    if all(Checks.label_sensitivity in m for m in runs):
        values["label_sensitivity"] = [m[Checks.label_sensitivity]["difference"] for m in runs]
    if all(Checks.offline_agreement in m for m in runs):
        values["offline_label_agreement"] = [m[Checks.offline_agreement]["label_accuracy"] for m in runs]
    if all(Checks.sr_precondition in m for m in runs):
        room = [m[Checks.sr_precondition] for m in runs]
        values["sr_dpo_precondition_ratio"] = [r["delta_abs_mean"] / r["beta_h_abs_mean"] for r in room]
        values["sr_dpo_precondition_corr"] = [r["corr_delta_gold"] for r in room]
    out = []
    for name, (what, threshold, passes) in CHECKS.items():
        if name not in values:
            continue
        cell = seed_interval(values[name])
        entry = {"check": name, "value": cell.mean, "low": cell.low, "high": cell.high, "threshold": threshold, "what": what,
                 "seeds": len(seeds)}
        entry["passed"] = bool(passes(entry))  # a NaN bound (one seed) fails every interval test
        out.append(entry)
    return out


def jsonable(entries: list[dict]) -> list[dict]:
    """The checks with NaN bounds (one seed: no interval) as ``None``, as JSON allows."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in e.items()} for e in entries]


def write(path: str | Path, entries: list[dict]) -> Path:
    """``fairness.json`` (written whole, then renamed); NaN bounds (one seed) become ``null``."""
    return write_json(path, jsonable(entries))


def table(entries: list[dict]) -> str:
    """The checks as a markdown table."""
    fmt = lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3f}" if abs(v) < 1 else f"{v:.3f}"  # noqa: E731
    lines = ["| check | value [95% interval over seeds] | threshold | passed |", "|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['check']} ({e['what']}) | {fmt(e['value'])} [{fmt(e['low'])}, {fmt(e['high'])}] | "
                     f"{e['threshold']} | {'yes' if e['passed'] else '**no**'} |")
    return "\n".join(lines)


LEARNING_RATES = (2.5e-5, 5e-5, 1e-4, 1.4e-4, 2e-4)
KL_BUDGET = 0.5   # nats per answer: how far one round of DPO may move the model from where it started


def choose_learning_rate(grid: list[dict]) -> float:
    """The largest rate whose DPO on all gold stays within ``KL_BUDGET`` of the SFT model while it
    still gains (win-rate interval above 0.5). Rates beyond it buy little win rate for a KL several
    times larger, and self-labelling loops amplify what one round moves."""
    fit = [g for g in grid if g["kl_init"] <= KL_BUDGET and g["win_low"] > 0.5]
    if not fit:
        raise ValueError(f"learning-rate grid: no rate gains within a KL of {KL_BUDGET}: {grid}")
    return max(g["learning_rate"] for g in fit)


def learning_rate_grid(lrs=LEARNING_RATES, seed: int = 0, n_prompts: int = 6000, n_eval: int = 500) -> dict:
    """How the learning rate was chosen (before any method ran): DPO on all gold labels (one epoch,
    beta 0.1) at each rate on one seed, its win rate against SFT and its KL to the SFT model; the
    kit's rate is ``choose_learning_rate`` of that grid."""
    import dataclasses

    from ..methods import baselines, splits
    from ..methods.session import Session, SessionConfig
    from ..settings import EmbeddedSetting

    session = Session(EmbeddedSetting(), config=SessionConfig(seed=seed, n_eval=n_eval, n_train=splits.spa_pool_size(n_prompts)))
    rows = splits.spa_data(session, n_prompts, all_gold=True).all_gold_rows
    grid = []
    for i, lr in enumerate(lrs):
        session.config = dataclasses.replace(session.config, learning_rate=lr)
        r = baselines.dpo_baseline(session, rows, name=i, stage=f"DPO on all gold, lr {lr:g}")
        grid.append({"learning_rate": lr, "win_rate": r["win_rate"], "win_low": r["win_low"], "win_high": r["win_high"],
                     "kl_init": r["kl_init"], "pairs": r["pairs"]})
    return {"seed": seed, "grid": grid, "kl_budget": KL_BUDGET, "chosen": choose_learning_rate(grid)}


SR_LAMBDAS = (0.1, 0.3, 0.5, 1.0)   # Sr-DPO's grid (Yu et al., Sec. 4.1)


def choose_sr_lambda(grid: list[dict]) -> float:
    """The lambda of the grid with the highest validation win rate (the smaller one on a tie)."""
    if not grid:
        raise ValueError("Sr-DPO lambda grid: no entries")
    return max(grid, key=lambda g: (g["win_rate"], -g["lam"]))["lam"]


def sr_lambda_grid(lams=SR_LAMBDAS, seed: int = 0, n_offline: int = 3000, n_validation: int = 500, beta: float = 0.1) -> dict:
    """How Sr-DPO's lambda was chosen (protocol §4): Sr-DPO at each lambda of the paper's grid on
    the offline set, its win rate against SFT on ``n_validation`` validation prompts drawn from the
    training pool after the offline set's (never the evaluation prompts), one seed."""
    from ..methods import splits, sr_dpo
    from ..methods.session import Session, SessionConfig
    from ..settings import EmbeddedSetting

    session = Session(EmbeddedSetting(), config=SessionConfig(seed=seed, n_eval=n_validation, n_train=n_offline + n_validation))
    offline = splits.offline_set(session, n_offline)
    session.use_prompts([r["prompt"] for r in session.pool.train[n_offline:n_offline + n_validation]])
    grid = []
    for lam in lams:
        record = sr_dpo.sr_dpo(session, offline, beta, lam, stage=f"Sr-DPO, lambda {lam}").record
        grid.append({"lam": lam, "win_rate": record["win_rate"], "win_low": record["win_low"],
                     "win_high": record["win_high"], "kl_init": record["kl_init"]})
    return {"seed": seed, "validation_prompts": n_validation, "offline_pairs": len(offline), "grid": grid,
            "chosen": choose_sr_lambda(grid)}
