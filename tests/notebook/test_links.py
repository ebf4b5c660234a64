"""Badges and install cells are generated from pyproject.toml and can never disagree with it."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prefalign_lite.notebook import links

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_notebook_is_up_to_date_with_pyproject():
    assert links.sync(ROOT, check=True) == [], "run: python -m prefalign_lite links"


def test_the_command_line_check_passes():
    done = subprocess.run([sys.executable, "-m", "prefalign_lite", "links", "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    release = links.read_release(ROOT)
    assert f"notebooks up to date with {release.repository} {release.tag}" in done.stderr


def test_the_release_comes_from_pyproject_and_the_package_version():
    import prefalign_lite

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    release = links.read_release(ROOT)
    assert release.repository == project["urls"]["Repository"] == "https://github.com/prefalign-lite/prefalign-lite"
    assert release.version == prefalign_lite.__version__
    assert release.tag == f"v{release.version}" and release.github_slug == "prefalign-lite/prefalign-lite"


def test_badges_and_install_cell_pin_the_release_tag():
    release = links.read_release(ROOT)
    for path in links.notebooks_of(ROOT):
        nb = json.loads(path.read_text())
        cells = nb["cells"]
        title, install = "".join(cells[0]["source"]), "".join(cells[1]["source"])
        badge = f"https://colab.research.google.com/github/prefalign-lite/prefalign-lite/blob/{release.tag}/notebooks/{path.name}"
        binder = f"https://mybinder.org/v2/gh/prefalign-lite/prefalign-lite/{release.tag}?labpath=notebooks%2F{path.name}"
        assert badge in title and binder in title, path.name
        assert "/blob/main/" not in title
        assert install == links.install_cell_source(release, links.notebook_extras(nb))
        assert f' @ git+https://github.com/prefalign-lite/prefalign-lite@{release.tag}"' in install
        assert install.count("%pip") == 1 and 'if "google.colab" in sys.modules:' in install


def test_the_install_cell_adds_only_the_extras_a_notebook_needs():
    extras = {path.name[:2]: links.notebook_extras(json.loads(path.read_text())) for path in links.notebooks_of(ROOT)}
    assert {n for n, e in extras.items() if e} == {"11", "13", "14", "15", "16", "17"}, extras
    assert all(e == ("gpu",) for e in extras.values() if e)
    release = links.read_release(ROOT)
    base, gpu = links.install_cell_source(release), links.install_cell_source(release, ("gpu",))
    assert ' "prefalign-lite @ git+' in base and "[" not in base.split("%pip")[1]
    assert ' "prefalign-lite[gpu] @ git+https://github.com/prefalign-lite/prefalign-lite@v' in gpu
    assert "bitsandbytes" in gpu and "papermill" not in base + gpu and "jupyter" not in base + gpu


def test_links_in_markdown_point_at_github_at_the_release_tag():
    release = links.read_release(ROOT)
    prefix = f"{release.repository}/blob/{release.tag}/"
    for path in links.notebooks_of(ROOT):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for target in links.MARKDOWN_LINK.findall("".join(cell["source"])):
                if "github.com/prefalign-lite" in target:
                    assert target.startswith(prefix), f"{path.name}: {target}"
                    assert (ROOT / target[len(prefix):].split("#")[0]).exists(), f"{path.name} links to missing {target}"
                else:
                    assert target.startswith("https://"), f"{path.name}: relative link {target} breaks on Colab"


def test_every_install_cell_installs_the_tested_pins_without_torch():
    """Colab resolved TRL, transformers and PEFT against its own preinstalled stack: the install
    cells now pass the release's pins (constraints.txt less torch, which Colab's GPU runtime keeps)."""
    release = links.read_release(ROOT)
    pins = f"-c https://raw.githubusercontent.com/prefalign-lite/prefalign-lite/{release.tag}/constraints-colab.txt "
    for path in links.notebooks_of(ROOT):
        install = "".join(json.loads(path.read_text())["cells"][1]["source"])
        assert f"%pip install -q {pins}" in install, path.name
    colab = (ROOT / "constraints-colab.txt").read_text().splitlines()
    tested = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert [line for line in colab if not line.startswith("#")] == [line for line in tested if not line.startswith("torch==")]
    assert "transformers==" in "\n".join(colab) and not any(line.startswith("torch") for line in colab)


def test_a_stale_colab_constraints_file_is_found_and_rewritten(tmp_path):
    root = _fake_checkout(tmp_path)
    links.sync(root)
    (root / "constraints.txt").write_text("torch==1.0\ntrl==9.9\n")
    assert links.sync(root, check=True) == [root / "constraints-colab.txt"]
    links.sync(root)
    assert (root / "constraints-colab.txt").read_text().splitlines()[-1] == "trl==9.9"
    assert links.sync(root, check=True) == []


def _fake_checkout(tmp_path, version="9.9.9", repo="https://github.com/someone/elsewhere"):
    (tmp_path / "notebooks").mkdir(parents=True)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(f'"""doc"""\n__version__ = "{version}"\n')
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "pkg-x"\ndynamic = ["version"]\n[project.urls]\nRepository = "{repo}"\n'
        '[tool.setuptools.dynamic]\nversion = { attr = "pkg.__version__" }\n')
    for path in [*links.notebooks_of(ROOT), ROOT / "notebooks" / "NOTATION.md"]:
        shutil.copy(path, tmp_path / "notebooks" / path.name)
    return tmp_path


def test_rewrite_touches_only_the_links_line_and_the_install_cell(tmp_path):
    root = _fake_checkout(tmp_path)
    path = root / "notebooks" / "20_replication_report.ipynb"
    before_text = path.read_text()
    assert links.sync(root, check=True) == sorted(p.resolve() for p in (root / "notebooks").glob("*.ipynb"))
    assert path.read_text() == before_text, "check mode writes nothing"
    links.sync(root)
    after_text = path.read_text()
    before, after = json.loads(before_text), json.loads(after_text)
    assert "blob/v9.9.9/notebooks/20_replication_report.ipynb" in "".join(after["cells"][0]["source"])
    assert "someone/elsewhere@v9.9.9" in "".join(after["cells"][1]["source"])
    # everything else, outputs included, is byte-identical
    changed = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
    assert changed == [0, 1]
    assert after["cells"][1]["outputs"] == before["cells"][1]["outputs"]
    title_before = "".join(before["cells"][0]["source"]).splitlines()
    title_after = "".join(after["cells"][0]["source"]).splitlines()
    assert [line for line in title_before if "colab" not in line] == [line for line in title_after if "colab" not in line]
    assert before["metadata"] == after["metadata"]
    assert after_text.endswith("\n") == before_text.endswith("\n")
    # a second run changes nothing
    assert links.sync(root) == [] and path.read_text() == after_text


def test_links_move_to_the_new_release_and_relative_links_become_absolute(tmp_path):
    root = _fake_checkout(tmp_path)
    path = root / "notebooks" / "01_bradley_terry_and_dpo.ipynb"
    nb = json.loads(path.read_text())
    last = nb["cells"][-1]
    old = "".join(last["source"])
    last["source"] = ["See [02](02_spa_self_refinement.ipynb#summary), [the page](./NOTATION.md), [the audit](../docs/audit.md),\n",
                      "[a paper](https://arxiv.org/abs/2305.18290), [above](#what-to-try-next) and\n",
                      "[an old one](https://github.com/prefalign-lite/prefalign-lite/blob/v0.1.0/notebooks/03_sera_margins.ipynb)."]
    (root / "docs").mkdir()
    (root / "docs" / "audit.md").write_text("audit")
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    links.sync(root)
    text = "".join(json.loads(path.read_text())["cells"][-1]["source"])
    at = "https://github.com/someone/elsewhere/blob/v9.9.9/"
    assert text == (f"See [02]({at}notebooks/02_spa_self_refinement.ipynb#summary), [the page]({at}notebooks/NOTATION.md), "
                    f"[the audit]({at}docs/audit.md),\n[a paper](https://arxiv.org/abs/2305.18290), [above](#what-to-try-next) and\n"
                    "[an old one](https://github.com/prefalign-lite/prefalign-lite/blob/v0.1.0/notebooks/03_sera_margins.ipynb).")
    assert old != text and links.sync(root, check=True) == []


def test_a_link_to_a_missing_file_is_refused_with_the_notebook_and_the_target(tmp_path):
    root = _fake_checkout(tmp_path)
    path = root / "notebooks" / "02_spa_self_refinement.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][-1]["source"] = ["Next: [99](99_nothing.ipynb)"]
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    with pytest.raises(ValueError, match=r"02_spa_self_refinement.ipynb: link '99_nothing.ipynb' points at "
                                         r"notebooks/99_nothing.ipynb, which does not exist"):
        links.sync(root, check=True)
    nb["cells"][-1]["source"] = ["Up: [far](../../outside.md)"]
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    with pytest.raises(ValueError, match="points outside the repository"):
        links.sync(root, check=True)


def test_a_title_without_badges_gets_the_links_line_under_the_heading(tmp_path):
    root = _fake_checkout(tmp_path)
    path = root / "notebooks" / "00_quickstart.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] = ["# A title\n", "\n", "Some text."]
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    links.sync(root)
    lines = "".join(json.loads(path.read_text())["cells"][0]["source"]).splitlines()
    assert lines[0] == "# A title" and lines[1] == "" and lines[2].startswith("[![Open In Colab]")
    assert lines[-1] == "Some text."


def test_bad_notebooks_and_addresses_are_refused_with_their_name(tmp_path):
    root = _fake_checkout(tmp_path)
    path = root / "notebooks" / "00_quickstart.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][1]["source"] = ["print('no install here')"]
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    with pytest.raises(ValueError, match="00_quickstart.ipynb: cell 1 must be the install cell"):
        links.sync(root, check=True)
    path.write_text(json.dumps(nb))  # not nbformat's layout: rewriting would change other bytes
    with pytest.raises(ValueError, match="not in nbformat's JSON layout"):
        links.sync(root, check=True)
    bad = _fake_checkout(tmp_path / "other", repo="https://gitlab.com/a/b")
    with pytest.raises(ValueError, match="Repository must be https://github.com/OWNER/NAME"):
        links.read_release(bad)
