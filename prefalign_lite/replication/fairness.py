"""Is the world a fair test? Checks on the SFT model and plain DPO only, decided before any
SPA / SeRA / Sr-DPO / DRO result is looked at (the pipeline runs them as a stage of their own,
after the baselines and before every method). If a check fails, the world changes, never a method.

Per seed (the baselines stage, :func:`prefalign_lite.methods.baselines.sft_measurements` and the
baselines), on the held-out prompts (docs/protocol.md, section 4):

* ``perfect_share``: the share of the SFT model's answers the gold judge scores 1 (room to improve);
* ``quality_gain``: gold score of the SFT model asked with the quality instruction, minus without
  (Sr-DPO's Delta rests on the model following it);
* ``judge_accuracy``: the SFT model as LLM-as-judge on pairs of its own answers, ties excluded;
* the win rates against SFT of DPO on the 3.3% seed and on all gold labels.

Across seeds (the fairness-checks stage) each becomes one entry of ``fairness.json``:
``{"check", "value", "low", "high", "threshold", "passed"}`` with a 95% t-interval over seeds.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..core.files import write_json
from ..core.stats import seed_interval
from ..methods.experiments import Baselines, Checks

@dataclass(frozen=True)
class Threshold:
    """A check's threshold, stated once: its value must be at least ``at_least`` and at most
    ``at_most`` (where given), and its 95% interval must lie above ``interval_above`` (where given).
    ``signed`` writes the lower bound with its sign (a difference, not a share)."""

    at_least: float | None = None
    at_most: float | None = None
    interval_above: float | None = None
    signed: bool = False

    @property
    def text(self) -> str:
        if self.at_least is not None and self.at_most is not None:
            parts = [f"in [{self.at_least:.2f}, {self.at_most:.2f}]"]
        elif self.at_least is not None:
            parts = [f">= {self.at_least:+.2f}" if self.signed else f">= {self.at_least:.2f}"]
        elif self.at_most is not None:
            parts = [f"<= {self.at_most:.2f}"]
        else:
            parts = []
        if self.interval_above is not None:
            parts.append(f"interval above {self.interval_above:g}")
        return ", ".join(parts)

    def passes(self, entry: dict) -> bool:
        """Whether a check's ``value`` and ``low`` pass (a NaN bound, one seed, fails an interval test)."""
        value, low = entry["value"], entry["low"]
        return ((self.at_least is None or value >= self.at_least) and (self.at_most is None or value <= self.at_most)
                and (self.interval_above is None or low > self.interval_above))


CHECKS = {  # name: (what, threshold)
    "sft_perfect_share": ("share of SFT answers that are perfect", Threshold(at_most=0.35)),
    "dpo_all_gold_vs_sft": ("DPO on all gold minus SFT, win rate", Threshold(at_least=0.10, interval_above=0, signed=True)),
    "seed_dpo_below_all_gold": ("DPO on all gold minus DPO on the 3.3% seed, win rate", Threshold(interval_above=0)),
    "quality_instruction_gain": ("SFT gold score with the quality instruction minus without", Threshold(interval_above=0)),
    "sft_judge_accuracy": ("SFT as LLM-as-judge on its own answer pairs, ties excluded",
                           Threshold(at_least=0.55, at_most=0.80)),
    "label_sensitivity": ("DPO on on-policy pairs, gold labels minus random labels, win rate",
                          Threshold(at_least=0.04, interval_above=0, signed=True)),
    "offline_label_agreement": ("the off-policy set's labels against gold, ties excluded", Threshold(at_least=0.70, at_most=0.85)),
    "sr_dpo_precondition_ratio": ("after DPO's schedule: mean |Delta_pi| / mean |beta h| on the Sr-DPO pairs",
                                  Threshold(at_least=0.25)),
    "sr_dpo_precondition_corr": ("after DPO's schedule: corr(Delta_pi, gold gap) on the Sr-DPO pairs", Threshold(interval_above=0)),
}
SR_DPO_PRECONDITION = ("sr_dpo_precondition_ratio", "sr_dpo_precondition_corr")


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
    for name, (what, threshold) in CHECKS.items():
        if name not in values:
            continue
        cell = seed_interval(values[name])
        entry = {"check": name, "value": cell.mean, "low": cell.low, "high": cell.high, "threshold": threshold.text,
                 "what": what, "seeds": len(seeds)}
        entry["passed"] = threshold.passes(entry)
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
    from ..methods import baselines, splits
    from ..methods.session import Session, SessionConfig
    from ..settings import EmbeddedSetting

    session = Session(EmbeddedSetting(), config=SessionConfig(seed=seed, n_eval=n_eval, n_train=splits.spa_pool_size(n_prompts)))
    rows = splits.spa_data(session, n_prompts, all_gold=True).all_gold_rows
    grid = []
    for i, lr in enumerate(lrs):
        session.config = dataclasses.replace(session.config, training=dataclasses.replace(session.config.training, learning_rate=lr))
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
