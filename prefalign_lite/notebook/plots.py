"""The kit's figure style, and a check that a figure can be read on its own.

Every notebook calls :func:`use_kit_style` in its import cell, so figures render at a resolution
and font size that read on a projector (about 800 px wide for a 6-inch figure), and shows each
figure with :func:`show`, which refuses (``ValueError`` naming every problem) a figure that

- lacks a title, an axis label or, when an axes draws more than one series, a legend;
- draws bars on a value axis that does not reach 0 (a truncated bar chart, where bar lengths no
  longer compare) or on a log value axis;
- has any visible text smaller than :data:`MIN_FONT_PT` (tick labels, legend, annotations);
- counts rounds, iterations, steps or epochs on an axis (its label says so) with fractional ticks;
- draws a data series (bars, lines, points) in a colour too pale to see on white, without an edge.

A figure that breaks one of these then fails the notebook (and nbval) instead of slipping through.
Two helpers keep figures on the right side of the check: :func:`integer_ticks` for axes that
count rounds, and :func:`mark_not_testable` / :data:`NOT_TESTABLE_BAR` for results that could not
be tested, drawn so that they are seen (black hatching and a label, not a pale grey).
"""
from __future__ import annotations

import logging
import math
import re

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

log = logging.getLogger(__name__)

MIN_FONT_PT = 9
"""The smallest font size, in points, that :func:`show` accepts for any visible text."""

PALEST_LUMINANCE = 0.8
"""A series whose colour, laid over white, is lighter than this (relative luminance, 0 black to
1 white) and has no visible edge is refused as nearly invisible; matplotlib's ``lightgrey`` (0.83)
is, ``grey`` (0.50) and the default colour cycle are not."""

COUNTING_WORDS = re.compile(r"\b(rounds?|iterations?|iterates?|steps?|epochs?)\b", re.IGNORECASE)
"""An axis whose label matches this counts something whole, so its ticks must be integers."""

NOT_TESTABLE_BAR = {"facecolor": "white", "edgecolor": "black", "hatch": "///", "linewidth": 1.5}
"""Keyword arguments for ``ax.bar`` / ``ax.barh`` drawing a claim that could not be tested:
a white bar with a black edge and black hatching, visible on screen and in greyscale print."""

NOT_TESTABLE_POINT = {"marker": "X", "markersize": 10, "color": "black", "linestyle": "none"}
"""Keyword arguments for ``ax.plot`` drawing a result that could not be tested as a point."""

KIT_STYLE = {
    "figure.dpi": 130,
    "savefig.dpi": 130,
    "figure.figsize": (6.4, 3.8),
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.framealpha": 0.85,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def use_kit_style() -> None:
    """Set matplotlib's defaults to the kit's style, :data:`KIT_STYLE`: figure.dpi 130, fonts of
    10-12 pt, a light grid, a layout that keeps rotated tick labels inside the figure. Returns
    nothing, so that calling it last in a cell prints nothing."""
    mpl.rcParams.update(KIT_STYLE)
    log.debug("kit figure style in use: %s", KIT_STYLE)


def integer_ticks(ax: Axes, axis: str = "x") -> None:
    """Put ticks only at whole numbers on ``axis`` (``"x"``, ``"y"`` or ``"both"``) of ``ax``: for
    axes that count rounds, iterations or steps, which :func:`show` refuses with fractional ticks."""
    if axis not in ("x", "y", "both"):
        raise ValueError(f"axis must be 'x', 'y' or 'both', got {axis!r}")
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(integer=True))


def mark_not_testable(ax: Axes, x: float, y: float, text: str = "not testable") -> None:
    """Mark a result that could not be tested at ``(x, y)``: a black cross
    (:data:`NOT_TESTABLE_POINT`) and ``text`` beside it in bold, one point above
    :data:`MIN_FONT_PT`. For a bar chart draw the bar itself with :data:`NOT_TESTABLE_BAR`."""
    ax.plot([x], [y], **NOT_TESTABLE_POINT)
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=MIN_FONT_PT + 1, fontweight="bold")


def _series(ax: Axes) -> int:
    """Data series drawn on ``ax``: containers (one ``bar`` or ``errorbar`` call each; a bar
    call's own error bars do not count again), lines of more than two points that belong to no
    container (a reference line such as ``axhline`` has two), and scatter plots."""
    containers = list(ax.containers)
    owned = {id(c.errorbar) for c in containers if getattr(c, "errorbar", None) is not None}
    containers = [c for c in containers if id(c) not in owned]
    in_container = {id(a) for c in ax.containers for a in c.get_children()}
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2 and id(ln) not in in_container]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    return len(containers) + len(lines) + len(scatters)


def _truncated_bars(ax: Axes, where: str) -> list[str]:
    """Bars whose value axis is logarithmic or whose limits leave out 0."""
    problems = []
    for orientation in sorted({c.orientation for c in ax.containers if isinstance(c, BarContainer)}):
        name = "y" if orientation == "vertical" else "x"
        if getattr(ax, f"get_{name}scale")() != "linear":
            problems.append(f"{where} draws bars on a {getattr(ax, f'get_{name}scale')()} {name} axis (bars need a linear axis from 0)")
            continue
        low, high = sorted(getattr(ax, f"get_{name}lim")())
        if not low <= 0 <= high:
            problems.append(f"{where} draws bars on a {name} axis from {low:.3g} to {high:.3g}: a bar axis must include 0 "
                            "(plot points, or differences, to zoom in)")
    return problems


def _fractional_ticks(ax: Axes, where: str) -> list[str]:
    """Axes whose label counts rounds or steps (the word is among the label's first two: "iteration",
    "Adam step"; not "confidence at the last solve of round 1") but whose visible ticks are not whole
    numbers."""
    problems = []
    for name in ("x", "y"):
        label = " ".join(getattr(ax, f"get_{name}label")().split()[:2])
        if not COUNTING_WORDS.search(label) or getattr(ax, f"get_{name}scale")() != "linear":
            continue
        low, high = sorted(getattr(ax, f"get_{name}lim")())
        ticks = [t for t in getattr(ax, f"get_{name}ticks")() if low - 1e-9 <= t <= high + 1e-9]
        fractional = [t for t in ticks if not math.isclose(t, round(t), abs_tol=1e-9)]
        if fractional:
            problems.append(f"{where} counts {COUNTING_WORDS.search(label).group(0)!r} on its {name} axis but has "
                            f"fractional ticks {[round(float(t), 3) for t in fractional[:4]]}: use plots.integer_ticks(ax, {name!r})")
    return problems


def _luminance(colour, alpha_scale: float = 1.0) -> float:
    """Relative luminance (0 black, 1 white) of ``colour`` laid over a white background."""
    r, g, b, a = to_rgba(colour)
    a *= alpha_scale
    over_white = [a * c + (1 - a) for c in (r, g, b)]
    return 0.2126 * over_white[0] + 0.7152 * over_white[1] + 0.0722 * over_white[2]


def _named(kind: str, artist) -> str:
    """``kind`` with the artist's legend label, when it has one."""
    label = artist.get_label() or ""
    return f"{kind} {label!r}" if label and not label.startswith("_") else kind


def _pale_series(ax: Axes, where: str) -> list[str]:
    """Bars, lines and points drawn too pale to see on white, without a visible edge."""
    problems = []
    for c in ax.containers:
        if not isinstance(c, BarContainer) or not c.patches:
            continue
        bar = c.patches[0]
        alpha = 1.0 if bar.get_alpha() is None else bar.get_alpha()
        edge_seen = bar.get_linewidth() > 0 and _luminance(bar.get_edgecolor(), alpha) <= PALEST_LUMINANCE
        if not edge_seen and not bar.get_hatch() and _luminance(bar.get_facecolor(), alpha) > PALEST_LUMINANCE:
            problems.append(f"{where} draws {_named('bars', c)} too pale to see on white: give them a darker colour, "
                            "an edge or plots.NOT_TESTABLE_BAR")
    for line in ax.get_lines():
        marked = line.get_marker() not in (None, "", " ", "None", "none")
        if not line.get_visible() or len(line.get_xdata()) == 0 or (len(line.get_xdata()) <= 2 and not marked):
            continue  # an empty legend proxy, or a reference line such as axhline
        alpha = 1.0 if line.get_alpha() is None else line.get_alpha()
        colours = [line.get_color()] + ([line.get_markeredgecolor(), line.get_markerfacecolor()] if marked else [])
        if min(_luminance(c, alpha) for c in colours if c not in ("none", "None")) > PALEST_LUMINANCE:
            problems.append(f"{where} draws {_named('line', line)} too pale to see on white")
    for points in ax.collections:
        if not isinstance(points, PathCollection) or not len(points.get_facecolors()):
            continue
        alpha = 1.0 if points.get_alpha() is None else points.get_alpha()
        colours = list(points.get_facecolors())
        if len(points.get_linewidths()) and max(points.get_linewidths()) > 0:
            colours += list(points.get_edgecolors())
        if min(_luminance(c, alpha) for c in colours) > PALEST_LUMINANCE:
            problems.append(f"{where} draws {_named('points', points)} too pale to see on white")
    return problems


def _small_text(fig: Figure) -> list[str]:
    """Visible, non-empty texts under :data:`MIN_FONT_PT`, a few named, the rest counted."""
    fig.draw_without_rendering()  # formats the tick labels, which exist only once laid out
    small = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT]
    if not small:
        return []
    named = ", ".join(f"{t.get_text()!r} ({t.get_fontsize():g} pt)" for t in small[:4])
    more = f" and {len(small) - 4} more" if len(small) > 4 else ""
    return [f"{len(small)} texts are under {MIN_FONT_PT} pt: {named}{more}"]


def figure_problems(fig: Figure) -> list[str]:
    """What keeps ``fig`` from reading on its own: for every axes, a missing title (a figure
    title ``suptitle`` counts for all panels), x-label or y-label, a missing legend where more
    than one series is drawn (a figure legend, ``fig.legend``, counts for all panels), a truncated
    or logarithmic bar axis, fractional ticks on an axis that counts rounds or steps, and series too
    pale to see; for the whole figure, text under :data:`MIN_FONT_PT`. Empty list when it is fine."""
    problems = []
    has_suptitle = bool(fig.get_suptitle())
    for i, ax in enumerate(fig.axes):
        if not ax.has_data():
            continue
        where = f"axes {i}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        if not ax.get_title() and not has_suptitle:
            problems.append(f"{where} has no title")
        if not ax.get_xlabel():
            problems.append(f"{where} has no x-label")
        if not ax.get_ylabel():
            problems.append(f"{where} has no y-label")
        if _series(ax) > 1 and ax.get_legend() is None and not fig.legends:
            problems.append(f"{where} draws {_series(ax)} series but has no legend")
        problems += _truncated_bars(ax, where) + _fractional_ticks(ax, where) + _pale_series(ax, where)
    return problems + _small_text(fig)


def show(fig: Figure | None = None) -> None:
    """Show ``fig`` (default: the current figure) after checking it with :func:`figure_problems`;
    raise ``ValueError`` listing the problems instead of showing an unreadable figure."""
    fig = plt.gcf() if fig is None else fig
    problems = figure_problems(fig)
    if problems:
        plt.close(fig)
        raise ValueError("figure cannot be read on its own: " + "; ".join(problems))
    plt.show()
