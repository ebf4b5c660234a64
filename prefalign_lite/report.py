"""The replication report: the papers' tables as far as the toy world reproduces them, read from
a run's metrics (``results.load_runs``), each cell a mean and 95% interval over seeds, each claim
decided by a stated rule rather than by eye.

Rule: a claim "A beats B" is judged on the per-seed differences A - B (same seed, same data):
**reproduced** when the 95% t-interval of their mean lies above 0, **not reproduced** when it lies
below 0 (the opposite was measured), **inconclusive** when it contains 0. With one seed there is no
interval and every claim is inconclusive.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from scipy import stats

RULE = __doc__.split("Rule: ", 1)[1].strip()


@dataclass
class Cell:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def seed_interval(values: list[float], level: float = 0.95) -> Cell:
    """Mean and t-interval over seeds."""
    n = len(values)
    if n == 0:
        raise ValueError("no values: the run holds no seed for this cell")
    mean = sum(values) / n
    if n < 2:
        return Cell(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Cell(mean, mean - half, mean + half, n)


def verdict(a: list[float], b: list[float]) -> tuple[Cell, str]:
    """The claim "A beats B" on paired per-seed values."""
    if len(a) != len(b):
        raise ValueError(f"paired values needed, got {len(a)} and {len(b)} seeds")
    diff = seed_interval([x - y for x, y in zip(a, b)])
    if diff.n < 2:
        return diff, "inconclusive"
    return diff, "reproduced" if diff.low > 0 else "not reproduced" if diff.high < 0 else "inconclusive"


@dataclass
class Table:
    title: str
    rows: dict[str, list[float]]                  # label -> one value per seed
    claims: list[tuple[str, str, str]] = field(default_factory=list)   # (claim, row A, row B): "A beats B"
    metric: str = "gold win rate against SFT"

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", f"| | {self.metric} (mean [95% CI], {self.n} seeds) |", "|---|---|"]
        lines += [f"| {label} | {seed_interval(v)} |" for label, v in self.rows.items()]
        if self.claims:
            lines += ["", "| claim | difference A − B | verdict |", "|---|---|---|"]
            for claim, a, b in self.claims:
                diff, word = verdict(self.rows[a], self.rows[b])
                lines.append(f"| {claim} | {diff} | **{word}** |")
        return "\n".join(lines)

    @property
    def n(self) -> int:
        return min(len(v) for v in self.rows.values())

    def verdicts(self) -> list[tuple[str, str]]:
        return [(claim, verdict(self.rows[a], self.rows[b])[1]) for claim, a, b in self.claims]


def _per_seed(stage: dict[int, dict], pick) -> list[float]:
    return [float(pick(stage[s])) for s in sorted(stage)]


def tables(runs: dict[str, dict[int, dict]]) -> list[Table]:
    """Every table whose stages are in ``runs`` (stage -> seed -> metrics)."""
    out = []
    seeds_of = {name: sorted(stage) for name, stage in runs.items()}
    if "11_dpo_baselines" in runs and "12_spa" in runs and seeds_of["11_dpo_baselines"] == seeds_of["12_spa"]:
        b, s = runs["11_dpo_baselines"], runs["12_spa"]
        out.append(Table("SPA Table 1: self-annotation from a 3.3% gold seed", {
            "SFT": [0.5] * len(b),
            "DPO on the seed": _per_seed(b, lambda m: m["seed_dpo"]["win_rate"]),
            "SPA (3 rounds)": _per_seed(s, lambda m: m["spa"][-1]["win_rate"]),
            "DPO on all gold": _per_seed(b, lambda m: m["all_gold_dpo"]["win_rate"])},
            [("SPA beats DPO on the seed", "SPA (3 rounds)", "DPO on the seed"),
             ("SPA beats DPO on all gold (SPA vs Zephyr)", "SPA (3 rounds)", "DPO on all gold"),
             ("DPO on all gold beats the SFT model", "DPO on all gold", "SFT")]))
        rows = {}
        for fraction in s[min(s)]["by_fraction"]:
            rows[f"DPO, {float(fraction):.1%} seed"] = _per_seed(s, lambda m: m["by_fraction"][fraction][0]["win_rate"])
            rows[f"SPA, {float(fraction):.1%} seed"] = _per_seed(s, lambda m: m["by_fraction"][fraction][-1]["win_rate"])
        fractions = [f"{float(f):.1%}" for f in s[min(s)]["by_fraction"]]
        out.append(Table("SPA Table 3: size of the gold seed", rows,
                         [(f"SPA beats DPO with a {f} seed", f"SPA, {f} seed", f"DPO, {f} seed") for f in fractions]))
    if "16_spa_judges_and_ablations" in runs:
        v = runs["16_spa_judges_and_ablations"]
        last = lambda name: _per_seed(v, lambda m: m["variants"][name][-1]["win_rate"])  # noqa: E731
        out.append(Table("SPA Table 2: preference judges (3 rounds from the same seed model)", {
            "iterative DPO, reward model (PairRM analogue)": last("iterative DPO, reward model"),
            "iterative DPO, LLM-as-judge": last("iterative DPO, LLM-as-judge"),
            "SPA": last("SPA")},
            [("SPA beats the reward-model judge", "SPA", "iterative DPO, reward model (PairRM analogue)"),
             ("SPA beats LLM-as-judge", "SPA", "iterative DPO, LLM-as-judge")]))
        out.append(Table("SPA Table 6: ablation", {
            "DPO on the seed": _per_seed(v, lambda m: m["variants"]["SPA"][0]["win_rate"]),
            "DE": last("DE only"), "DE + SR": last("SR without DND"), "DE + SR + DND (SPA)": last("SPA")},
            [("data expansion beats DPO on the seed", "DE", "DPO on the seed"),
             ("self-refinement adds to data expansion", "DE + SR", "DE"),
             ("de-coupled detection adds to self-refinement", "DE + SR + DND (SPA)", "DE + SR")]))
        t7 = lambda name: _per_seed(v, lambda m: m["table7"][name]["win_rate"])  # noqa: E731
        out.append(Table("SPA Table 7: judge for round 2, from SPA after round 1 (plain DPO)", {
            name: t7(name) for name in v[min(v)]["table7"]},
            [("the SFT model is a better judge reference than the previous model", "Eq. 7 with the SFT model", "Eq. 7 with the previous model"),
             ("Eq. 7 beats the reward model", "Eq. 7 with the SFT model", "reward model"),
             ("Eq. 7 beats judging without a reference", "Eq. 7 with the SFT model", "no reference")]))
    if "13_sera" in runs:
        r = runs["13_sera"]
        final = lambda name: _per_seed(r, lambda m: m["table1"][name][-1]["win_rate"])  # noqa: E731
        out.append(Table("SeRA Table 1: offline set labelled by a length-biased rater", {
            name: final(name) for name in ("DPO", "iterative DPO", "SeRA", "best-SeRA")},
            [("SeRA beats DPO", "SeRA", "DPO"), ("SeRA beats iterative DPO", "SeRA", "iterative DPO"),
             ("best-SeRA beats iterative DPO", "best-SeRA", "iterative DPO")]))
        for flip in r[min(r)]["flipped"]:
            out.append(Table(f"SeRA Tables 7-8: {float(flip):.0%} of the labels flipped", {
                name: _per_seed(r, lambda m: m["flipped"][flip][name][-1]["win_rate"]) for name in ("iterative DPO", "SeRA")},
                [(f"SeRA beats iterative DPO with {float(flip):.0%} flipped", "SeRA", "iterative DPO")]))
        out.append(Table("SeRA Fig. 2: how much of the learned reward is length", {
            name: _per_seed(r, lambda m: -m["reward_length_r2"][name]) for name in ("DPO", "iterative DPO", "SeRA")},
            [("SeRA's reward depends less on length than iterative DPO's", "SeRA", "iterative DPO")],
            metric="minus R² of implicit reward with length (higher = less length)"))
    if "14_sr_dpo" in runs:
        q = runs["14_sr_dpo"]
        h = lambda key: _per_seed(q, lambda m: m["head_to_head"][key]["win"] + m["head_to_head"][key]["tie"] / 2)  # noqa: E731
        rows = {key: h(key) for key in q[min(q)]["head_to_head"]}
        rows["even"] = [0.5] * len(q)
        out.append(Table("Sr-DPO Tables 2 and 4: head to head (win + tie/2)", rows,
                         [("Sr-DPO beats DPO", "Sr-DPO vs DPO", "even"), ("Sr-IPO beats IPO", "Sr-IPO vs IPO", "even"),
                          ("Sr-DPO with another wording beats DPO", "Sr-DPO, 'answer good' vs DPO", "even"),
                          ("Sr-DPO with the instruction beats Δ_naive (both against DPO)", "Sr-DPO vs DPO", "Sr-DPO, Δ_naive vs DPO")],
                         metric="head-to-head win rate"))
    if "15_dro_dpo" in runs:
        d = runs["15_dro_dpo"]
        rows = {}
        for flip in d[min(d)]["by_flip"]:
            for m in ("DPO", "DRO-DPO"):
                rows[f"{m}, {float(flip):.0%} flipped"] = _per_seed(d, lambda x: x["by_flip"][flip][m]["win_rate"])
        out.append(Table("DRO-DPO (thesis) against DPO under flipped labels", rows,
                         [(f"DRO-DPO beats DPO with {float(f):.0%} flipped", f"DRO-DPO, {float(f):.0%} flipped", f"DPO, {float(f):.0%} flipped")
                          for f in d[min(d)]["by_flip"]]))
    return out
