"""The environments agree: binder and the constraints file pin every dependency pyproject names."""
import re
from pathlib import Path

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
    deps = {_name(r) for r in project["dependencies"]}
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
