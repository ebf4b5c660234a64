"""A stand-in for Colab: the kit as a user gets it there, without the repository.

Build the wheel from a copy of the sources, create a fresh virtual environment in a temporary
folder, install the wheel there (offline: ``--no-deps --no-index``; its pinned dependencies are
borrowed from the test's own environment through a ``.pth`` file, so nothing is downloaded), copy
notebooks 00, 01, 10 and 20 into an empty folder and run them there with papermill on that
environment's own kernel.

Each notebook's install cell names the extras it installs on Colab (none for these four). The
borrowed environment holds every extra, so an extra first cell hides from the kernel every module
that ``pip install prefalign-lite[<those extras>]`` would not bring (papermill, nbval, jupyterlab,
bitsandbytes, pytest: Colab's own kernel, ipykernel, stays), and an extra last cell reports where
``prefalign_lite`` was imported from, so the test can tell the installed wheel from the checkout.
The printed outputs must equal the committed ones, except those of cells that nbval does not compare
either (trained numbers, checked within a tolerance by the cell after them).

One environment serves all four notebooks; on 2 CPU cores about 10 s to build and install and
40 s to run the notebooks (notebook 10 reuses the cached SFT model of the other tests).
"""
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from distributions import BLOCKER, hidden_modules

from prefalign_lite.core.files import cache_root

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("00_quickstart.ipynb", "01_bradley_terry_and_dpo.ipynb", "10_synthetic_world_and_sft.ipynb",
             "20_replication_report.ipynb")
MARK = "STANDIN-KIT-AT"
INSTALL = re.compile(r'%pip install -q -c \S+/constraints-colab\.txt '
                     r'"prefalign-lite(?:\[(?P<extras>[\w,]+)\])? @ git\+https://github\.com/[\w.-]+/[\w.-]+@v[\d.]+"')


def _run(cmd, **kwargs):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _sanitize(text: str) -> str:
    """The same masks nbval uses (notebooks/sanitize.cfg): times, addresses, memory sizes."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "notebooks" / "sanitize.cfg")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text


def _printed(cells) -> list[str]:
    """Each code cell's printed text, sanitized as nbval does; ``None`` for a cell nbval does not compare."""
    return [None if "nbval-ignore-output" in c.get("metadata", {}).get("tags", []) else
            _sanitize("".join("".join(o.get("text", "")) for o in c.get("outputs", []) if o.get("output_type") == "stream"))
            for c in cells if c["cell_type"] == "code"]


def install_extras(nb: dict) -> tuple[str, ...]:
    """The extras a notebook's install cell (cell 1) installs on Colab."""
    match = INSTALL.search("".join(nb["cells"][1]["source"]))
    assert match, "cell 1 must install prefalign-lite from the repository at a release tag"
    return tuple(sorted(match["extras"].split(","))) if match["extras"] else ()


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory):
    """``(venv_dir, python)``: a new environment holding the wheel built from the sources, nothing else
    of the checkout."""
    tmp = tmp_path_factory.mktemp("colab_standin")
    source = tmp / "source"
    shutil.copytree(ROOT / "prefalign_lite", source / "prefalign_lite",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", tmp / "wheels", source])
    wheel = next((tmp / "wheels").glob("prefalign_lite-*.whl"))
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    provided = set(re.findall(r"^Provides-Extra: (\S+)$", meta, re.M))
    assert provided == {"pipeline", "gpu", "dev"}, provided
    base = [line for line in re.findall(r"^Requires-Dist: (.+)$", meta, re.M) if "extra ==" not in line]
    assert not [line for line in base if re.match(r"(papermill|nbval|jupyterlab|ipykernel|bitsandbytes|pytest)\b", line)], base
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile", "--no-deps",
          "--no-index", wheel])
    import sysconfig

    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv, python


def _with_location_cell(path: Path, out: Path) -> tuple[str, ...]:
    """Copy a notebook, adding a first cell that hides what its install cell's extras would not bring
    and a last cell that prints where the kit and the kernel live; return those extras."""
    nb = json.loads(path.read_text())
    extras = install_extras(nb)
    hidden = sorted(hidden_modules(extras, keep=("ipykernel",)))
    assert {"papermill", "nbval", "jupyterlab", "pytest"} <= set(hidden), hidden
    assert ("bitsandbytes" in hidden) == ("gpu" not in extras)
    nb["cells"].insert(0, {"cell_type": "code", "metadata": {}, "source": BLOCKER.format(names=hidden), "outputs": [],
                           "execution_count": None, "id": "standin-hide-extras"})
    probe = ("import sys, prefalign_lite\n"
             f"print('{MARK}', prefalign_lite.__file__)\n"
             f"print('{MARK}-PYTHON', sys.executable)\n"
             f"print('{MARK}-VERSION', prefalign_lite.__version__)")
    probe += "\nimport importlib.util\nprint('" + MARK + "-HIDDEN', importlib.util.find_spec('papermill') is None)"
    nb["cells"].append({"cell_type": "code", "metadata": {}, "source": probe, "outputs": [],
                        "execution_count": None, "id": "standin-probe"})
    out.write_text(json.dumps(nb))
    return extras


@pytest.fixture(scope="module")
def ran(fresh_install, tmp_path_factory):
    """``{notebook: executed cells, or the error that stopped it}``: every notebook of
    :data:`NOTEBOOKS` run once, in one papermill process, from an empty folder."""
    venv, python = fresh_install
    tmp = tmp_path_factory.mktemp("colab_run")
    work = tmp / "empty_folder"
    work.mkdir()
    extras = {name: _with_location_cell(ROOT / "notebooks" / name, work / name) for name in NOTEBOOKS}
    assert extras == {name: () for name in NOTEBOOKS}, f"these notebooks need only the base install on Colab: {extras}"
    runner = ("import sys, papermill\n"
              "for name in sys.argv[1:]:\n"
              "    try:\n"
              "        papermill.execute_notebook(name, 'ran_' + name, kernel_name='python3', progress_bar=False)\n"
              "    except papermill.PapermillExecutionError as err:\n"
              "        open('failed_' + name + '.txt', 'w').write(str(err))\n")
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp / "home"),
           "MPLCONFIGDIR": str(tmp / "mpl"), "LANG": "C.UTF-8", "PREFALIGN_CACHE": str(cache_root()),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    _run([python, "-c", runner, *NOTEBOOKS], cwd=work, env=env, timeout=900)
    failed = {name: (work / f"failed_{name}.txt") for name in NOTEBOOKS}
    return venv, {name: failed[name].read_text() if failed[name].exists() else json.loads((work / f"ran_{name}").read_text())["cells"]
                  for name in NOTEBOOKS}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_run_from_the_installed_wheel_in_an_empty_folder(ran, name):
    import prefalign_lite

    venv, results = ran
    cells = results[name]
    assert not isinstance(cells, str), f"{name} failed from the wheel:\n{cells[-3000:]}"
    probe = _printed(cells)[-1]
    kit_at = re.search(rf"^{MARK} (.*)$", probe, re.M).group(1)
    assert Path(kit_at).resolve().is_relative_to(venv.resolve()), f"{name} imported the kit from {kit_at}"
    assert not Path(kit_at).resolve().is_relative_to(ROOT), f"{name} imported the checkout"
    assert re.search(rf"^{MARK}-PYTHON {re.escape(str(venv))}", probe, re.M), f"{name} ran on another kernel: {probe}"
    assert f"{MARK}-VERSION {prefalign_lite.__version__}" in probe
    assert f"{MARK}-HIDDEN True" in probe, f"{name}: the extras were not hidden from the kernel"
    committed = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    assert _printed(cells)[1:-1] == _printed(committed), f"{name}: printed outputs differ from the committed ones"
    checked = [text for text in _printed(cells) if text and "within tolerance of the committed outputs: True" in text]
    assert (len(checked) > 0) == (name[:2] in ("01", "10")), f"{name}: {checked}"
    if name.startswith("20_"):
        report = "".join(_printed(cells)[1:-1])
        assert "11_dpo_baselines               seeds " + str(list(range(20))) in report, "notebook 20 found the packaged toy run"
        assert "| SPA beats random labels with a 10.0% seed | 0.051 [0.040, 0.062] | 0.024 |" in report
        assert "SPA's gate, pooled over 20 seeds: seed model's win rate 0.503 [0.493, 0.514]" in report


def test_every_install_cell_names_extras_the_package_provides():
    from distributions import project

    from prefalign_lite.notebook import links

    provided = set(project()["optional-dependencies"])
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        extras = install_extras(nb)
        assert set(extras) <= provided - {"dev", "pipeline"}, f"{path.name} installs {extras} on Colab"
        assert extras == links.notebook_extras(nb), path.name
