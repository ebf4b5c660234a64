"""The config schema: every key, type and range is checked before anything runs, against the
parameters each notebook declares in its parameters cell (default, kind, range, meaning)."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from prefalign_lite.replication import config as C
from prefalign_lite.replication.runner import ordered_notebooks

ROOT = Path(__file__).resolve().parents[2]
KIT_NOTEBOOKS = ROOT / "notebooks"


def _notebook(path: Path, params: str) -> None:
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[cell, new_code_cell("pass")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture()
def books(tmp_path, monkeypatch):
    """Two small notebooks: one with parameters that declare no kind or range (``sleep``, ``fail``),
    one whose parameters all declare theirs."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "31_first.ipynb", 'seed = 0  # int [0, inf): seed\nout_dir = ""  # path: stage folder\n'
                                         'sleep = 0.0\nfail = False  # a comment, not a declaration')
    _notebook(folder / "32_second.ipynb", 'seed = 0  # int [0, inf): seed\nbeta = 0.5  # float (0, inf): KL strength\n'
                                          'n_prompts = 10  # int [1, inf): prompts\n'
                                          'flip_rates = [0.2]  # floats+ [0, 1): flipped shares\nlr = 0.1  # float (0, inf): rate')
    monkeypatch.setattr(C, "NOTEBOOKS", folder)
    return folder


def _config(tmp_path, second=None, file="cfg.yaml", **top):
    raw = {"name": "t", "seeds": [0, 1], "stages": [{"notebook": "31_first"},
                                                     {"notebook": "32_second", "parameters": second or {}}], **top}
    path = tmp_path / file
    path.write_text(yaml.safe_dump(raw))
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "prefalign_lite", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PREFALIGN_NOTEBOOKS": str(KIT_NOTEBOOKS)})


def test_the_kit_configs_are_valid():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = C.load_config(path)
        assert cfg.stages and cfg.seeds, path


def test_every_notebook_parameter_declares_its_kind_range_and_meaning_and_its_default_is_allowed():
    notebooks = ordered_notebooks(KIT_NOTEBOOKS)
    assert len(notebooks) >= 14
    undeclared = {}
    for nb in notebooks:
        for name, d in C.declared_parameters(nb).items():
            if d.param is None:
                undeclared.setdefault(nb.stem, []).append(name)
                continue
            assert d.param.problem(d.default) is None, (nb.stem, name, d.default)
            assert d.param.meaning, (nb.stem, name)
    assert not undeclared, f"give these parameters a '# kind [range]: meaning' comment: {undeclared}"


@pytest.mark.parametrize("help_text, allowed", [
    ("float (0, inf): KL strength", "a number > 0"),
    ("int [1, inf): prompts", "an integer >= 1"),
    ("float [0, 1): flipped share", "a number in [0, 1)"),
    ("float (0, 0.5]: floor", "a number in (0, 0.5]"),
    ("floats+ [0, 1): flip shares", "a non-empty list of distinct numbers, each in [0, 1)"),
    ("float (-inf, inf): bias", "a number (any finite value)"),
    ("bool: a switch", "true or false"),
    ("path: a folder", 'text (a path; "" = none)'),
])
def test_a_declaration_in_a_help_comment_gives_the_allowed_values(help_text, allowed):
    param = C.parse_help("x", help_text)
    assert param.allowed == allowed and param.meaning == help_text.split(": ", 1)[1]


def test_a_comment_that_is_no_declaration_is_left_alone():
    assert C.parse_help("x", "a plain remark") is None
    assert C.parse_help("x", "colour (0, 1): not a kind") is None
    assert C.parse_help("x", "") is None


def test_the_parameter_table_comes_from_the_notebook():
    table = C.parameter_table(KIT_NOTEBOOKS / "13_spa.ipynb")
    assert "| `beta` | `0.1` | a number > 0 | KL strength beta of the DPO-family losses |" in table


@pytest.mark.parametrize("change, message", [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"seeds": "0 1"}, "'seeds' must be list"),
    ({"seeds": []}, r"'seeds': must be a non-empty list of integers >= 0, got \[\]"),
    ({"seeds": [0, 1, 0]}, r"'seeds': seed\(s\) \[0\] appear more than once in \[0, 1, 0\]"),
    ({"seeds": [0, -1]}, r"'seeds': element 1 \(-1\) is not an integer >= 0"),
    ({"seeds": [0, 1.5]}, r"'seeds': element 1 \(1.5\) is not an integer >= 0"),
    ({"seeds": [True]}, r"'seeds': element 0 \(True\) is not an integer >= 0"),
    ({"name": "  "}, "'name' is empty"),
    ({"name": 3}, "'name' must be str, got 3"),
    ({"model": ""}, "'model' is empty; use null for the embedded tiny model"),
    ({"model": "./no/such/model"}, "does not exist"),
    ({"model": "not a hub id"}, "neither an existing folder nor a hub id"),
    ({"stages": []}, "'stages' is empty"),
    ({"stages": ["31_first"]}, r"stages\[0\]: must be a mapping with 'notebook', got '31_first'"),
    ({"stages": [{"notebook": "31_first.ipynb"}]}, r"no notebook 31_first.ipynb.ipynb .*write the name without '.ipynb'"),
    ({"stages": [{"notebook": "31_first"}, {"notebook": "31_first"}]}, "notebook 31_first appears twice"),
    ({"stages": [{"notebook": "31_first", "per_seed": "yes"}]}, "'per_seed' must be bool, got 'yes'"),
    ({"stages": [{"notebook": "31_first", "after": "32_second"}]}, "'after' must be list, got '32_second'"),
    ({"stages": [{"notebook": "31_first", "after": [3]}]}, r"'after' must be a list of notebook names, got \[3\]"),
    ({"stages": [{"notebook": "31_first", "after": ["32_second"]}, {"notebook": "32_second"}]},
     r"stages\[0\] \(31_first\): 'after' names '32_second', which is not an earlier stage \(earlier: none\)"),
])
def test_bad_top_level_config_fails_before_running(books, tmp_path, change, message):
    with pytest.raises(C.ConfigError, match=message) as info:
        C.load_config(_config(tmp_path, **change))
    assert str(tmp_path / "cfg.yaml") in str(info.value)


@pytest.mark.parametrize("content, message", [
    ("", "the top level must be a mapping, the file is empty"),
    ("- a\n- b\n", "the top level must be a mapping, the file is a list"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_unreadable_config_files(tmp_path, content, message):
    path = tmp_path / "cfg.yaml"
    path.write_text(content)
    with pytest.raises(C.ConfigError, match=message):
        C.load_config(path)
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(C.ConfigError, match="not UTF-8 text"):
        C.load_config(path)
    with pytest.raises(C.ConfigError, match="is a folder, not a config file"):
        C.load_config(tmp_path)
    with pytest.raises(C.ConfigError, match="no such config file"):
        C.load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("second, message", [
    ({"speed": 1}, "has no parameter 'speed'"),
    ({"seed": 3}, "set by the pipeline"),
    ({"beta": 0}, r"parameter 'beta' = 0 is not allowed \(outside \(0, inf\)\); it must be a number > 0"),
    ({"beta": -0.1}, r"'beta' = -0.1 is not allowed \(outside \(0, inf\)\)"),
    ({"beta": float("nan")}, r"'beta' = nan is not allowed \(not finite\)"),
    ({"beta": "0.1"}, r"'beta' = '0.1' is not allowed \(not a number but str"),
    ({"lr": "1e-3"}, r"YAML reads '1e-3' as text; write numbers with a dot"),
    ({"n_prompts": 0}, r"'n_prompts' = 0 is not allowed \(outside \[1, inf\)\); it must be an integer >= 1"),
    ({"n_prompts": 10.5}, r"'n_prompts' = 10.5 is not allowed \(not an integer\)"),
    ({"n_prompts": True}, r"'n_prompts' = True is not allowed \(not a number but bool\)"),
    ({"n_prompts": None}, r"'n_prompts' = None is not allowed \(not a number but NoneType\)"),
    ({"flip_rates": []}, r"'flip_rates' = \[\] is not allowed \(an empty list\)"),
    ({"flip_rates": [0.2, 1.0]}, r"'flip_rates' = \[0.2, 1.0\] is not allowed \(element 1 \(1.0\) outside \[0, 1\)\)"),
    ({"flip_rates": [0.2, 0.2]}, r"\(repeated values \[0.2\]\)"),
    ({"flip_rates": 0.2}, r"'flip_rates' = 0.2 is not allowed \(not a list but float\)"),
])
def test_bad_stage_parameters_fail_before_running(books, tmp_path, second, message):
    with pytest.raises(C.ConfigError, match=message) as info:
        C.load_config(_config(tmp_path, second))
    assert f"{tmp_path / 'cfg.yaml'}: stages[1] (32_second)" in str(info.value)


def test_unregistered_parameter_of_a_users_notebook_is_type_checked(books, tmp_path, caplog):
    with pytest.raises(C.ConfigError, match=r"parameter 'sleep' must be float like its default 0.0, got 'long'"):
        C.load_config(_config(tmp_path, file="a.yaml", stages=[{"notebook": "31_first", "parameters": {"sleep": "long"}}]))
    cfg = C.load_config(_config(tmp_path, file="b.yaml", stages=[{"notebook": "31_first", "parameters": {"sleep": 2}}]))
    assert cfg.stages[0].parameters == {"sleep": 2}
    assert "parameter 'sleep' has no 'kind [range]: meaning' comment" in caplog.text


def test_a_notebook_default_outside_its_range_is_refused(books, tmp_path):
    _notebook(books / "33_bad_default.ipynb", "seed = 0  # int [0, inf): seed\nbeta = 0.0  # float (0, inf): KL strength")
    with pytest.raises(C.ConfigError, match=r"stages\[0\] \(33_bad_default\): parameter 'beta' = 0.0 \(the default in "
                                            r"33_bad_default's parameters cell\) is not allowed \(outside \(0, inf\)\)"):
        C.load_config(_config(tmp_path, stages=[{"notebook": "33_bad_default", "parameters": {"beta": 0.5}}]))


def test_valid_values_at_the_edges_pass(books, tmp_path):
    cfg = C.load_config(_config(tmp_path, {"beta": 1, "n_prompts": 1, "flip_rates": [0.0, 0.99], "lr": 1.0e-3}))
    assert cfg.stages[1].parameters["flip_rates"] == [0.0, 0.99]


def test_check_seeds_for_a_command_line_override():
    assert C.check_seeds([2, 0]) == [2, 0]
    with pytest.raises(C.ConfigError, match=r"--seeds: seed\(s\) \[1\] appear more than once"):
        C.check_seeds([1, 1], "--seeds")


def test_local_model_folder_is_accepted(books, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert C.load_config(_config(tmp_path, model=str(tmp_path / "m"))).model == str(tmp_path / "m")
    assert C.load_config(_config(tmp_path, model="Qwen/Qwen2.5-0.5B-Instruct")).model.startswith("Qwen")


@pytest.mark.parametrize("parameters, expected", [
    ({"n_prompts": 0}, ["stages[0] (13_spa)", "'n_prompts' = 0", "outside [4, inf)", "an integer >= 4"]),
    ({"beta": 0}, ["stages[0] (13_spa)", "'beta' = 0", "outside (0, inf)", "a number > 0"]),
])
def test_cli_check_refuses_an_out_of_range_value_and_leaves_out_untouched(tmp_path, parameters, expected):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"name": "bad", "stages": [{"notebook": "13_spa", "parameters": parameters}]}))
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    result = _cli("run", "--config", str(cfg), "--out", str(out), "--check")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {cfg}: ")
    for part in expected:
        assert part in result.stderr, (part, result.stderr)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before
    if "n_prompts" in parameters:  # without --check too: nothing runs, no folder is made
        fresh = tmp_path / "fresh"
        assert _cli("run", "--config", str(cfg), "--out", str(fresh)).returncode == 2 and not fresh.exists()


def test_cli_refuses_repeated_seeds():
    done = subprocess.run([sys.executable, "-m", "prefalign_lite", "run", "--config", "configs/toy.yaml", "--seeds", "0", "0",
                           "--check"], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2 and "--seeds: seed(s) [0] appear more than once in [0, 0]" in done.stderr
