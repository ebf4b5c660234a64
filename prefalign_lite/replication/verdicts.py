"""How the report decides: tables of per-seed values, the claims they test, and the verdict rule.
Each cell is a mean with a 95% interval over seeds, each claim is decided by the rule below, and
the paper's own figure stands beside each row (:mod:`.report` builds the tables from a run).

Rule: a claim "A beats B" is judged on the per-seed differences A - B (same seed, same data, same
evaluation prompts), with a 95% Student-t interval of their mean and a paired t-test. The p-values
of all testable claims of the report are Holm-adjusted together (family-wise error 5%). A claim is
**reproduced** when its Holm-adjusted p < 0.05 and the difference is positive, **opposite** when
it is negative, **no effect** when not significant and the whole interval lies inside +-DELTA
(0.02 win rate), **inconclusive** otherwise. A claim that rests on SPA's gate (the seed model beats
SFT and Eq. 7 labels its own samples with non-tie accuracy above 0.6) uses only the seeds whose
gate passed; with fewer than 2 such seeds it is **not testable**. With one seed nothing is decided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.stats import Interval, holm, paired_p, seed_interval

RULE = __doc__.split("Rule: ", 1)[1].strip()
DELTA = 0.02
ALPHA = 0.05
VERDICTS = ("reproduced", "opposite", "no effect", "inconclusive", "not testable")


def decide(diff: Interval, adjusted_p: float) -> str:
    """The verdict of one claim from its paired-difference interval and Holm-adjusted p."""
    if diff.n < 2 or math.isnan(adjusted_p):
        return "inconclusive"
    if adjusted_p < ALPHA:
        return "reproduced" if diff.mean > 0 else "opposite"
    if -DELTA < diff.low and diff.high < DELTA:
        return "no effect"
    return "inconclusive"


@dataclass
class Claim:
    text: str
    a: str
    b: str
    gate: list[bool] | None = None   # rests on SPA's gate: per seed, did it pass? (None: no precondition)
    diff: Interval | None = None
    p: float = math.nan
    adjusted_p: float = math.nan
    verdict: str = "inconclusive"
    seeds: list[int] = field(default_factory=list)


@dataclass
class Table:
    title: str
    rows: dict[str, list[float]]                   # label -> one value per seed (in ``seeds`` order)
    seeds: list[int]
    claims: list[Claim] = field(default_factory=list)
    paper: dict[str, str] = field(default_factory=dict)   # label -> the paper's own figure
    gate: list[bool] | None = None                 # per seed: did SPA's gate pass?
    metric: str = "gold win rate against SFT"

    def measure(self) -> None:
        """Each claim's paired difference and raw p (over the seeds its gate allows)."""
        for c in self.claims:
            keep = [i for i in range(len(self.seeds)) if c.gate is None or c.gate[i]]
            c.seeds = [self.seeds[i] for i in keep]
            if c.gate is not None and len(keep) < 2:
                c.diff, c.verdict = None, "not testable"
                continue
            diffs = [self.rows[c.a][i] - self.rows[c.b][i] for i in keep]
            c.diff, c.p = seed_interval(diffs), paired_p(diffs)

    def markdown(self) -> str:
        paper = bool(self.paper)
        head = f"| | ours: {self.metric} (mean [95% CI], {len(self.seeds)} seeds) |" + (" paper |" if paper else "")
        lines = [f"### {self.title}", "", head, "|---|---|" + ("---|" if paper else "")]
        lines += [f"| {label} | {seed_interval(v)} |" + (f" {self.paper.get(label, '–')} |" if paper else "")
                  for label, v in self.rows.items()]
        if self.gate is not None:
            lines += ["", f"SPA's gate passed in {sum(self.gate)} of {len(self.gate)} seeds."]
        if self.claims:
            lines += ["", "| claim | difference A − B | p (Holm) | seeds | verdict |", "|---|---|---|---|---|"]
            for c in self.claims:
                p = "–" if math.isnan(c.adjusted_p) else f"{c.p:.3f} ({c.adjusted_p:.3f})"
                lines.append(f"| {c.text} | {c.diff if c.diff else '–'} | {p} | {len(c.seeds)} | **{c.verdict}** |")
        return "\n".join(lines)

    def verdicts(self) -> list[tuple[str, str]]:
        return [(c.text, c.verdict) for c in self.claims]


def decide_all(tables: list[Table]) -> list[Table]:
    """Measure every claim, Holm-adjust the p-values of all testable ones together, decide."""
    for t in tables:
        t.measure()
    testable = [c for t in tables for c in t.claims if c.diff is not None]
    for c, adj in zip(testable, holm([c.p for c in testable])):
        c.adjusted_p = adj
        c.verdict = decide(c.diff, adj)
    return tables


def counts(tables: list[Table]) -> dict[str, int]:
    out = {v: 0 for v in VERDICTS}
    for t in tables:
        for _, word in t.verdicts():
            out[word] += 1
    return out


def summary(tables: list[Table]) -> str:
    """Every claim in one table: the verdict list of the note and the README."""
    lines = ["| table | claim | difference A − B [95% CI] | Holm p | verdict |", "|---|---|---|---|---|"]
    for t in tables:
        for c in t.claims:
            p = "–" if math.isnan(c.adjusted_p) else f"{c.adjusted_p:.3f}"
            lines.append(f"| {t.title.split(':')[0]} | {c.text} | {c.diff if c.diff else '–'} | {p} | {c.verdict} |")
    return "\n".join(lines)
