"""Numbers that notebooks quote in their prose must match the outputs they quote (the convention of
prefalign_lite.notebook.quotes). (About 0.5 s: reads the committed notebooks.)"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from prefalign_lite.notebook import quotes

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _notebook(markdown: str, printed: str) -> dict:
    return {"cells": [{"cell_type": "code", "source": "print(...)", "metadata": {},
                       "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}]},
                      {"cell_type": "markdown", "source": markdown, "metadata": {}}]}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_quoted_number_matches_the_committed_outputs(path):
    assert quotes.problems(json.loads(path.read_text()), path.name) == []


def test_the_sandbox_and_world_notebooks_quote_their_numbers():
    counts = {p.name[:2]: len(quotes.quotes_in(json.loads(p.read_text()))) for p in NOTEBOOKS}
    assert all(counts[n] >= 5 for n in ("00", "01", "02", "03", "04", "05", "10")), counts


def test_a_planted_change_in_the_prose_fails_with_its_place_and_the_printed_line():
    path = ROOT / "notebooks" / "02_spa_self_refinement.ipynb"
    nb = json.loads(path.read_text())
    assert quotes.problems(nb, path.name) == []
    planted = copy.deepcopy(nb)
    cell = next(i for i, c in enumerate(planted["cells"]) if '<span data-check="lambda 0.000; recall">0.354</span>' in "".join(c["source"]))
    source = "".join(planted["cells"][cell]["source"])
    planted["cells"][cell]["source"] = source.replace(
        '<span data-check="lambda 0.000; recall">0.354</span>', '<span data-check="lambda 0.000; recall">0.279</span>', 1)
    assert quotes.problems(planted, path.name) == [
        f"02_spa_self_refinement.ipynb cell {cell}: quote '0.279': no number on the printed lines with "
        "'lambda 0.000; recall' rounds to it; they print: lambda 0.000 (plain     ): precision 0.988  recall 0.354"]


def test_the_command_line_checks_files_and_fails_on_a_mismatch(tmp_path):
    good = tmp_path / "good.ipynb"
    good.write_text(json.dumps(_notebook('recall <span data-check="recall">0.35</span>', "precision 0.988 recall 0.354\n")))
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(_notebook('recall <span data-check="recall">0.36</span>', "precision 0.988 recall 0.354\n")))
    done = subprocess.run([sys.executable, "-m", "prefalign_lite.notebook.quotes", str(good)], capture_output=True, text=True)
    assert done.returncode == 0 and "1 of 1 quoted numbers match their outputs" in done.stderr
    done = subprocess.run([sys.executable, "-m", "prefalign_lite.notebook.quotes", str(good), str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "bad.ipynb cell 1: quote '0.36'" in done.stderr


def test_a_notebook_without_quotes_has_no_problems():
    assert quotes.problems(_notebook("a 0.354 that quotes nothing, Eq. 7, K = 10%", "recall 0.354\n")) == []
    assert quotes.problems({"cells": []}) == []


@pytest.mark.parametrize("shown, printed", [
    ("0.354", "recall 0.354"), ("0.35", "recall 0.354"), ("0.99", "precision 0.988"), ("36%", "share 0.359"),
    ("36%", "share 35.9%"), ("-0.4", "change [0.2, -0.4, 0.0]"), ("+0.179", "gain +0.179"), ("x208", "largest x208"),
    ("4,000", "pairs 4000"), ("25", "flagged 25 of 50"), ("0.0", "difference -0.000"), ("1e-12", "floor 1e-12"),
])
def test_a_quote_matches_a_printed_number_that_rounds_to_it(shown, printed):
    assert quotes.problems(_notebook(f'<span data-check="{printed.split()[0]}">{shown}</span>', printed + "\n")) == []


@pytest.mark.parametrize("shown, printed", [
    ("0.355", "recall 0.354"), ("0.36", "recall 0.354"), ("35%", "share 0.359"), ("0.4", "change [0.2, -0.4]"),
    ("24", "flagged 25 of 50"),
])
def test_a_quote_that_rounds_differently_fails(shown, printed):
    (problem,) = quotes.problems(_notebook(f'<span data-check="{printed.split()[0]}">{shown}</span>', printed + "\n"))
    assert f"quote {shown!r}: no number on the printed lines with" in problem


def test_the_words_must_all_be_on_one_printed_line():
    printed = "lambda 0.000 (plain): precision 0.988  recall 0.354\nlambda 0.500: precision 0.990  recall 0.401\n"
    assert quotes.problems(_notebook('<span data-check="lambda 0.000; recall">0.354</span>', printed)) == []
    (problem,) = quotes.problems(_notebook('<span data-check="lambda 0.000; recall">0.401</span>', printed))
    assert "no number on the printed lines with 'lambda 0.000; recall' rounds to it" in problem
    (problem,) = quotes.problems(_notebook('<span data-check="lambda 9">0.354</span>', printed))
    assert problem == "notebook cell 1: quote '0.354': no printed line contains 'lambda 9'"


def test_results_and_displays_count_as_printed_lines():
    nb = _notebook('<span data-check="True">1</span> and <span data-check="size">780</span>', "")
    nb["cells"][0]["outputs"] = [{"output_type": "execute_result", "data": {"text/plain": "1 True"}, "metadata": {}},
                                 {"output_type": "display_data", "data": {"text/plain": "<Figure size 780x455>"}, "metadata": {}}]
    assert quotes.problems(nb) == []


def test_malformed_quotes_are_named():
    found = quotes.problems(_notebook('<span data-check="">0.3</span> <span data-check="recall">about 0.3</span>', "recall 0.3\n"))
    assert found == ["notebook cell 1: quote '0.3' has an empty data-check; name the printed line it comes from",
                     "notebook cell 1: quote 'about 0.3' must be one number, e.g. 0.354, -0.4, 36% or x208"]
