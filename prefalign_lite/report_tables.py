"""Which rows and claims make up each table of the report, read from the notebooks' metrics, with
the papers' own figures beside ours. The papers judge with GPT-4 (AlpacaEval 2.0 LC / WR against
GPT-4, MT-Bench head to head); ours is the setting's gold judge against the SFT model, so only the
direction of each comparison can be compared, never the numbers.

No claim is counted twice: the 3.3% seed of SPA Table 3 is SPA Table 1's setting, shown as a row
but not tested again; "DPO on all gold beats SFT" is a fairness check, not a claim.
"""
from __future__ import annotations

from .report import Claim, Table

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


def _gate(records: list[dict]) -> bool:
    return bool(records[1].get("gate", {}).get("passed", False))


def _spa(runs: dict) -> list[Table]:
    out = []
    if "11_dpo_baselines" in runs and "13_spa" in runs:
        seeds = _seeds(runs, "11_dpo_baselines", "13_spa")
        b = lambda pick: _col(runs, "11_dpo_baselines", seeds, pick)  # noqa: E731
        s = lambda pick: _col(runs, "13_spa", seeds, pick)  # noqa: E731
        gate = [_gate(runs["13_spa"][x]["spa"]) for x in seeds]
        out.append(Table("SPA Table 1: self-annotation from a 3.3% gold seed", {
            "SFT": [0.5] * len(seeds), "DPO on the seed": b(lambda m: m["seed_dpo"]["win_rate"]),
            "SPA (3 rounds)": s(lambda m: m["spa"][-1]["win_rate"]),
            "DPO on all gold": b(lambda m: m["all_gold_dpo"]["win_rate"])}, seeds,
            [Claim("SPA beats DPO on the seed", "SPA (3 rounds)", "DPO on the seed", gate=gate),
             Claim("SPA beats DPO on all gold (SPA vs Zephyr)", "SPA (3 rounds)", "DPO on all gold", gate=gate)],
            paper={k: v + f" ({AE})" * (k == "SFT") for k, v in SPA_T1.items()}, gate=gate))
        fractions = runs["13_spa"][seeds[0]]["by_fraction"]
        rows, paper, claims, gates = {}, {}, [], {}
        for f in sorted(list(fractions) + ["0.033"], key=float):
            label = f"{float(f):.1%}"
            pick = (lambda m: m["spa"]) if f == "0.033" else (lambda m, f=f: m["by_fraction"][f])
            rows[f"DPO, {label} seed"] = s(lambda m, pick=pick: pick(m)[0]["win_rate"])
            rows[f"SPA (2 rounds), {label} seed"] = s(lambda m, pick=pick: pick(m)[2]["win_rate"])
            dpo_lc, spa_lc = SPA_T3.get(label, ("–", "–"))
            paper[f"DPO, {label} seed"], paper[f"SPA (2 rounds), {label} seed"] = f"LC {dpo_lc}", f"LC {spa_lc}"
            gates[label] = [_gate(pick(runs["13_spa"][x])) for x in seeds]
            if f != "0.033":
                claims.append(Claim(f"SPA beats DPO with a {label} seed", f"SPA (2 rounds), {label} seed", f"DPO, {label} seed",
                                    gate=gates[label]))   # each seed size has its own gate
        out.append(Table("SPA Table 3: size of the gold seed (2 rounds; 3.3% = Table 1's setting, not re-tested)",
                         rows, seeds, claims, paper=paper))
    if "14_spa_judges_and_ablations" in runs:
        seeds = _seeds(runs, "14_spa_judges_and_ablations")
        v = lambda pick: _col(runs, "14_spa_judges_and_ablations", seeds, pick)  # noqa: E731
        last = lambda name: v(lambda m: m["variants"][name][-1]["win_rate"])  # noqa: E731
        gate = [_gate(runs["14_spa_judges_and_ablations"][x]["variants"]["SPA"]) for x in seeds]
        out.append(Table("SPA Table 2: preference judges (3 rounds from the same seed model)", {
            "iterative DPO, reward model (PairRM analogue)": last("iterative DPO, reward model"),
            "iterative DPO, LLM-as-judge": last("iterative DPO, LLM-as-judge"), "SPA": last("SPA")}, seeds,
            [Claim("SPA beats the reward-model judge", "SPA", "iterative DPO, reward model (PairRM analogue)", gate=gate),
             Claim("SPA beats LLM-as-judge", "SPA", "iterative DPO, LLM-as-judge", gate=gate)],
            paper={"iterative DPO, reward model (PairRM analogue)": "11.87 / 9.46 (PairRM)",
                   "iterative DPO, LLM-as-judge": "9.28 / 9.18", "SPA": "15.39 / 21.13"}, gate=gate))
        out.append(Table("SPA Table 6: ablation (data expansion, self-refinement, de-coupled detection)", {
            "DPO on the seed": v(lambda m: m["variants"]["SPA"][0]["win_rate"]),
            "DE": last("DE only"), "DE + SR": last("SR without DND"), "DE + SR + DND (SPA)": last("SPA")}, seeds,
            [Claim("data expansion beats DPO on the seed", "DE", "DPO on the seed", gate=gate),
             Claim("self-refinement adds to data expansion", "DE + SR", "DE", gate=gate),
             Claim("de-coupled detection adds to self-refinement", "DE + SR + DND (SPA)", "DE + SR", gate=gate)],
            paper={"DPO on the seed": "9.03 / 7.68", "DE": "14.41 / 19.91", "DE + SR": "14.70 / 19.94",
                   "DE + SR + DND (SPA)": "15.39 / 21.13"}, gate=gate))
        names = list(runs["14_spa_judges_and_ablations"][seeds[0]]["table7"])
        out.append(Table("SPA Table 7: the judge of round 2, from SPA after round 1 (plain DPO loss)", {
            n: v(lambda m, n=n: m["table7"][n]["win_rate"]) for n in names}, seeds,
            [Claim("the SFT model is a better judge reference than the previous model", "Eq. 7 with the SFT model",
                   "Eq. 7 with the previous model", gate=gate),
             Claim("Eq. 7 beats the reward model", "Eq. 7 with the SFT model", "reward model", gate=gate),
             Claim("Eq. 7 beats judging without a reference", "Eq. 7 with the SFT model", "no reference", gate=gate)],
            paper={"after round 1": "10.57 / 11.89", "Eq. 7 with the SFT model": "15.08 / 19.56",
                   "Eq. 7 with the previous model": "13.73 / 17.66", "reward model": "13.57 / 13.72",
                   "no reference": "12.83 / 12.35"}, gate=gate))
    return out


def _sera(runs: dict) -> list[Table]:
    if "15_sera" not in runs:
        return []
    seeds = _seeds(runs, "15_sera")
    r = lambda pick: _col(runs, "15_sera", seeds, pick)  # noqa: E731
    out = [Table("SeRA Table 1: off-policy offline set labelled by a noisy rater", {
        n: r(lambda m, n=n: m["table1"][n][-1]["win_rate"]) for n in ("DPO", "iterative DPO", "SeRA", "best-SeRA")}, seeds,
        [Claim("SeRA beats DPO", "SeRA", "DPO"), Claim("SeRA beats iterative DPO", "SeRA", "iterative DPO"),
         Claim("best-SeRA beats iterative DPO", "best-SeRA", "iterative DPO")],
        paper={"DPO": "55.1", "iterative DPO": "64.5", "SeRA": "74.2", "best-SeRA": "70.0"})]
    out[0].metric += " (paper: AlpacaEval win rate vs SFT, TinyLlama)"
    paper_flip = {"0.2": ("57.0", "71.2"), "0.4": ("47.8", "66.1")}
    for flip in runs["15_sera"][seeds[0]]["flipped"]:
        it, se = paper_flip.get(flip, ("–", "–"))
        out.append(Table(f"SeRA Tables 7-8: {float(flip):.0%} of the labels flipped", {
            n: r(lambda m, n=n: m["flipped"][flip][n][-1]["win_rate"]) for n in ("iterative DPO", "SeRA")}, seeds,
            [Claim(f"SeRA beats iterative DPO with {float(flip):.0%} flipped", "SeRA", "iterative DPO")],
            paper={"iterative DPO": it, "SeRA": se}))
    out.append(Table("SeRA Fig. 2: how much of the learned reward is length", {
        n: r(lambda m, n=n: -m["reward_r2"][n]["length"]) for n in ("iterative DPO", "SeRA")}, seeds,
        [Claim("SeRA's implicit reward depends less on length than iterative DPO's", "SeRA", "iterative DPO")],
        paper={"iterative DPO": "higher R² (figure only)", "SeRA": "lower R² (figure only)"},
        metric="minus R² of the implicit reward with answer length (higher = less length)"))
    return out


def _sr_dpo(runs: dict) -> list[Table]:
    if "16_sr_dpo" not in runs:
        return []
    seeds = _seeds(runs, "16_sr_dpo")
    h = lambda key: _col(runs, "16_sr_dpo", seeds,  # noqa: E731
                         lambda m: m["head_to_head"][key]["win"] + m["head_to_head"][key]["tie"] / 2)
    keys = list(runs["16_sr_dpo"][seeds[0]]["head_to_head"])
    rows = {k: h(k) for k in keys}
    rows["even (0.5)"] = [0.5] * len(seeds)
    return [Table("Sr-DPO Tables 2 and 4: head to head (win + tie / 2)", rows, seeds,
                  [Claim("Sr-DPO beats DPO", "Sr-DPO vs DPO", "even (0.5)"),
                   Claim("Sr-IPO beats IPO", "Sr-IPO vs IPO", "even (0.5)"),
                   Claim("the quality instruction beats Δ_naive", "Sr-DPO vs Sr-DPO, Δ_naive", "even (0.5)")],
                  paper={"Sr-DPO vs DPO": "45.62 / 33.76 / 20.62 win/tie/lose (MT-Bench, GPT-4)",
                         "Sr-IPO vs IPO": "38.75 / 25.00 / 26.25", "Sr-DPO vs Sr-DPO, Δ_naive": "Δ_naive vs DPO 38.75 / 41.88 / 19.37"},
                  metric="head-to-head win rate")]


def _dro(runs: dict) -> list[Table]:
    out = []
    if "17_dro_dpo" in runs and "13_spa" in runs:
        seeds = _seeds(runs, "17_dro_dpo", "13_spa")
        gate = [_gate(runs["13_spa"][x]["spa"]) for x in seeds]
        out.append(Table("DRO-DPO (thesis §2.2.3) in SPA's loop: the worst case over each round", {
            "SPA (Eq. 10)": _col(runs, "13_spa", seeds, lambda m: m["spa"][-1]["win_rate"]),
            "SPA with DRO-DPO": _col(runs, "17_dro_dpo", seeds, lambda m: m["dro_spa"][-1]["win_rate"])}, seeds,
            [Claim("DRO-DPO in SPA's loop beats SPA's refinement", "SPA with DRO-DPO", "SPA (Eq. 10)", gate=gate)],
            paper={"SPA (Eq. 10)": "no result (proposal)", "SPA with DRO-DPO": "no result (proposal)"}, gate=gate))
    if "17_dro_dpo" in runs:
        seeds = _seeds(runs, "17_dro_dpo")
        flips = runs["17_dro_dpo"][seeds[0]]["by_flip"]
        rows = {}
        for f in flips:
            for m in ("DPO", "DRO-DPO per batch"):
                rows[f"{m}, {float(f):.0%} flipped"] = _col(runs, "17_dro_dpo", seeds, lambda x, f=f, m=m: x["by_flip"][f][m]["win_rate"])
        out.append(Table("DRO-DPO ablation: one pass, worst case per batch, under flipped labels", rows, seeds,
                         [Claim(f"per-batch DRO-DPO beats DPO with {float(f):.0%} flipped", f"DRO-DPO per batch, {float(f):.0%} flipped",
                                f"DPO, {float(f):.0%} flipped") for f in flips if float(f) > 0]))
    return out


def build(runs: dict[str, dict[int, dict]]) -> list[Table]:
    return _spa(runs) + _sera(runs) + _sr_dpo(runs) + _dro(runs)
