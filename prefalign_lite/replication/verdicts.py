"""How the report decides (docs/protocol.md, sections 5-7): tables of per-seed values, the claims
they test, and the verdict rule. Each cell is a mean with a 95% interval over seeds; each claim is
decided by the rule below; the paper's own figure stands beside each row (:mod:`.report` builds
the tables from a run).

Rule: a claim "A beats B" is judged on the per-seed paired differences A - B (same seed, same
data, same evaluation prompts). A claim whose precondition failed (SPA's gate, pooled over seeds,
or Sr-DPO's) is **not testable**; a claim whose pre-registered mechanism diagnostic shows that its
mechanism did not operate is **void**. For every other claim two hypotheses enter one Holm family
(family-wise error 5% over all of them together): the two-sided paired t-test of a zero mean, and
the equivalence test (TOST) with the claim's margin, the paper's own effect scaled into toy units.
A claim is **reproduced** when its Holm-adjusted t-test p < 0.05 and the mean is positive,
**opposite** when it is negative, **no effect** when its Holm-adjusted TOST p < 0.05 and its 95%
interval includes 0 (an interval that excludes 0 is never "no effect"), **inconclusive**
otherwise. Each claim reports its minimum detectable effect (80% power at Holm's first-step level).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.stats import Interval, holm, minimum_detectable_effect, paired_p, sample_sd, seed_interval, tost_p

RULE = __doc__.split("Rule: ", 1)[1].strip()
ALPHA = 0.05
POWER = 0.8
DEFAULT_MARGIN = 0.02   # the equivalence margin of a claim the paper gives no number for
VERDICTS = ("reproduced", "opposite", "no effect", "inconclusive", "void", "not testable")


@dataclass
class Diagnostic:
    """A claim's mechanism diagnostic: what it measures, its value over seeds, and whether the
    protocol's rule calls the mechanism absent (``void``)."""

    name: str
    value: Interval | None
    void: bool = False
    note: str = ""

    def __str__(self) -> str:
        shown = "–" if self.value is None else str(self.value)
        return f"{self.name} {shown}" + (f" ({self.note})" if self.note else "")


@dataclass
class Claim:
    text: str
    a: str
    b: str
    margin: float = DEFAULT_MARGIN             # the scaled paper effect's magnitude (equivalence margin)
    paper_effect: float | None = None          # the paper's A - B in toy units (None: the paper gives none)
    testable: bool = True                      # the precondition held (SPA's gate, Sr-DPO's)
    precondition: str = ""                     # what it rests on, for the report
    diagnostic: Diagnostic | None = None
    companion: str = ""                        # the main claim this one controls (sharpening), if any
    diff: Interval | None = None
    p: float = math.nan
    p_tost: float = math.nan
    adjusted_p: float = math.nan
    adjusted_p_tost: float = math.nan
    mde: float = math.nan
    verdict: str = "inconclusive"
    diffs: list[float] = field(default_factory=list)

    @property
    def in_family(self) -> bool:
        return self.testable and not (self.diagnostic and self.diagnostic.void) and len(self.diffs) >= 2


@dataclass
class Table:
    title: str
    rows: dict[str, list[float]]                   # label -> one value per seed (in ``seeds`` order)
    seeds: list[int]
    claims: list[Claim] = field(default_factory=list)
    paper: dict[str, str] = field(default_factory=dict)   # label -> the paper's own figure
    gate: str = ""                                 # how SPA's pooled gate came out, when it applies
    metric: str = "gold win rate against SFT"
    note: str = ""

    def measure(self) -> None:
        """Each claim's paired differences over all seeds, interval, raw p-values."""
        for c in self.claims:
            c.diffs = [a - b for a, b in zip(self.rows[c.a], self.rows[c.b])]
            c.diff = seed_interval(c.diffs) if c.diffs else None
            c.p, c.p_tost = paired_p(c.diffs), tost_p(c.diffs, c.margin)

    def markdown(self) -> str:
        paper = bool(self.paper)
        head = f"| | ours: {self.metric} (mean [95% CI], {len(self.seeds)} seeds) |" + (" paper |" if paper else "")
        lines = [f"### {self.title}", "", head, "|---|---|" + ("---|" if paper else "")]
        lines += [f"| {label} | {seed_interval(v)} |" + (f" {self.paper.get(label, '–')} |" if paper else "")
                  for label, v in self.rows.items()]
        if self.gate:
            lines += ["", self.gate]
        if self.note:
            lines += ["", self.note]
        if self.claims:
            lines += ["", "| claim | A − B [95% CI] | MDE | paper, scaled | p / TOST p (Holm) | mechanism | verdict |",
                      "|---|---|---|---|---|---|---|"]
            lines += [claim_row(c) for c in self.claims]
        return "\n".join(lines)

    def verdicts(self) -> list[tuple[str, str]]:
        return [(c.text, c.verdict) for c in self.claims]


def _p(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def claim_row(c: Claim) -> str:
    paper = "–" if c.paper_effect is None else f"{c.paper_effect:+.3f}"
    ps = f"{_p(c.adjusted_p)} / {_p(c.adjusted_p_tost)}" if c.in_family else "–"
    mde = "–" if math.isnan(c.mde) else f"{c.mde:.3f}"
    return (f"| {c.text} | {c.diff if c.diff else '–'} | {mde} | {paper} (δ {c.margin:.3f}) | {ps} | "
            f"{c.diagnostic if c.diagnostic else '–'} | **{c.verdict}** |")


def decide(c: Claim) -> str:
    """The verdict of one measured claim whose Holm-adjusted p-values are set (see the rule)."""
    if not c.testable:
        return "not testable"
    if c.diagnostic and c.diagnostic.void:
        return "void"
    if c.diff is None or c.diff.n < 2 or math.isnan(c.adjusted_p):
        return "inconclusive"
    if c.adjusted_p < ALPHA:
        return "reproduced" if c.diff.mean > 0 else "opposite"
    if c.adjusted_p_tost < ALPHA and c.diff.low <= 0 <= c.diff.high:
        return "no effect"
    return "inconclusive"


def decide_all(tables: list[Table]) -> list[Table]:
    """Measure every claim, Holm-adjust the superiority and equivalence p-values of all claims in
    the family together, set each claim's minimum detectable effect, decide."""
    for t in tables:
        t.measure()
    family = [c for t in tables for c in t.claims if c.in_family]
    adjusted = holm([c.p for c in family] + [c.p_tost for c in family])
    first_step = ALPHA / max(1, 2 * len(family))
    for i, c in enumerate(family):
        c.adjusted_p, c.adjusted_p_tost = adjusted[i], adjusted[len(family) + i]
    for t in tables:
        for c in t.claims:
            if len(c.diffs) >= 2:
                c.mde = minimum_detectable_effect(sample_sd(c.diffs), len(c.diffs), first_step, POWER)
            c.verdict = decide(c)
    return tables


def shifted(tables: list[Table], shift: dict[str, float]) -> dict[str, str]:
    """The verdict each claim would get if every seed's difference moved by ``shift[text]`` (both
    directions tried; the verdicts that differ from the unshifted ones are returned as
    ``"verdict -> other"``): which verdicts another machine's kernels could flip."""
    import copy

    base = {c.text: c.verdict for t in tables for c in t.claims}
    flips = {}
    for sign in (+1, -1):
        moved = copy.deepcopy(tables)
        for t in moved:
            for c in t.claims:   # each claim gets its own shifted copy of its A row (rows are shared)
                s = sign * abs(shift.get(c.text, 0.0))
                key = f"{c.a} (shifted for {c.text})"
                t.rows[key], c.a = [v + s for v in t.rows[c.a]], key
        for t in decide_all(moved):
            for c in t.claims:
                if c.verdict != base[c.text]:
                    flips.setdefault(c.text, set()).add(c.verdict)
    return {text: f"{base[text]} -> {' or '.join(sorted(v))}" for text, v in flips.items()}


def counts(tables: list[Table]) -> dict[str, int]:
    out = {v: 0 for v in VERDICTS}
    for t in tables:
        for _, word in t.verdicts():
            out[word] += 1
    return out


def summary(tables: list[Table]) -> str:
    """Every claim in one table: the verdict list of the note and the README."""
    lines = ["| table | claim | A − B [95% CI] (seeds) | MDE | paper, scaled | Holm p / TOST p | mechanism | verdict | paper: A vs B |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in tables:
        for c in t.claims:
            paper = "–" if c.paper_effect is None else f"{c.paper_effect:+.3f}"
            ps = f"{_p(c.adjusted_p)} / {_p(c.adjusted_p_tost)}" if c.in_family else "–"
            n = f" ({c.diff.n})" if c.diff else ""
            mde = "–" if math.isnan(c.mde) else f"{c.mde:.3f}"
            figures = f"{t.paper.get(c.a, '–')} vs {t.paper.get(c.b, '–')}" if t.paper else "–"
            lines.append(f"| {t.title.split(':')[0]} | {c.text} | {c.diff if c.diff else '–'}{n} | {mde} | {paper} | "
                         f"{ps} | {c.diagnostic if c.diagnostic else '–'} | {c.verdict} | {figures} |")
    return "\n".join(lines)
