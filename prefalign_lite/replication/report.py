"""The replication report: which rows and claims make up each of the papers' tables, read from a
run's metrics (``results.load_runs``) through the registry of experiments, with the papers' own
figures beside ours. The papers judge with GPT-4 (AlpacaEval 2.0 LC / WR against GPT-4, MT-Bench
head to head); ours is the setting's gold judge against the SFT model, so only the direction of
each comparison can be compared, never the numbers.

No claim is counted twice: the 3.3% seed of SPA Table 3 is SPA Table 1's setting, shown as a row
but not tested again; "DPO on all gold beats SFT" is a fairness check, not a claim.
"""
from __future__ import annotations

from ..methods.experiments import Baselines, Dro, Sera, Spa, SpaJudges, SrDpo, versus
from .verdicts import Claim, Table, decide_all

AE = "AlpacaEval 2.0 LC / WR vs GPT-4, GPT-4 judge"
SPA_T1 = {"SFT": "7.58 / 4.72", "DPO on the seed": "9.03 / 7.68", "SPA (3 rounds)": "15.39 / 21.13",
          "DPO on all gold": "11.75 / 10.03 (Zephyr)"}
SPA_T3 = {"0.8%": ("7.85", "10.36"), "1.7%": ("7.68", "12.36"), "3.3%": ("9.03", "16.23"), "10.0%": ("11.37", "18.52")}


def _seeds(runs: dict, *stages: str) -> list[int]:
    common = None
    for s in stages:
        common = set(runs[s]) if common is None else common & set(runs[s])
    return sorted(common or [])


def _col(runs: dict, stage: str, seeds: list[int], pick) -> list[float]:
    return [float(pick(runs[stage][s])) for s in seeds]


def _passed(run: dict) -> bool:
    """Whether SPA's gate passed in one saved run ``{"rounds", "gate"}``."""
    return bool((run.get("gate") or {}).get("passed", False))


def _spa(runs: dict) -> list[Table]:
    out = []
    if Baselines.stage in runs and Spa.stage in runs:
        seeds = _seeds(runs, Baselines.stage, Spa.stage)
        b = lambda pick: _col(runs, Baselines.stage, seeds, pick)  # noqa: E731
        s = lambda pick: _col(runs, Spa.stage, seeds, pick)  # noqa: E731
        gate = [_passed(runs[Spa.stage][x][Spa.run]) for x in seeds]
        out.append(Table("SPA Table 1: self-annotation from a 3.3% gold seed", {
            "SFT": [0.5] * len(seeds), "DPO on the seed": b(lambda m: m[Baselines.seed_dpo]["win_rate"]),
            "SPA (3 rounds)": s(lambda m: m[Spa.run]["rounds"][-1]["win_rate"]),
            "DPO on all gold": b(lambda m: m[Baselines.all_gold]["win_rate"])}, seeds,
            [Claim("SPA beats DPO on the seed", "SPA (3 rounds)", "DPO on the seed", gate=gate),
             Claim("SPA beats DPO on all gold (SPA vs Zephyr)", "SPA (3 rounds)", "DPO on all gold", gate=gate)],
            paper={k: v + f" ({AE})" * (k == "SFT") for k, v in SPA_T1.items()}, gate=gate))
        fractions = runs[Spa.stage][seeds[0]][Spa.by_fraction]
        rows, paper, claims = {}, {}, []
        for f in sorted(list(fractions) + [Spa.paper_fraction], key=float):
            label = f"{float(f):.1%}"
            pick = (lambda m: m[Spa.run]) if f == Spa.paper_fraction else (lambda m, f=f: m[Spa.by_fraction][f])
            rows[f"DPO, {label} seed"] = s(lambda m, pick=pick: pick(m)["rounds"][0]["win_rate"])
            rows[f"SPA (2 rounds), {label} seed"] = s(lambda m, pick=pick: pick(m)["rounds"][2]["win_rate"])
            dpo_lc, spa_lc = SPA_T3.get(label, ("–", "–"))
            paper[f"DPO, {label} seed"], paper[f"SPA (2 rounds), {label} seed"] = f"LC {dpo_lc}", f"LC {spa_lc}"
            if f != Spa.paper_fraction:   # each seed size has its own gate
                claims.append(Claim(f"SPA beats DPO with a {label} seed", f"SPA (2 rounds), {label} seed", f"DPO, {label} seed",
                                    gate=[_passed(pick(runs[Spa.stage][x])) for x in seeds]))
        out.append(Table("SPA Table 3: size of the gold seed (2 rounds; 3.3% = Table 1's setting, not re-tested)",
                         rows, seeds, claims, paper=paper))
    if SpaJudges.stage in runs:
        J = SpaJudges
        seeds = _seeds(runs, J.stage)
        v = lambda pick: _col(runs, J.stage, seeds, pick)  # noqa: E731
        last = lambda name: v(lambda m: m[J.variants][name]["rounds"][-1]["win_rate"])  # noqa: E731
        gate = [_passed(runs[J.stage][x][J.variants][J.SPA]) for x in seeds]
        rm_row = "iterative DPO, reward model (PairRM analogue)"
        out.append(Table("SPA Table 2: preference judges (3 rounds from the same seed model)", {
            rm_row: last(J.REWARD_MODEL), J.LLM: last(J.LLM), "SPA": last(J.SPA)}, seeds,
            [Claim("SPA beats the reward-model judge", "SPA", rm_row, gate=gate),
             Claim("SPA beats LLM-as-judge", "SPA", J.LLM, gate=gate)],
            paper={rm_row: "11.87 / 9.46 (PairRM)", J.LLM: "9.28 / 9.18", "SPA": "15.39 / 21.13"}, gate=gate))
        out.append(Table("SPA Table 6: ablation (data expansion, self-refinement, de-coupled detection)", {
            "DPO on the seed": v(lambda m: m[J.variants][J.SPA]["rounds"][0]["win_rate"]),
            "DE": last(J.DE), "DE + SR": last(J.SR), "DE + SR + DND (SPA)": last(J.SPA)}, seeds,
            [Claim("data expansion beats DPO on the seed", "DE", "DPO on the seed", gate=gate),
             Claim("self-refinement adds to data expansion", "DE + SR", "DE", gate=gate),
             Claim("de-coupled detection adds to self-refinement", "DE + SR + DND (SPA)", "DE + SR", gate=gate)],
            paper={"DPO on the seed": "9.03 / 7.68", "DE": "14.41 / 19.91", "DE + SR": "14.70 / 19.94",
                   "DE + SR + DND (SPA)": "15.39 / 21.13"}, gate=gate))
        names = list(runs[J.stage][seeds[0]][J.table7])
        out.append(Table("SPA Table 7: the judge of round 2, from SPA after round 1 (plain DPO loss)", {
            n: v(lambda m, n=n: m[J.table7][n]["win_rate"]) for n in names}, seeds,
            [Claim("the SFT model is a better judge reference than the previous model", J.JUDGE_INIT,
                   J.JUDGE_PREVIOUS, gate=gate),
             Claim("Eq. 7 beats the reward model", J.JUDGE_INIT, J.JUDGE_REWARD_MODEL, gate=gate),
             Claim("Eq. 7 beats judging without a reference", J.JUDGE_INIT, J.JUDGE_NO_REFERENCE, gate=gate)],
            paper={J.AFTER_ROUND_1: "10.57 / 11.89", J.JUDGE_INIT: "15.08 / 19.56", J.JUDGE_PREVIOUS: "13.73 / 17.66",
                   J.JUDGE_REWARD_MODEL: "13.57 / 13.72", J.JUDGE_NO_REFERENCE: "12.83 / 12.35"}, gate=gate))
    return out


def _sera(runs: dict) -> list[Table]:
    if Sera.stage not in runs:
        return []
    seeds = _seeds(runs, Sera.stage)
    r = lambda pick: _col(runs, Sera.stage, seeds, pick)  # noqa: E731
    methods = (Sera.DPO, Sera.ITERATIVE, Sera.SERA, Sera.BEST)
    out = [Table("SeRA Table 1: off-policy offline set labelled by a noisy rater", {
        n: r(lambda m, n=n: m[Sera.table1][n][-1]["win_rate"]) for n in methods}, seeds,
        [Claim("SeRA beats DPO", Sera.SERA, Sera.DPO), Claim("SeRA beats iterative DPO", Sera.SERA, Sera.ITERATIVE),
         Claim("best-SeRA beats iterative DPO", Sera.BEST, Sera.ITERATIVE)],
        paper={Sera.DPO: "55.1", Sera.ITERATIVE: "64.5", Sera.SERA: "74.2", Sera.BEST: "70.0"})]
    out[0].metric += " (paper: AlpacaEval win rate vs SFT, TinyLlama)"
    paper_flip = {"0.2": ("57.0", "71.2"), "0.4": ("47.8", "66.1")}
    for flip in runs[Sera.stage][seeds[0]][Sera.flipped]:
        it, se = paper_flip.get(flip, ("–", "–"))
        out.append(Table(f"SeRA Tables 7-8: {float(flip):.0%} of the labels flipped", {
            n: r(lambda m, n=n: m[Sera.flipped][flip][n][-1]["win_rate"]) for n in (Sera.ITERATIVE, Sera.SERA)}, seeds,
            [Claim(f"SeRA beats iterative DPO with {float(flip):.0%} flipped", Sera.SERA, Sera.ITERATIVE)],
            paper={Sera.ITERATIVE: it, Sera.SERA: se}))
    out.append(Table("SeRA Fig. 2: how much of the learned reward is length", {
        n: r(lambda m, n=n: -m[Sera.reward_r2][n]["length"]) for n in (Sera.ITERATIVE, Sera.SERA)}, seeds,
        [Claim("SeRA's implicit reward depends less on length than iterative DPO's", Sera.SERA, Sera.ITERATIVE)],
        paper={Sera.ITERATIVE: "higher R² (figure only)", Sera.SERA: "lower R² (figure only)"},
        metric="minus R² of the implicit reward with answer length (higher = less length)"))
    return out


def _sr_dpo(runs: dict) -> list[Table]:
    if SrDpo.stage not in runs:
        return []
    seeds = _seeds(runs, SrDpo.stage)
    h = lambda key: _col(runs, SrDpo.stage, seeds,  # noqa: E731
                         lambda m: m[SrDpo.head_to_head][key]["win"] + m[SrDpo.head_to_head][key]["tie"] / 2)
    rows = {key: h(key) for key in runs[SrDpo.stage][seeds[0]][SrDpo.head_to_head]}
    rows["even (0.5)"] = [0.5] * len(seeds)
    sr_dpo, sr_ipo, naive = (versus(a, b) for a, b in SrDpo.PAIRS)
    return [Table("Sr-DPO Tables 2 and 4: head to head (win + tie / 2)", rows, seeds,
                  [Claim("Sr-DPO beats DPO", sr_dpo, "even (0.5)"),
                   Claim("Sr-IPO beats IPO", sr_ipo, "even (0.5)"),
                   Claim("the quality instruction beats Δ_naive", naive, "even (0.5)")],
                  paper={sr_dpo: "45.62 / 33.76 / 20.62 win/tie/lose (MT-Bench, GPT-4)",
                         sr_ipo: "38.75 / 25.00 / 26.25", naive: "Δ_naive vs DPO 38.75 / 41.88 / 19.37"},
                  metric="head-to-head win rate")]


def _dro(runs: dict) -> list[Table]:
    out = []
    if Dro.stage in runs and Spa.stage in runs:
        seeds = _seeds(runs, Dro.stage, Spa.stage)
        gate = [_passed(runs[Spa.stage][x][Spa.run]) for x in seeds]
        out.append(Table("DRO-DPO (thesis §2.2.3) in SPA's loop: the worst case over each round", {
            "SPA (Eq. 10)": _col(runs, Spa.stage, seeds, lambda m: m[Spa.run]["rounds"][-1]["win_rate"]),
            "SPA with DRO-DPO": _col(runs, Dro.stage, seeds, lambda m: m[Dro.in_loop]["rounds"][-1]["win_rate"])}, seeds,
            [Claim("DRO-DPO in SPA's loop beats SPA's refinement", "SPA with DRO-DPO", "SPA (Eq. 10)", gate=gate)],
            paper={"SPA (Eq. 10)": "no result (proposal)", "SPA with DRO-DPO": "no result (proposal)"}, gate=gate))
    if Dro.stage in runs:
        seeds = _seeds(runs, Dro.stage)
        flips = runs[Dro.stage][seeds[0]][Dro.by_flip]
        rows = {}
        for f in flips:
            for m in (Dro.DPO, Dro.PER_BATCH):
                rows[f"{m}, {float(f):.0%} flipped"] = _col(runs, Dro.stage, seeds, lambda x, f=f, m=m: x[Dro.by_flip][f][m]["win_rate"])
        out.append(Table("DRO-DPO ablation: one pass, worst case per batch, under flipped labels", rows, seeds,
                         [Claim(f"per-batch DRO-DPO beats DPO with {float(f):.0%} flipped", f"{Dro.PER_BATCH}, {float(f):.0%} flipped",
                                f"{Dro.DPO}, {float(f):.0%} flipped") for f in flips if float(f) > 0]))
    return out


def build(runs: dict[str, dict[int, dict]]) -> list[Table]:
    """Every table whose stages are in ``runs`` (stage -> seed -> metrics), verdicts not yet decided."""
    return _spa(runs) + _sera(runs) + _sr_dpo(runs) + _dro(runs)


def tables(runs: dict[str, dict[int, dict]]) -> list[Table]:
    """Every table whose stages are in ``runs``, verdicts decided (Holm over all of them)."""
    return decide_all(build(runs))
