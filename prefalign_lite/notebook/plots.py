"""The kit's figure style, and a check that a figure can be read on its own.

Every notebook calls :func:`use_kit_style` in its import cell, so figures render at a resolution
and font size that read on a projector (about 800 px wide for a 6-inch figure), and shows each
figure with :func:`show`, which refuses a figure whose axes lack a title, an axis label or, when
they draw more than one series, a legend. A figure that loses its labels then fails the notebook
(and nbval) instead of slipping through.
"""
from __future__ import annotations

import logging

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

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


def figure_problems(fig: Figure) -> list[str]:
    """What keeps ``fig`` from reading on its own: for every axes, a missing title (a figure
    title ``suptitle`` counts for all panels), x-label or y-label, and a missing legend where more
    than one series is drawn (a figure legend, ``fig.legend``, counts for all panels). Empty list
    when it is fine."""
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
    return problems


def show(fig: Figure | None = None) -> None:
    """Show ``fig`` (default: the current figure) after checking it with :func:`figure_problems`;
    raise ``ValueError`` listing the problems instead of showing an unreadable figure."""
    fig = plt.gcf() if fig is None else fig
    problems = figure_problems(fig)
    if problems:
        plt.close(fig)
        raise ValueError("figure cannot be read on its own: " + "; ".join(problems))
    plt.show()
