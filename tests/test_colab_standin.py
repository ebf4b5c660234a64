"""A stand-in for Colab: the kit as a user gets it there, without the repository.

Build the wheel from a copy of the sources, create a fresh virtual environment in a temporary
folder, install the wheel there (offline: ``--no-deps --no-index``; its pinned dependencies are
borrowed from the test's own environment through a ``.pth`` file, so nothing is downloaded), copy
notebooks 00, 01 and 20 into an empty folder and run them there with papermill on that
environment's own kernel.
Inside each run an extra last cell reports where ``prefalign_lite`` was imported from, so the test
can tell the installed wheel from the checkout. The printed outputs must equal the committed ones.

One environment serves all three notebooks; on 2 CPU cores about 10 s to build and install and
30 s to run the notebooks.
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

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("00_quickstart.ipynb", "01_bradley_terry_and_dpo.ipynb", "20_replication_report.ipynb")
MARK = "STANDIN-KIT-AT"


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
    return [_sanitize("".join("".join(o.get("text", "")) for o in c.get("outputs", []) if o.get("output_type") == "stream"))
            for c in cells if c["cell_type"] == "code"]


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
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile", "--no-deps",
          "--no-index", wheel])
    import sysconfig

    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv, python


def _with_location_cell(path: Path, out: Path) -> None:
    """Copy a notebook, adding a last cell that prints where the kit and the kernel live."""
    nb = json.loads(path.read_text())
    probe = ("import sys, prefalign_lite\n"
             f"print('{MARK}', prefalign_lite.__file__)\n"
             f"print('{MARK}-PYTHON', sys.executable)\n"
             f"print('{MARK}-VERSION', prefalign_lite.__version__)")
    nb["cells"].append({"cell_type": "code", "metadata": {}, "source": probe, "outputs": [],
                        "execution_count": None, "id": "standin-probe"})
    out.write_text(json.dumps(nb))


def test_notebooks_run_from_the_installed_wheel_in_an_empty_folder(fresh_install, tmp_path):
    venv, python = fresh_install
    work = tmp_path / "empty_folder"
    work.mkdir()
    for name in NOTEBOOKS:
        _with_location_cell(ROOT / "notebooks" / name, work / name)
    runner = ("import sys, papermill\n"
              "for name in sys.argv[1:]:\n"
              "    papermill.execute_notebook(name, 'ran_' + name, kernel_name='python3', progress_bar=False)\n")
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path / "home"),
           "MPLCONFIGDIR": str(tmp_path / "mpl"), "LANG": "C.UTF-8"}
    _run([python, "-c", runner, *NOTEBOOKS], cwd=work, env=env, timeout=900)

    import prefalign_lite

    for name in NOTEBOOKS:
        ran = json.loads((work / f"ran_{name}").read_text())["cells"]
        probe = _printed(ran)[-1]
        kit_at = re.search(rf"^{MARK} (.*)$", probe, re.M).group(1)
        assert Path(kit_at).resolve().is_relative_to(venv.resolve()), f"{name} imported the kit from {kit_at}"
        assert not Path(kit_at).resolve().is_relative_to(ROOT), f"{name} imported the checkout"
        assert re.search(rf"^{MARK}-PYTHON {re.escape(str(venv))}", probe, re.M), f"{name} ran on another kernel: {probe}"
        assert f"{MARK}-VERSION {prefalign_lite.__version__}" in probe
        committed = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
        assert _printed(ran)[:-1] == _printed(committed), f"{name}: printed outputs differ from the committed ones"

    report = "".join(_printed(json.loads((work / "ran_20_replication_report.ipynb").read_text())["cells"]))
    assert "11_dpo_baselines               seeds [0, 1, 2, 3, 4]" in report, "notebook 20 found the packaged toy run"
    assert "| data expansion beats DPO on the seed | 0.034 [0.026, 0.042] | 0.007 | reproduced |" in report
