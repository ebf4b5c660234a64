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
    assert deps <= set(binder), f"binder/requirements.txt misses {deps - set(binder)}"
    assert deps <= set(constraints), f"constraints.txt misses {deps - set(constraints)}"
    for name in deps:
        assert binder[name] == constraints[name], f"{name}: binder pins {binder[name]}, constraints {constraints[name]}"
    assert "download.pytorch.org/whl/cpu" in (ROOT / "binder" / "requirements.txt").read_text()
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make replicate" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
