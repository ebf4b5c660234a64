"""The Colab / Binder badges and the install cell of every notebook, generated from one place.

The repository's address is written once, in ``pyproject.toml`` (``[project.urls] Repository``),
and the release once, in ``prefalign_lite.__version__``. From those two this module writes, in each
notebook of ``notebooks/``:

- cell 0 (the title cell): one *links line* with an "Open in Colab" badge and a "Launch Binder"
  badge, both opening the notebook at the release tag ``v<version>``, and a link to the notation
  page at the same tag. Only the line(s) holding a badge are replaced; every other byte of the
  notebook, outputs included, stays as it was;
- cell 1 (the install cell): installs the kit pinned to the same tag on Colab, with the tested pins
  of ``constraints.txt`` less torch (``constraints-colab.txt``, which this module writes), with only the extras
  that notebook needs (:func:`notebook_extras`: none for the sandbox, the world and the report;
  ``gpu``, which adds bitsandbytes, for the notebooks that train through a session, whose base a GPU
  runtime loads in 4-bit), and does nothing anywhere else;
- every markdown cell: each link to a file of the checkout (the notation page, another notebook),
  written relative (``[notation page](NOTATION.md)``) or absolute at another release, points at
  that file on GitHub at the release tag, ``<Repository>/blob/v<version>/notebooks/NOTATION.md``.
  Relative links break on Colab, which opens a notebook without its folder; the absolute ones work
  on Colab, on GitHub, on Binder and locally. A link to a file that does not exist is an error.

Usage, from a checkout::

    python -m prefalign_lite links            # rewrite what is out of date
    python -m prefalign_lite links --check    # only report; exit status 1 if anything is

The tests run the check, so badges, install cells, links and the version can never disagree.
"""
from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

BADGE_MARKERS = ("colab.research.google.com", "mybinder.org")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
MARKDOWN_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
GPU_MODULES = ("prefalign_lite.methods.session",)
"""A notebook whose code imports one of these trains through a session, which on a GPU loads its base
in 4-bit NF4 through bitsandbytes: its install cell adds the ``gpu`` extra."""
EXTRA_NOTES = {"gpu": "bitsandbytes, for the 4-bit base on a GPU runtime"}


@dataclass(frozen=True)
class Release:
    """What the links are generated from: the distribution name, the GitHub address and the
    version (the tag is ``v<version>``)."""

    name: str
    repository: str
    version: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def github_slug(self) -> str:
        """``owner/name`` of a ``https://github.com/owner/name`` address."""
        match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", self.repository)
        if not match:
            raise ValueError(f"[project.urls] Repository must be https://github.com/OWNER/NAME, got {self.repository!r}")
        return match.group(1)


def read_release(root: str | Path) -> Release:
    """The release described by ``root/pyproject.toml``: ``[project] name``, ``[project.urls]
    Repository`` and the version (written in ``[project]`` or, when ``version`` is dynamic, the
    ``__version__`` string its ``attr`` names)."""
    root = Path(root)
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise FileNotFoundError(f"{pyproject} not found: run from a checkout of the kit or pass --root")
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = config.get("project", {})
    repository = project.get("urls", {}).get("Repository")
    if not repository:
        raise ValueError(f"{pyproject}: [project.urls] has no 'Repository' entry")
    version = project.get("version") or _dynamic_version(root, config)
    release = Release(name=project["name"], repository=repository.rstrip("/"), version=version)
    release.github_slug  # validate the address now, with a clear message
    return release


def _dynamic_version(root: Path, config: dict) -> str:
    """The version a ``[tool.setuptools.dynamic] version = {attr = "pkg.__version__"}`` points at,
    read from the module's source without importing it."""
    attr = config.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("version", {}).get("attr")
    if not attr:
        raise ValueError("pyproject.toml gives neither [project] version nor [tool.setuptools.dynamic] version.attr")
    module, _, name = attr.rpartition(".")
    base = root / Path(*module.split("."))
    source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{source} does not assign {name}")


def links_line(release: Release, notebook: str) -> str:
    """Cell 0's links line for ``notebook`` (a path relative to the repository root, with ``/``):
    Colab and Binder badges opening it at the release tag, and the notation page at that tag."""
    slug, tag = release.github_slug, release.tag
    folder = notebook.rpartition("/")[0]
    colab = f"https://colab.research.google.com/github/{slug}/blob/{tag}/{notebook}"
    binder = f"https://mybinder.org/v2/gh/{slug}/{tag}?labpath={quote(notebook, safe='')}"
    notation = f"{release.repository}/blob/{tag}/{folder + '/' if folder else ''}NOTATION.md"
    return (f"[![Open In Colab]({COLAB_BADGE})]({colab}) [![Launch Binder]({BINDER_BADGE})]({binder}) "
            f"· symbols: [notation page]({notation})")


COLAB_CONSTRAINTS = "constraints-colab.txt"
"""The tested pins without torch (a Colab GPU runtime keeps its own CUDA build), at the repository's
root; the install cell passes it to ``pip -c`` so that Colab installs the versions the tests ran."""


def colab_constraints(pins: str) -> str:
    """:data:`COLAB_CONSTRAINTS`'s text from ``constraints.txt``'s: every pin but torch's."""
    kept = [line for line in pins.splitlines() if line.strip() and not line.startswith("#")
            and re.split(r"[=<>!~\s]", line, maxsplit=1)[0].strip().lower() != "torch"]
    return ("# The tested pins of constraints.txt without torch, for Colab's install cells (its GPU runtime keeps\n"
            "# its own CUDA torch). Generated by `python -m prefalign_lite links` from constraints.txt.\n"
            + "\n".join(kept) + "\n")


def install_cell_source(release: Release, extras: tuple[str, ...] = ()) -> str:
    """Cell 1: install the kit at the release tag on Colab, with ``extras`` (e.g. ``("gpu",)``) and
    the release's tested pins (:data:`COLAB_CONSTRAINTS`); do nothing anywhere else."""
    name = f"{release.name}[{','.join(extras)}]" if extras else release.name
    what = ("; ".join(f"the {extra} extra: {EXTRA_NOTES.get(extra, extra)}" for extra in extras)
            if extras else "the base install, which holds everything this notebook imports")
    pins = f"https://raw.githubusercontent.com/{release.github_slug}/{release.tag}/{COLAB_CONSTRAINTS}"
    return (f"# On Colab this installs the kit at release {release.tag}, the release this notebook belongs to\n"
            f"# ({what}),\n"
            f"# with the versions its tests ran ({COLAB_CONSTRAINTS}); anywhere else it does nothing.\n"
            "# (Generated by `python -m prefalign_lite links`.)\n"
            "import sys\n"
            'if "google.colab" in sys.modules:\n'
            f'    %pip install -q -c {pins} "{name} @ git+{release.repository}@{release.tag}"')


def notebook_extras(nb: dict) -> tuple[str, ...]:
    """The extras the install cell of ``nb`` (a notebook's JSON) installs: ``("gpu",)`` when its
    code imports one of :data:`GPU_MODULES`, else none."""
    code = "\n".join(_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code")
    imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", code, re.M)
    return ("gpu",) if any(module in GPU_MODULES for module in imports) else ()


def github_file_url(release: Release, path: str) -> str:
    """``path`` (relative to the repository root, with ``/``) on GitHub at the release tag."""
    return f"{release.repository}/blob/{release.tag}/{path}"


def _absolute_target(target: str, notebook: str, release: Release, root: Path | None) -> str:
    """The link ``target`` of a markdown cell of ``notebook``, made absolute at the release when it
    names a file of the checkout (relative to the notebook's folder, or on GitHub at any tag);
    other targets (other sites, anchors in the same notebook) come back unchanged."""
    path, hash_, fragment = target.partition("#")
    folder = notebook.rpartition("/")[0]
    at_release = re.fullmatch(re.escape(release.repository) + r"/blob/[^/]+/(?P<path>.+)", path)
    if at_release:
        in_repository = at_release["path"]
    elif not path or re.match(r"^[a-z][a-z0-9+.-]*:", path, re.I) or path.startswith("/"):
        return target
    else:
        parts = []
        for part in (folder.split("/") if folder else []) + path.split("/"):
            if part == "..":
                if not parts:
                    raise ValueError(f"{notebook}: link {target!r} points outside the repository")
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        in_repository = "/".join(parts)
    if root is not None and not (root / in_repository).exists():
        raise ValueError(f"{notebook}: link {target!r} points at {in_repository}, which does not exist")
    return github_file_url(release, in_repository) + hash_ + fragment


def _with_absolute_links(text: str, notebook: str, release: Release, root: Path | None) -> str:
    return MARKDOWN_LINK.sub(lambda m: f"]({_absolute_target(m['target'], notebook, release, root)})", text)


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _as_lines(text: str) -> list[str]:
    """nbformat's on-disk layout of a cell source: a list of lines, each keeping its newline."""
    return text.splitlines(keepends=True)


def _with_links_line(text: str, line: str, where: str) -> str:
    """Replace the line(s) of ``text`` holding a badge by ``line``; insert it after the title
    heading when there is none."""
    lines = text.splitlines(keepends=True)
    hits = [i for i, old in enumerate(lines) if any(m in old for m in BADGE_MARKERS)]
    if hits:
        ending = "\n" if lines[hits[0]].endswith("\n") else ""
        lines[hits[0]] = line + ending
        return "".join(old for i, old in enumerate(lines) if i not in hits[1:])
    heading = next((i for i, old in enumerate(lines) if old.startswith("#")), None)
    if heading is None:
        raise ValueError(f"{where}: cell 0 has neither a badge line nor a '# title' to put one under")
    if not lines[heading].endswith("\n"):
        lines[heading] += "\n"
    lines[heading + 1:heading + 1] = ["\n", line + "\n"]
    return "".join(lines)


def updated_text(text: str, notebook: str, release: Release, root: Path | None = None) -> str:
    """The notebook file ``text`` with its links line, install cell and markdown link targets as
    ``release`` says; every other byte unchanged. ``notebook`` is its path relative to the
    repository root; with ``root`` (the checkout) every linked file must exist there."""
    nb = json.loads(text)
    ending = "\n" if text.endswith("\n") else ""
    if _dump(nb, ending) != text:
        raise ValueError(f"{notebook}: not in nbformat's JSON layout (indent 1, sorted keys); "
                         "save it once with Jupyter or nbformat, then run again")
    cells = nb.get("cells", [])
    if len(cells) < 2 or cells[0]["cell_type"] != "markdown":
        raise ValueError(f"{notebook}: cell 0 must be the markdown title cell")
    install = cells[1]
    if install["cell_type"] != "code" or "google.colab" not in _source(install):
        raise ValueError(f"{notebook}: cell 1 must be the install cell (a code cell mentioning google.colab)")
    title = _source(cells[0])
    new_title = _with_links_line(title, links_line(release, notebook), notebook)
    if new_title != title:
        cells[0]["source"] = _as_lines(new_title)
    new_install = install_cell_source(release, notebook_extras(nb))
    if new_install != _source(install):
        install["source"] = _as_lines(new_install)
    for cell in cells:
        if cell["cell_type"] == "markdown":
            old = _source(cell)
            new = _with_absolute_links(old, notebook, release, root)
            if new != old:
                cell["source"] = _as_lines(new)
    return _dump(nb, ending)


def _dump(nb: dict, ending: str) -> str:
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + ending


def notebooks_of(root: Path) -> list[Path]:
    """Every numbered notebook of ``root/notebooks``."""
    found = sorted((root / "notebooks").glob(NOTEBOOK_GLOB))
    if not found:
        raise FileNotFoundError(f"no notebooks matching {NOTEBOOK_GLOB} in {root / 'notebooks'}")
    return found


def sync(root: str | Path, *, check: bool = False, paths: list[Path] | None = None) -> list[Path]:
    """Bring the notebooks' links and :data:`COLAB_CONSTRAINTS` up to date (or, with ``check``, only
    find the stale ones). Returns the files that were (or would be) changed; files are replaced whole."""
    root = Path(root).resolve()
    release = read_release(root)
    stale = []
    for path in paths or notebooks_of(root):
        path = Path(path).resolve()
        text = path.read_text(encoding="utf-8")
        new = updated_text(text, path.relative_to(root).as_posix(), release, root)
        if new == text:
            continue
        stale.append(path)
        if not check:
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(new, encoding="utf-8")
            os.replace(partial, path)
            log.info("updated the links of %s", path.name)
    pins = root / "constraints.txt"
    if pins.exists():
        colab, want = root / COLAB_CONSTRAINTS, colab_constraints(pins.read_text(encoding="utf-8"))
        if not colab.exists() or colab.read_text(encoding="utf-8") != want:
            stale.append(colab)
            if not check:
                colab.write_text(want, encoding="utf-8")
                log.info("wrote %s from constraints.txt", colab.name)
    return stale


def default_root() -> Path:
    """The checkout this module lives in (the folder above the package)."""
    return Path(__file__).resolve().parent.parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefalign_lite links", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks whose links are out of date")
    parser.add_argument("--root", type=Path, default=default_root(), help="the checkout (holds pyproject.toml)")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to handle (default: all of notebooks/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    release = read_release(args.root)
    stale = sync(args.root, check=args.check, paths=args.notebooks or None)
    total = len(args.notebooks) or len(notebooks_of(Path(args.root)))
    notebooks = [path for path in stale if path.suffix == ".ipynb"]
    if args.check:
        for path in stale:
            log.error("%s: out of date with %s %s (badges, install cell, links or pins); run python -m prefalign_lite links",
                      path.name, release.repository, release.tag)
        log.info("%d of %d notebooks up to date with %s %s", total - len(notebooks), total, release.repository, release.tag)
        return 1 if stale else 0
    log.info("%d of %d notebooks rewritten for %s %s", len(notebooks), total, release.repository, release.tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
