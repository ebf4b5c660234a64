"""The environments agree: binder and the constraints file pin every dependency pyproject names; the
base install holds what the notebooks import, and the extras hold the rest. (About 15 s: one
subprocess imports every module of the kit and every module the notebooks import.)"""
import json
import re
import subprocess
import sys
from pathlib import Path

from distributions import BLOCKER, applies, hidden_modules
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_binder_and_constraints_pin_every_dependency_identically():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    deps = {_name(r) for r in named if applies(Requirement(r))}
    binder, constraints = _pins(ROOT / "binder" / "requirements.txt"), _pins(ROOT / "constraints.txt")
    assert deps <= set(constraints), f"constraints.txt misses {deps - set(constraints)}"
    # binder pins exactly what constraints.txt pins: every line, no more, no less
    assert binder == constraints, (f"binder/requirements.txt and constraints.txt differ: only in binder "
                                   f"{sorted(set(binder.items()) - set(constraints.items()))}, only in constraints "
                                   f"{sorted(set(constraints.items()) - set(binder.items()))}")
    assert all(version for version in binder.values()), "every binder line is an exact pin (name==version)"
    options = [line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
               if line.strip().startswith("-")]
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111


def test_the_pin_reader_sees_every_pin_and_skips_options_and_comments(tmp_path):
    path = tmp_path / "pins.txt"
    path.write_text("# comment\n--extra-index-url x\ntorch==2.13.0\n\nAccelerate==1.15.0  # note\ntqdm\n")
    assert _pins(path) == {"torch": "2.13.0", "accelerate": "1.15.0", "tqdm": ""}


def test_release_version_address_and_package_data():
    import prefalign_lite

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = config["project"]
    assert "version" in project.get("dynamic", []) and "version" not in project
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "prefalign_lite.__version__"}
    assert prefalign_lite.__version__.count(".") == 2
    data = config["tool"]["setuptools"]["package-data"]["prefalign_lite"]
    shipped = {p for pattern in data for p in (ROOT / "prefalign_lite").glob(pattern)}
    committed = {p for folder in ("toy_results", "toy_results_avx2")
                 for p in (ROOT / "prefalign_lite" / folder).rglob("*") if p.is_file()}
    assert shipped == committed, f"package data misses {sorted(committed - shipped)}"


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make replicate" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


BASE = {"torch", "transformers", "tokenizers", "trl", "peft", "accelerate", "datasets", "scipy", "numpy", "matplotlib",
        "tqdm", "pyyaml"}


def test_the_base_install_is_what_the_notebooks_import_and_the_extras_add_the_rest():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {_name(r) for r in project["dependencies"]} == BASE
    extras = {name: {_name(r) for r in reqs} for name, reqs in project["optional-dependencies"].items()}
    assert extras["pipeline"] == {"papermill", "ipykernel", "jupyterlab"}
    assert extras["gpu"] == {"bitsandbytes"}
    assert {"pytest", "nbval", "papermill", "ipykernel", "bitsandbytes"} <= extras["dev"]
    assert not BASE & set().union(*extras.values()), "an extra repeats a base dependency"


def _notebook_imports() -> list[str]:
    """``import X`` and ``from X import a`` statements of every notebook's code cells, as written."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                found += [line.strip() for line in "".join(cell["source"]).splitlines()
                          if re.match(r"\s*(import|from)\s+\w", line) and "google.colab" not in line]
    return sorted(set(found))


def test_every_notebook_import_and_every_module_of_the_kit_work_without_the_extras(tmp_path):
    hidden = sorted(hidden_modules())
    assert {"bitsandbytes", "papermill", "nbval", "jupyterlab", "pytest"} <= set(hidden)
    statements = _notebook_imports()
    assert any("methods.session" in s for s in statements) and any("sandbox" in s for s in statements), statements
    script = BLOCKER.format(names=hidden) + """
import importlib, pkgutil
import prefalign_lite
for statement in STATEMENTS:
    exec(statement, {})
failed = []
for info in pkgutil.walk_packages(prefalign_lite.__path__, "prefalign_lite."):
    try:
        importlib.import_module(info.name)
    except ImportError as err:
        failed.append(f"{info.name}: {err}")
print("\\n".join(failed) or "all imported")
""".replace("STATEMENTS", repr(statements))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1",
                               "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "all imported", done.stdout
