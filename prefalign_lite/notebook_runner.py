"""Execute the kit's notebooks in order with papermill, each into an output folder.

Every notebook is written to a temporary name and renamed only when it finished, so an output
folder never holds a half-executed notebook under its final name; a failing notebook is kept as
``NAME.failed.ipynb`` with its error, and the run stops with a message naming it.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

# the kit's notebooks; PREFALIGN_NOTEBOOKS points the runner and the pipeline at another folder
NOTEBOOKS = Path(os.environ.get("PREFALIGN_NOTEBOOKS") or Path(__file__).resolve().parent.parent / "notebooks")


def ordered_notebooks(folder: Path = NOTEBOOKS, names: list[str] | None = None) -> list[Path]:
    """The notebooks ``NN_*.ipynb`` in numeric order (optionally only those whose name starts with
    one of ``names``)."""
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if names:
        found = [p for p in found if any(p.name.startswith(n) for n in names)]
    return found


def run_notebooks(out: Path, notebooks: list[Path], parameters: dict | None = None) -> list[Path]:
    """Execute ``notebooks`` in order into ``out``; return the executed copies."""
    import papermill

    out.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks:
        target, partial = out / nb.name, out / f"{nb.stem}.partial.ipynb"
        start = time.perf_counter()
        log.info("running %s", nb.name)
        try:
            papermill.execute_notebook(str(nb), str(partial), parameters=parameters or {},
                                       cwd=str(nb.parent), progress_bar=False)
        except Exception as exc:
            failed = out / f"{nb.stem}.failed.ipynb"
            if partial.exists():
                os.replace(partial, failed)
            raise RuntimeError(f"notebook {nb.name} failed; its executed copy with the error is {failed}") from exc
        os.replace(partial, target)
        log.info("%s done in %.1f s", nb.name, time.perf_counter() - start)
        done.append(target)
    return done
