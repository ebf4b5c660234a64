"""The package's folders are its layers, and imports go down only. Read from the source (no
import), so a broken rule fails here with the file, the line and the import that breaks it."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prefalign_lite"

# Each layer and the layers it may import. ``objectives.py`` is the public face of ``core``; the
# command line (``__main__.py``) is the top and may import anything.
MAY_IMPORT = {
    "core": set(),
    "sandbox": {"core"},
    "world": {"core"},
    "engine": {"core"},
    "settings": {"core", "world", "engine"},
    "methods": {"core", "engine", "settings"},
    "replication": {"core", "world", "engine", "settings", "methods"},
    "bench": {"core", "engine"},
    "notebook": {"core", "replication"},
}
TOP = {"objectives.py": "core", "__init__.py": "core"}


def layer_of(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package)
    return TOP.get(rel.as_posix(), rel.parts[0]) if len(rel.parts) == 1 else rel.parts[0]


def imported_layers(path: Path, package: Path = PACKAGE) -> list[tuple[int, str, str]]:
    """``(line, module as written, layer it belongs to)`` for each import of the package's own code
    in ``path`` (top-level or inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(package)
    here = list(rel.parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [a.name] for a in node.names] if not node.module else [target]
            elif node.module and node.module.split(".")[0] == "prefalign_lite":
                target = node.module.split(".")[1:]
                names = [target + [a.name] for a in node.names] if not target else [target]
            else:
                continue
            for parts in names:
                found.append((node.lineno, ".".join(parts), _layer(parts, package)))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "prefalign_lite" and len(parts) > 1:
                    found.append((node.lineno, alias.name, _layer(parts[1:], package)))
    return found


def _layer(parts: list[str], package: Path) -> str:
    if not parts:
        return "core"
    head = parts[0]
    if (package / head).is_dir():
        return head
    return TOP.get(f"{head}.py", head)


def violations(package: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        own = layer_of(path, package)
        for line, module, layer in imported_layers(path, package):
            if layer != own and layer not in MAY_IMPORT.get(own, set()):
                out.append(f"{path.relative_to(package)}:{line}: {own} imports {module} ({layer})")
    return out


def test_every_file_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        assert len(rel.parts) == 1 and rel.name in (*TOP, "__main__.py") or rel.parts[0] in MAY_IMPORT, rel


def test_imports_go_down_only():
    assert violations() == []


def test_the_engine_and_the_methods_never_import_the_world():
    found = [f"{p.relative_to(PACKAGE)}:{line} {module}" for p in sorted(PACKAGE.rglob("*.py"))
             if layer_of(p) in ("engine", "methods") for line, module, layer in imported_layers(p) if layer == "world"]
    assert found == []


def test_nothing_in_the_package_imports_the_bench_or_the_notebook_helpers():
    found = [f"{p.relative_to(PACKAGE)}:{line} {module}" for p in sorted(PACKAGE.rglob("*.py"))
             if p.name != "__main__.py" and layer_of(p) not in ("bench", "notebook")
             for line, module, layer in imported_layers(p) if layer in ("bench", "notebook")]
    assert found == []


@pytest.mark.parametrize("planted, expected", [
    ("from ..methods import spa\n", "engine imports methods (methods)"),
    ("from prefalign_lite.world import tiny\n", "engine imports world (world)"),
    ("def f():\n    from ..replication.report import tables\n", "engine imports replication.report (replication)"),
    ("import prefalign_lite.settings.base\n", "engine imports prefalign_lite.settings.base (settings)"),
])
def test_a_planted_upward_import_is_caught(tmp_path, planted, expected):
    import shutil

    copy = tmp_path / "prefalign_lite"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "toy_results"))
    (copy / "engine" / "planted.py").write_text(planted)
    found = violations(copy)
    assert len(found) == 1 and found[0].startswith("engine/planted.py:") and expected in found[0], found


def test_the_package_names_its_stages_only_in_the_registry():
    import re

    stage = re.compile(r"\b(11_dpo|13_spa|14_spa|15_sera|16_sr_dpo|17_dro)")
    named = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if stage.search(p.read_text()))
    assert named == ["methods/experiments.py"]
