"""The replication pipeline: the config's notebooks in order, per seed where asked, with papermill.

Each stage runs in its own folder (``OUT/seed<k>/<notebook>/`` or ``OUT/<notebook>/``) and leaves
there its executed notebook, its ``metrics.json`` and a ``stage.json`` with the fingerprint of its
inputs: the notebook's code (not its outputs), its parameters, the package's source, the model and —
for a stage that reads the whole run (it declares ``run_dir``) — every metrics file before it.
A stage whose ``stage.json`` holds the same fingerprint is skipped, so a run that was killed resumes
at the stage it was in. A stage that fails keeps ``<notebook>.failed.ipynb`` with the error and
stops the run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from .config import RunConfig, Stage, notebook_parameters
from .notebook_runner import NOTEBOOKS, NotebookFailed, execute_one

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent


StageFailed = NotebookFailed  # a stage that raised or wrote no metrics; the run stops there


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:16]


def notebook_code(path: Path) -> str:
    """The sources of a notebook's cells: what it does, not what it printed last time."""
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)


def package_code() -> str:
    return _digest(*[p.read_bytes() for p in sorted(PACKAGE.rglob("*.py"))])


def model_identity(model: str | None) -> str:
    if model:
        return model
    from .tiny import TinyConfig

    return f"tiny-sft-{TinyConfig().key()}"


def plan(config: RunConfig, seeds: list[int], out: Path) -> list[tuple[Stage, int | None, Path]]:
    """Every (stage, seed, folder) in the order they run."""
    jobs = []
    for stage in config.stages:
        for seed in (seeds if stage.per_seed else [None]):
            folder = out / (f"seed{seed}" if seed is not None else "") / stage.notebook
            jobs.append((stage, seed, folder))
    return jobs


def run(config: RunConfig, seeds: list[int], out: Path, echo=print) -> list[dict]:
    """Run (or skip) every stage; returns one status record per stage, also kept in ``OUT/pipeline.json``."""
    out.mkdir(parents=True, exist_ok=True)
    code, model = package_code(), model_identity(config.model)
    jobs, statuses = plan(config, seeds, out), []
    for i, (stage, seed, folder) in enumerate(jobs, start=1):
        declared = notebook_parameters(stage.path)
        params = dict(stage.parameters)
        if seed is not None:
            params["seed"] = seed
        if "model" in declared:
            params["model"] = config.model or ""
        if "run_dir" in declared:
            params["run_dir"] = str(out.resolve())
        if "out_dir" in declared:
            params["out_dir"] = str(folder.resolve())
        inputs = [notebook_code(stage.path), {k: v for k, v in params.items() if k not in ("out_dir", "run_dir")}, code, model]
        if "run_dir" in declared:
            inputs.append(sorted((str(p.relative_to(out)), p.read_text()) for p in out.glob("seed*/*/metrics.json")))
        key = _digest(*inputs)
        label = f"[{i}/{len(jobs)}] {stage.notebook}" + (f" seed {seed}" if seed is not None else "")
        status = {"stage": stage.notebook, "seed": seed, "folder": str(folder), "key": key}
        if _up_to_date(folder, stage, key, "out_dir" in declared):
            echo(f"{label}: skipped (outputs up to date)")
            statuses.append({**status, "status": "skipped"})
            continue
        start = time.perf_counter()
        echo(f"{label}: running")
        _execute(stage, params, folder, key, needs_metrics="out_dir" in declared)
        seconds = round(time.perf_counter() - start, 1)
        echo(f"{label}: done in {seconds} s")
        statuses.append({**status, "status": "ran", "seconds": seconds})
        _write_json(out / "pipeline.json", statuses)
    _write_json(out / "pipeline.json", statuses)
    return statuses


def _up_to_date(folder: Path, stage: Stage, key: str, needs_metrics: bool) -> bool:
    record = folder / "stage.json"
    if not record.exists() or not (folder / f"{stage.notebook}.ipynb").exists():
        return False
    if needs_metrics and not (folder / "metrics.json").exists():
        return False
    return json.loads(record.read_text()).get("key") == key


def _execute(stage: Stage, params: dict, folder: Path, key: str, needs_metrics: bool) -> None:
    for stale in ("stage.json", "metrics.json"):
        (folder / stale).unlink(missing_ok=True)
    start = time.perf_counter()
    no_metrics = lambda: None if (folder / "metrics.json").exists() else f"finished but wrote no metrics.json into {folder}"  # noqa: E731
    execute_one(stage.path, folder, params, cwd=NOTEBOOKS, label=f"stage {stage.notebook}",
                check=no_metrics if needs_metrics else None)
    _write_json(folder / "stage.json", {"key": key, "parameters": params, "seconds": round(time.perf_counter() - start, 1)})


def _write_json(path: Path, payload) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=1))
    os.replace(partial, path)
