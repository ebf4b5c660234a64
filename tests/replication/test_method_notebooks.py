"""The method notebooks 11 and 13-17 run end to end at small sizes with papermill: every code path,
figure check and committed-number check cell (which says "nothing compared" away from the defaults).
nbval at the defaults is `make test-notebooks` (notebooks/conftest.py). About 3 minutes on 2 cores
(the embedded SFT model is cached by then)."""
import json
from pathlib import Path

import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SMALL = {
    "11_dpo_baselines": {"n_prompts": 240, "n_eval": 40, "n_offline": 120},
    "13_spa": {"n_prompts": 240, "n_eval": 40},
    "14_spa_judges_and_ablations": {"n_prompts": 240, "n_eval": 40, "rm_prompts": 200},
    "15_sera": {"n_prompts": 120, "n_eval": 40},
    "16_sr_dpo": {"n_prompts": 240, "n_eval": 40},
    "17_dro_dpo": {"n_prompts": 600, "n_eval": 40, "n_offline": 200},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_method_notebook_runs_end_to_end_at_small_sizes(tmp_path, name):
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters={**SMALL[name], "out_dir": str(tmp_path)},
                               cwd=str(NOTEBOOKS), progress_bar=False)
    printed = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    assert "parameters differ from the committed run: nothing compared" in printed
    assert (tmp_path / "metrics.json").exists()
