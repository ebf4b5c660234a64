"""Every notebook keeps the kit's conventions, and papermill can set its parameters; the derivation
notebooks 00-05 and 10 teach (summary, graded exercises with hidden solutions, what to try next), show
only figures that read on their own, and check every trained number within a tolerance at the defaults
their committed outputs were made with. (About 5 s, most of it the papermill run.)"""
import ast
import json
import re
from pathlib import Path

import matplotlib
import papermill
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from prefalign_lite.notebook import links, plots  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_derivation_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    for prefix in ("00_quickstart", "01_bradley_terry_and_dpo", "02_spa_self_refinement", "03_sera_margins",
                   "04_sr_dpo_refinement", "05_adversarial_dro_dpo"):
        assert f"{prefix}.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_conventions(path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "colab.research.google.com" in "".join(cells[0]["source"]), "Open in Colab badge in the title cell"
    assert "google.colab" in "".join(cells[1]["source"]), "second cell installs the kit on Colab only"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "committed with every cell executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    assert not any(o.get("name") == "stderr" for c in code for o in c.get("outputs", [])), "no stderr noise for nbval"
    assert papermill.inspect_notebook(str(path)), "papermill sees the parameters"


def test_papermill_sets_a_parameter(tmp_path):
    out = tmp_path / "quickstart.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS[0]), str(out), parameters={"beta": 1.0},
                               cwd=str(NOTEBOOKS[0].parent), progress_bar=False)
    text = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    assert "DPO loss       : [0.1269, 4.0181, 0.6931]" in text  # -log sigma(1.0 * h) for h = 2, -4, 0


# --- teaching apparatus of the derivation notebooks 00-05 (reads the committed files: ~0.1 s) ---------

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
DERIVATIONS = [p for p in NOTEBOOKS if p.name[:2] in {"00", "01", "02", "03", "04", "05", "10"}]
NEXT = {"00": "01_bradley_terry_and_dpo.ipynb", "01": "02_spa_self_refinement.ipynb", "02": "03_sera_margins.ipynb",
        "03": "04_sr_dpo_refinement.ipynb", "04": "05_adversarial_dro_dpo.ipynb", "05": "10_synthetic_world_and_sft.ipynb",
        "10": "11_dpo_baselines.ipynb", "11": "12_fairness_checks.ipynb", "12": "13_spa.ipynb",
        "13": "14_spa_judges_and_ablations.ipynb", "14": "15_sera.ipynb", "15": "16_sr_dpo.ipynb",
        "16": "17_dro_dpo.ipynb", "17": "20_replication_report.ipynb"}
REPLICATION = [p for p in NOTEBOOKS if p.name[:2] in {"11", "12", "13", "14", "15", "16", "17", "20"}]


def _cells(path):
    return [(c, "".join(c["source"])) for c in json.loads(path.read_text())["cells"]]


RELEASE = links.read_release(FOLDER.parent)
AT_RELEASE = f"{RELEASE.repository}/blob/{RELEASE.tag}/"


def _markdown_links(path):
    """The files of the checkout that a notebook's markdown links to (at the release tag), relative to notebooks/."""
    return [link[len(AT_RELEASE):].removeprefix("notebooks/") for c, text in _cells(path) if c["cell_type"] == "markdown"
            for link in re.findall(r"\]\(([^)\s]+)\)", text) if link.startswith(AT_RELEASE)]


@pytest.mark.parametrize("path", DERIVATIONS + REPLICATION, ids=lambda p: p.name)
def test_each_notebook_teaches(path):
    cells = _cells(path)
    markdown = [text for c, text in cells if c["cell_type"] == "markdown"]
    summary = [i for i, (c, text) in enumerate(cells) if text.startswith("## Summary")]
    assert summary, "a '## Summary' section"
    exercises = next(text for text in markdown if "## Exercises" in text)
    numbered = re.findall(r"^\d+\. \*\*\((warm-up|easy|medium|harder|derivation|harder, open)\)\*\*", exercises, re.M)
    assert 3 <= len(numbered) <= 5, f"3-5 exercises of graded difficulty, found {len(numbered)}"
    assert numbered[0] == "warm-up"
    solutions = [i for i, (c, text) in enumerate(cells) if c["cell_type"] == "code" and text.startswith("#@title Solution")]
    assert len(solutions) == len(numbered), "one solution cell per exercise"
    for i in solutions:
        c = cells[i][0]
        assert c["metadata"].get("jupyter", {}).get("source_hidden") is True, "solutions are collapsed"
        assert c.get("outputs"), "a solution runs and prints something"
        if _ignored(c):  # trained numbers: the hidden cell after it checks them, and nbval compares its verdict
            assert cells[i + 1][0]["metadata"].get("jupyter", {}).get("source_hidden") is True
    last = cells[-1][1]
    onward = f"/notebooks/{NEXT[path.name[:2]]})" if path.name[:2] in NEXT else "/README.md"
    assert last.startswith("## What to try next") and onward in last
    assert "NOTATION.md" in "".join(markdown), "links to the notation page"


@pytest.mark.parametrize("path", DERIVATIONS, ids=lambda p: p.name)
def test_derivation_notebooks_use_the_kit_style_and_checked_figures(path):
    code = "\n".join(text for c, text in _cells(path) if c["cell_type"] == "code")
    assert "use_kit_style()" in code, "the import cell sets the kit's figure style"
    assert "plt.show()" not in code, "figures are shown with plots.show, which checks their labels"
    printed = "".join("".join(o.get("text", "")) for c, _ in _cells(path) for o in c.get("outputs", []))
    assert not re.search(r"\d\.\de[-+]\d\d", printed), "machine-epsilon values are printed as verdicts, not digits"


def _ignored(cell):
    return "nbval-ignore-output" in cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", DERIVATIONS, ids=lambda p: p.name)
def test_every_unchecked_output_is_checked_within_a_tolerance_in_the_next_cell(path):
    cells = _cells(path)
    ignored = [i for i, (c, _) in enumerate(cells) if _ignored(c)]
    if path.name[:2] != "00":
        assert ignored, "trained numbers are printed in cells nbval does not compare"
    for i in ignored:
        after, text = cells[i + 1]
        assert after["cell_type"] == "code" and not _ignored(after), f"cell {i}: the next cell must be a compared code cell"
        assert re.search(r"\boutputs\.check\(", text), f"cell {i}: the next cell must check its numbers (outputs.check)"
        printed = "".join("".join(o.get("text", "")) for o in after.get("outputs", []))
        assert "numbers within tolerance of the committed outputs: True" in printed, f"cell {i + 1} printed {printed!r}"


@pytest.mark.parametrize("path", DERIVATIONS, ids=lambda p: p.name)
def test_the_committed_outputs_were_made_with_the_parameters_cell_defaults(path):
    defaults = {name: ast.literal_eval(p["default"]) for name, p in papermill.inspect_notebook(str(path)).items()}
    calls = [node for c, text in _cells(path) if c["cell_type"] == "code" and "CommittedOutputs(" in text
             for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", getattr(node.func, "id", None)) == "CommittedOutputs"]
    if path.name[:2] == "00":
        assert not calls, "notebook 00 prints exact mathematics only"
        return
    (call,) = calls
    arguments = {k.arg: k.value for k in call.keywords}
    made_with = {k.arg: ast.literal_eval(k.value) for k in arguments["made_with"].keywords}
    running_with = {k.arg: k.value.id for k in arguments["running_with"].keywords}
    assert made_with == defaults, "made_with must be the parameters cell's defaults"
    assert running_with == {name: name for name in defaults}, "running_with passes every parameter by its own name"


def test_links_between_notebooks_resolve_and_the_map_covers_every_notebook():
    for path in NOTEBOOKS:
        for link in _markdown_links(path):
            target = link.split("#")[0]   # a notebook or NOTATION.md, else a file at the repository's root
            assert (FOLDER / target).exists() or (FOLDER.parent / target).exists(), f"{path.name} links to missing {link}"
    mapped = set(_markdown_links(NOTEBOOKS[0]))
    assert {p.name for p in NOTEBOOKS} <= mapped, f"00's map misses {sorted({p.name for p in NOTEBOOKS} - mapped)}"


def test_the_notation_page_covers_every_symbol_and_convention():
    text = (FOLDER / "NOTATION.md").read_text()
    for symbol in (r"\beta", "$h$", r"$r(x, y)$", r"$\Delta$", "$z$", r"$\alpha$", r"$\lambda$", r"$\varepsilon$", r"$\xi$",
                   r"$\gamma$", "$K$", r"$\tau$", r"$\kappa$", "$q_{ik}$", "$m$"):
        assert symbol in text, f"NOTATION.md lacks {symbol}"
    for convention in ("SPA Eq. 7", "SeRA Eq. 5", "Sr-DPO Eq. 11", "thesis Eq. 2-2", "β folded in?"):
        assert convention in text


def _figure(**labels):
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 1, 4], label="one")
    if labels.get("second"):
        ax.plot([0, 1, 2], [4, 1, 0], label="two")
    ax.axhline(1)
    ax.set_title(labels.get("title", "")); ax.set_xlabel(labels.get("x", "")); ax.set_ylabel(labels.get("y", ""))
    if labels.get("legend"):
        ax.legend()
    return fig


def test_figure_check_names_what_is_missing():
    assert plots.figure_problems(_figure(title="t", x="x", y="y")) == []
    assert plots.figure_problems(_figure(x="x")) == ["axes 0 has no title", "axes 0 has no y-label"]
    assert plots.figure_problems(_figure(title="t", x="x", y="y", second=True)) == [
        "axes 0 ('t') draws 2 series but has no legend"]
    assert plots.figure_problems(_figure(title="t", x="x", y="y", second=True, legend=True)) == []
    fig = _figure(x="x", y="y")
    fig.suptitle("a figure title counts for every panel")
    assert plots.figure_problems(fig) == []
    with pytest.raises(ValueError, match="figure cannot be read on its own: axes 0 has no title"):
        plots.show(_figure(x="x", y="y"))
    plt.close("all")


def test_bars_with_error_bars_are_one_series():
    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2], yerr=[0.1, 0.2]); ax.set_title("t"); ax.set_xlabel("x"); ax.set_ylabel("y")
    assert plots.figure_problems(fig) == []
    ax.scatter([0, 1], [1, 2])
    assert plots.figure_problems(fig) == ["axes 0 ('t') draws 2 series but has no legend"]
    plt.close("all")


def test_kit_style_reads_on_a_projector():
    plots.use_kit_style()
    assert matplotlib.rcParams["figure.dpi"] >= 120 and matplotlib.rcParams["font.size"] >= 10


CHECK_CALLS = re.compile(r"\b(outputs\.check|committed\.check_against_seeds|committed\.compare_with_committed)\(")


@pytest.mark.parametrize("path", REPLICATION, ids=lambda p: p.name)
def test_every_result_of_a_replication_notebook_is_interpreted(path):
    """Every code cell that prints or draws (before the exercises) is followed by prose, after the
    cells that only check its numbers; each method's notebook and the report say why each verdict is
    what it is."""
    cells = _cells(path)
    end = next(i for i, (c, text) in enumerate(cells) if c["cell_type"] == "markdown" and text.startswith("## Exercises"))
    for i in range(3, end):   # after the title, install and parameters cells
        c, text = cells[i]
        if c["cell_type"] != "code" or not c.get("outputs") or CHECK_CALLS.search(text):
            continue
        j = i + 1
        while cells[j][0]["cell_type"] == "code" and (CHECK_CALLS.search(cells[j][1]) or not cells[j][0].get("outputs")):
            j += 1   # cells that only check its numbers, or print nothing here
        assert cells[j][0]["cell_type"] == "markdown", f"cell {i} prints or draws a result, and cell {j} after it is not prose"
    if path.name[:2] in {"13", "14", "15", "16", "17", "20"}:
        assert any(text.startswith("## Why this verdict") for c, text in cells if c["cell_type"] == "markdown")
