"""What an install of the kit with given extras brings, read from pyproject.toml and the metadata of
the distributions installed here: used to hide everything else from a subprocess, so a test can show
that the base install (or one extra) is enough for a notebook."""
import importlib.metadata as metadata
import re
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def applies(requirement: Requirement, extra: str = "") -> bool:
    """Whether ``requirement``'s marker holds here (for ``extra``, when it names one)."""
    return requirement.marker is None or requirement.marker.evaluate({**default_environment(), "extra": extra})


def kit_requirements(extras: tuple[str, ...] = ()) -> list[Requirement]:
    """The requirements ``pip install prefalign-lite[extras]`` installs directly, markers applied."""
    config = project()
    named = list(config["dependencies"]) + [r for extra in extras for r in config["optional-dependencies"][extra]]
    return [r for r in map(Requirement, named) if applies(r)]


def closure(requirements: list[Requirement]) -> set[str]:
    """Every installed distribution ``requirements`` pull in, following the installed metadata
    (canonical names; requirements whose marker does not hold here, or that are not installed, are
    skipped)."""
    seen: set[str] = set()
    todo = [(r, "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        name = canonical(requirement.name)
        if not applies(requirement, extra) or name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in dist.requires or []:
            sub = Requirement(line)
            for wanted in requirement.extras or {""}:
                todo.append((sub, wanted))
    return seen


def top_level_modules(distributions: set[str]) -> set[str]:
    """The importable top-level module names of installed ``distributions``."""
    modules = set()
    for module, owners in metadata.packages_distributions().items():
        if any(canonical(owner) in distributions for owner in owners) and module.isidentifier():
            modules.add(module)
    return modules


def hidden_modules(extras: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> set[str]:
    """Top-level modules of the distributions the kit's extras add that ``prefalign-lite[extras]``
    (plus ``keep``, e.g. the Jupyter kernel Colab brings) does not pull in."""
    every_extra = tuple(project()["optional-dependencies"])
    installed = closure(kit_requirements(extras)) | closure([Requirement(k) for k in keep])
    added = {canonical(r.name) for r in kit_requirements(every_extra)} - installed
    return top_level_modules(added) - top_level_modules(installed)


BLOCKER = """import sys
for _name in {names!r}:
    sys.modules[_name] = None  # import raises ModuleNotFoundError; importlib.util.find_spec says absent
"""
