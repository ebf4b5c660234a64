"""The package's folders are its layers: imports go down only, and the modules of one layer never
import each other in a circle. Read from the source (no import), so a broken rule fails here with
the file, the line and the import that breaks it."""
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
    "replication": {"core", "engine", "settings", "methods"},
    "bench": {"core", "engine"},
    "notebook": {"core", "replication"},
}
TOP = {"objectives.py": "core", "__init__.py": "core"}


def layer_of(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package)
    return TOP.get(rel.as_posix(), rel.parts[0]) if len(rel.parts) == 1 else rel.parts[0]


def imported_layers(path: Path, package: Path = PACKAGE) -> list[tuple[int, str, str]]:
    """``(line, module as written, layer it belongs to)`` for each import of the package's own code
    in ``path`` (top-level or inside a function; ``importlib.import_module`` and ``__import__`` of a
    string literal count as imports)."""
    return [(line, written, _layer(names[0], package)) for line, written, names in _imports(path, package)]


def _imports(path: Path, package: Path) -> list[tuple[int, str, list[list[str]]]]:
    """``(line, module as written, [parts under the package of each module or name it binds])`` for
    each import of the package's own code in ``path``: one per ``from X import ...`` and one per
    imported module otherwise."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = list(path.relative_to(package).parts[:-1])   # the file's package, under prefalign_lite
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = _up(here, node.level) + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "prefalign_lite":
                target = node.module.split(".")[1:]
            else:
                continue
            if node.module and target:
                found.append((node.lineno, ".".join(target), [target + [a.name] for a in node.names]))
            else:
                found += [(node.lineno, ".".join(target + [a.name]), [target + [a.name]]) for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "prefalign_lite" and len(parts) > 1:
                    found.append((node.lineno, alias.name, [parts[1:]]))
        elif isinstance(node, ast.Call):
            dynamic = _dynamic_import(node, here)
            if dynamic is not None:
                found.append((node.lineno, *dynamic))
    return found


def _up(here: list[str], level: int) -> list[str]:
    """The package ``level`` dots name, relative to the package ``here`` (one dot: ``here`` itself)."""
    return here[:len(here) - (level - 1)] if level > 1 else here


def _literal(node, kind):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, kind) else None


def _dynamic_import(call: ast.Call, here: list[str]) -> tuple[str, list[list[str]]] | None:
    """``(module as written, [parts under the package])`` when ``call`` is ``import_module(name[,
    package])`` or ``__import__(name, ..., fromlist, level)`` of the package's own code with a
    string literal ``name``; a relative name is resolved against ``package`` when that is a string
    literal, else against the file's package ``here``."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if called not in ("import_module", "__import__") or not call.args or _literal(call.args[0], str) is None:
        return None
    name = call.args[0].value
    keywords = {k.arg: k.value for k in call.keywords}
    if called == "import_module":
        anchor = call.args[1] if len(call.args) > 1 else keywords.get("package")
        level = len(name) - len(name.lstrip("."))
        fromlist = []
    else:
        anchor = None
        level = _literal(call.args[4] if len(call.args) > 4 else keywords.get("level"), int) or 0
        listed = call.args[3] if len(call.args) > 3 else keywords.get("fromlist")
        fromlist = [_literal(e, str) for e in getattr(listed, "elts", [])]
    rest = [p for p in name.lstrip(".").split(".") if p]
    if level:
        anchor_name = _literal(anchor, str)
        base = here if anchor_name is None else anchor_name.split(".")[1:]
        if anchor_name is not None and anchor_name.split(".")[0] != "prefalign_lite":
            return None
        target = _up(base, level) + rest
    elif rest and rest[0] == "prefalign_lite" and len(rest) > 1:
        target = rest[1:]
    else:
        return None
    return name, [target + [f] for f in fromlist if f] or [target]


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



def _module_file(parts: list[str], package: Path) -> str | None:
    """The file (relative to the package) of the longest prefix of ``parts`` that is a module: the
    module imported, or the one whose name ``from X import name`` binds."""
    for n in range(len(parts), -1, -1):
        if n and (package.joinpath(*parts[:n - 1]) / f"{parts[n - 1]}.py").is_file():
            return "/".join(parts[:n]) + ".py"
        if (package.joinpath(*parts[:n]) / "__init__.py").is_file():
            return "/".join([*parts[:n], "__init__.py"])
    return None


def layer_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """``{file: {file it imports: line of the first such import}}``, both files of one layer (paths
    relative to the package); top-level and function-level imports both count, and ``from . import
    x`` imports module ``x``."""
    graph: dict[str, dict[str, int]] = {}
    for path in sorted(package.rglob("*.py")):
        source, own = path.relative_to(package).as_posix(), layer_of(path, package)
        edges = graph.setdefault(source, {})
        for line, _, names in _imports(path, package):
            for parts in names:
                target = _module_file(parts, package)
                if target not in (None, source) and layer_of(package / target, package) == own:
                    edges.setdefault(target, line)
    return graph


def cycles(package: Path = PACKAGE) -> list[str]:
    """Each import cycle inside one layer, one line per knot of files that import each other:
    ``a.py:LINE -> b.py:LINE -> a.py`` (each file, and the line where it imports the next), then the
    other files of the knot if the cycle shown does not pass through all of them."""
    graph = layer_graph(package)
    out = []
    for knot in _knots(graph):
        start = min(knot)
        path = _shortest_cycle(graph, start, knot)
        shown = " -> ".join(f"{a}:{graph[a][b]}" for a, b in zip(path, path[1:] + [start])) + f" -> {start}"
        rest = sorted(knot - set(path))
        out.append(shown + (f" (and {', '.join(rest)} in the same knot)" if rest else ""))
    return sorted(out)


def _knots(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components of more than one file (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            knot = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                knot.add(member)
                if member == node:
                    break
            if len(knot) > 1:
                found.append(knot)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str, knot: set[str]) -> list[str]:
    """The files of a shortest cycle from ``start`` back to it inside ``knot``, ``start`` first."""
    previous, frontier = {start: None}, [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    path = [node]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return path[::-1]
                if nxt in knot and nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{start} is in a knot but on no cycle")

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
    copy = _copy(tmp_path)
    (copy / "engine" / "planted.py").write_text(planted)
    found = violations(copy)
    assert len(found) == 1 and found[0].startswith("engine/planted.py:") and expected in found[0], found


@pytest.mark.parametrize("planted, expected", [
    ('import importlib\nimportlib.import_module("prefalign_lite.methods.spa")\n',
     "engine/planted.py:2: engine imports prefalign_lite.methods.spa (methods)"),
    ('import importlib\n\ndef f():\n    return importlib.import_module("..methods.spa", __package__)\n',
     "engine/planted.py:4: engine imports ..methods.spa (methods)"),
    ('from importlib import import_module\nimport_module(".spa", "prefalign_lite.methods")\n',
     "engine/planted.py:2: engine imports .spa (methods)"),
    ('tiny = __import__("prefalign_lite.world.tiny")\n',
     "engine/planted.py:1: engine imports prefalign_lite.world.tiny (world)"),
    ('def f():\n    return __import__("settings", globals(), locals(), ["base"], 2)\n',
     "engine/planted.py:2: engine imports settings (settings)"),
])
def test_a_planted_dynamic_import_is_caught(tmp_path, planted, expected):
    copy = _copy(tmp_path)
    (copy / "engine" / "planted.py").write_text(planted)
    assert violations(copy) == [expected]


def test_no_layer_has_an_import_cycle():
    assert cycles() == []


def test_a_planted_cycle_is_caught_with_its_files(tmp_path):
    copy = _copy(tmp_path)
    (copy / "core" / "planted_a.py").write_text("from . import planted_b\n")
    (copy / "core" / "planted_b.py").write_text('"""Imports planted_a when called."""\n\ndef f():\n'
                                                "    from .planted_a import g\n    return g\n")
    found = [c for c in cycles(copy) if c not in cycles()]
    assert found == ["core/planted_a.py:1 -> core/planted_b.py:4 -> core/planted_a.py"], found
    assert violations(copy) == violations()   # a cycle inside a layer breaks no layer rule


def _copy(tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "prefalign_lite"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "toy_results"))
    return copy


def test_the_package_names_its_stages_only_in_the_registry():
    import re

    stage = re.compile(r"\b(11_dpo|13_spa|14_spa|15_sera|16_sr_dpo|17_dro)")
    named = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if stage.search(p.read_text()))
    assert named == ["methods/experiments.py"]
