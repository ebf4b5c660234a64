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
NOTEBOOKS = Path(os.environ.get("PREFALIGN_NOTEBOOKS") or Path(__file__).resolve().parent.parent.parent / "notebooks")


def ordered_notebooks(folder: Path = NOTEBOOKS, names: list[str] | None = None) -> list[Path]:
    """The notebooks ``NN_*.ipynb`` in numeric order (optionally only those whose name starts with
    one of ``names``)."""
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if names:
        found = [p for p in found if any(p.name.startswith(n) for n in names)]
    return found


class NotebookFailed(RuntimeError):
    """A notebook raised (or failed a check); its executed copy with the error is kept."""


def kernel_manager_with(env: dict):
    """A jupyter kernel manager class whose kernels start with ``env`` on top of this process's
    environment (the pipeline pins each stage to its GPU with ``CUDA_VISIBLE_DEVICES``)."""
    from jupyter_client.manager import AsyncKernelManager

    class Pinned(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**os.environ, **kw.get("env", {}), **env}
            return await super().start_kernel(**kw)
    return Pinned


def execute_one(nb: Path, folder: Path, parameters: dict | None = None, cwd: Path | None = None,
                label: str | None = None, check=None, env: dict | None = None) -> Path:
    """Execute ``nb`` into ``folder/NAME.ipynb`` via ``NAME.partial.ipynb``; on an error, or when
    ``check()`` returns a problem, keep ``NAME.failed.ipynb`` and raise ``NotebookFailed``. ``env``
    is added to the kernel's environment. The kernel runs in ``cwd`` (default: the notebook's
    folder); this process's working directory never moves (papermill's own ``cwd`` would move it,
    and two stages run in threads at once would then restore each other's)."""
    import papermill

    folder.mkdir(parents=True, exist_ok=True)
    label = label or f"notebook {nb.name}"
    partial, failed = folder / f"{nb.stem}.partial.ipynb", folder / f"{nb.stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    try:
        papermill.execute_notebook(str(nb), str(partial), parameters=parameters or {},
                                   resources={"metadata": {"path": str(cwd or nb.parent)}}, progress_bar=False,
                                   **({"kernel_manager_class": kernel_manager_with(env)} if env else {}))
    except Exception as exc:
        if partial.exists():
            os.replace(partial, failed)
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise NotebookFailed(f"{label} failed ({reason}); the executed notebook with the error is {failed}") from exc
    problem = check() if check else None
    if problem:
        os.replace(partial, failed)
        raise NotebookFailed(f"{label} {problem}")
    os.replace(partial, folder / nb.name)
    return folder / nb.name


def run_notebooks(out: Path, notebooks: list[Path], parameters: dict | None = None) -> list[Path]:
    """Execute ``notebooks`` in order into ``out``; return the executed copies."""
    done = []
    for nb in notebooks:
        start = time.perf_counter()
        log.info("running %s", nb.name)
        done.append(execute_one(nb, out, parameters))
        log.info("%s done in %.1f s", nb.name, time.perf_counter() - start)
    return done
