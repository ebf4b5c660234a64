"""plots.show refuses what can be checked automatically: truncated or logarithmic bar axes, text
under 9 pt, fractional ticks on an axis that counts rounds, series too pale to see. (About 1 s.)"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import pytest  # noqa: E402

from prefalign_lite.notebook import plots  # noqa: E402


@pytest.fixture(autouse=True)
def kit_style():
    plots.use_kit_style()
    yield
    plt.close("all")


def _axes(xlabel="x"):
    fig, ax = plt.subplots()
    ax.set_title("t"); ax.set_xlabel(xlabel); ax.set_ylabel("y")
    return fig, ax


def test_bars_from_zero_pass_and_a_truncated_bar_axis_is_refused():
    fig, ax = _axes()
    ax.bar([0, 1], [0.55, 0.62])
    assert plots.figure_problems(fig) == []
    ax.set_ylim(0.4, 0.75)
    assert plots.figure_problems(fig) == [
        "axes 0 ('t') draws bars on a y axis from 0.4 to 0.75: a bar axis must include 0 (plot points, or differences, to zoom in)"]
    with pytest.raises(ValueError, match="a bar axis must include 0"):
        plots.show(fig)


def test_horizontal_negative_and_log_bars():
    fig, ax = _axes()
    ax.barh([0, 1], [0.505, 0.52]); ax.set_xlim(0.499, 0.52)
    assert plots.figure_problems(fig) == [
        "axes 0 ('t') draws bars on a x axis from 0.499 to 0.52: a bar axis must include 0 (plot points, or differences, to zoom in)"]
    fig, ax = _axes()
    ax.bar([0, 1], [-0.03, 0.07])  # differences of both signs: the axis spans 0
    assert plots.figure_problems(fig) == []
    ax.set_yscale("log")
    assert plots.figure_problems(fig) == ["axes 0 ('t') draws bars on a log y axis (bars need a linear axis from 0)"]


def test_text_under_9_pt_is_refused_wherever_it_is():
    fig, ax = _axes()
    ax.plot([0, 1, 2], [0, 1, 4], label="a"); ax.plot([0, 1, 2], [4, 1, 0], label="b")
    ax.legend()
    assert plots.figure_problems(fig) == []
    ax.legend(fontsize=7)
    assert plots.figure_problems(fig) == ["2 texts are under 9 pt: 'a' (7 pt), 'b' (7 pt)"]
    ax.legend()
    ax.annotate("β=0.05", (1, 1), fontsize=8)
    assert plots.figure_problems(fig) == ["1 texts are under 9 pt: 'β=0.05' (8 pt)"]
    ax.texts[0].set_fontsize(9)
    ax.set_yticks([0, 2, 4], ["none", "some", "many"], fontsize=6)
    problems = plots.figure_problems(fig)
    assert problems == ["3 texts are under 9 pt: 'none' (6 pt), 'some' (6 pt), 'many' (6 pt)"]


def test_many_small_tick_labels_are_counted_not_all_listed():
    fig, ax = _axes()
    ax.plot(range(10), range(10)); ax.set_xticks(range(10)); ax.tick_params(labelsize=8)
    (problem,) = plots.figure_problems(fig)
    shown = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_visible() and t.get_text()]
    assert len(shown) > 10
    assert problem == f"{len(shown)} texts are under 9 pt: '0' (8 pt), '1' (8 pt), '2' (8 pt), '3' (8 pt) and {len(shown) - 4} more"


def test_an_axis_that_counts_rounds_needs_whole_ticks():
    fig, ax = _axes(xlabel="round")
    ax.plot([1, 2, 3], [0.5, 0.55, 0.6])
    assert plots.figure_problems(fig) == [
        "axes 0 ('t') counts 'round' on its x axis but has fractional ticks [1.25, 1.5, 1.75, 2.25]: "
        "use plots.integer_ticks(ax, 'x')"]
    plots.integer_ticks(ax)
    assert plots.figure_problems(fig) == []
    fig, ax = _axes(xlabel="share of labels flipped")  # not a count: fractions are fine
    ax.plot([0, 0.2, 0.4], [0.5, 0.55, 0.6])
    assert plots.figure_problems(fig) == []
    fig, ax = _axes(xlabel="confidence of a pair, last solve of round 1")  # a quantity measured in a round
    ax.plot([0.5, 0.501, 0.503], [0.5, 0.55, 0.6])
    assert plots.figure_problems(fig) == []
    with pytest.raises(ValueError, match="axis must be 'x', 'y' or 'both'"):
        plots.integer_ticks(ax, "z")


def test_series_too_pale_to_see_are_refused_and_the_not_testable_styles_pass():
    fig, ax = _axes()
    ax.bar([0, 1], [0.5, 0.6], color="lightgrey", label="tie")
    assert plots.figure_problems(fig) == [
        "axes 0 ('t') draws bars 'tie' too pale to see on white: give them a darker colour, an edge or plots.NOT_TESTABLE_BAR"]
    fig, ax = _axes()
    ax.bar([0, 1], [0.5, 0.6], **plots.NOT_TESTABLE_BAR)
    assert plots.figure_problems(fig) == []
    fig, ax = _axes()
    ax.plot([0, 1, 2], [1, 2, 3])
    ax.plot([1], [2], "x", color="lightgrey")  # a "not testable" point as the report drew it
    assert plots.figure_problems(fig) == ["axes 0 ('t') draws line too pale to see on white"]
    fig, ax = _axes()
    ax.plot([0, 1, 2], [1, 2, 3])
    plots.mark_not_testable(ax, 1, 2)
    ax.axhline(1, color="0.9")  # a pale reference line is not a series
    assert plots.figure_problems(fig) == []
    fig, ax = _axes()
    ax.scatter([0, 1], [1, 2], color="0.9")
    assert plots.figure_problems(fig) == ["axes 0 ('t') draws points too pale to see on white"]
