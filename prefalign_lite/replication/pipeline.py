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
from dataclasses import dataclass
from pathlib import Path

from ..core.files import write_json
from .config import RunConfig, Stage, notebook_parameters
from .runner import NOTEBOOKS, NotebookFailed, execute_one

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent.parent


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
    """The model part of a stage's fingerprint; the setting's own model is pinned by the package
    source, which the fingerprint holds too."""
    return model or "the setting's own SFT model"


@dataclass(frozen=True)
class Job:
    """One run of one stage: its seed (``None`` for a run-wide stage) and the folder it runs in."""

    stage: Stage
    seed: int | None
    folder: Path


def plan(config: RunConfig, seeds: list[int], out: Path) -> list[Job]:
    """Every job (stage, seed, folder) in the order they run."""
    jobs = []
    for stage in config.stages:
        for seed in (seeds if stage.per_seed else [None]):
            folder = out / (f"seed{seed}" if seed is not None else "") / stage.notebook
            jobs.append(Job(stage, seed, folder))
    return jobs


def depends_on(jobs: list[Job], i: int) -> list[int]:
    """The jobs that must finish before job ``i``: the earlier stages named in its ``after`` (all
    earlier stages when it names none) — of its own seed and run-wide for a per-seed stage, every
    seed's for a run-wide one."""
    stage, seed = jobs[i].stage, jobs[i].seed
    return [j for j in range(i) if (seed is None or jobs[j].seed in (None, seed))
            and (stage.after is None or jobs[j].stage.notebook in stage.after)]


def waiting_on(jobs: list[Job], deps: list[list[int]] | None = None) -> list[int]:
    """How many jobs wait, directly or not, on each job (``deps``: each job's :func:`depends_on`):
    of the jobs that are ready, the pipeline starts first those that most of the run waits for
    (the SFT model before the derivations)."""
    deps = deps if deps is not None else [depends_on(jobs, i) for i in range(len(jobs))]
    after = [set() for _ in jobs]
    for i in range(len(jobs)):
        for j in deps[i]:
            after[j].add(i)
    for j in reversed(range(len(jobs))):   # jobs wait only on earlier jobs
        for i in list(after[j]):
            after[j] |= after[i]
    return [len(a) for a in after]


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (empty without
    CUDA)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    named = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    count = torch.cuda.device_count()
    return named[:count] if named else [str(i) for i in range(count)]


def resolve_jobs(workers, gpus: list[str]) -> int:
    """How many stages run at once, from the ``--jobs`` value ``workers`` (``None``, ``"auto"`` or an
    integer). On CUDA one per GPU: the default and ``"auto"`` give one job per visible GPU, and more
    jobs than GPUs is refused (each kernel holds a policy and a reward model). On a CPU the default
    stays one job, and ``"auto"`` is two (two single-threaded seeds on two cores beat one
    two-threaded seed)."""
    if workers is None or workers == "auto":
        return len(gpus) if gpus else (2 if workers == "auto" else 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--jobs must be an integer >= 1 or 'auto', got {workers!r}")
    if gpus and workers > len(gpus):
        raise ValueError(f"--jobs {workers} on {len(gpus)} GPU(s) would put more than one job, each with a policy and a "
                         f"reward model, on one GPU; use --jobs {len(gpus)} (or leave --jobs out: one job per GPU)")
    return workers


def run(config: RunConfig, seeds: list[int], out: Path, echo=print, workers: int | str | None = None) -> list[dict]:
    """Run (or skip) every stage, ``workers`` at a time where their dependencies allow
    (:func:`resolve_jobs`). On CUDA each running stage has a GPU of its own: its kernel sees only
    that one (``CUDA_VISIBLE_DEVICES``). On a CPU, ``workers > 1`` gives each notebook's kernel one
    thread (on two cores two single-threaded seeds beat one two-threaded one). Returns one status
    record per stage, also kept in ``OUT/pipeline.json``."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    gpus = visible_gpus()
    workers = resolve_jobs(workers, gpus)
    if workers > 1 and not gpus:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"   # read by each kernel's torch at import
    free_gpus = list(gpus)
    out = Path(out).resolve()   # papermill changes the working directory (process-wide) while it runs
    out.mkdir(parents=True, exist_ok=True)
    code, model = package_code(), model_identity(config.model)
    planned = plan(config, seeds, out)
    deps = [depends_on(planned, i) for i in range(len(planned))]
    waiting = waiting_on(planned, deps)
    statuses: dict[int, dict] = {}
    pending, running, failure = list(range(len(planned))), {}, None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for i in sorted((i for i in pending if failure is None), key=lambda i: (-waiting[i], i)):
                if len(running) >= workers:
                    break
                if all(j in statuses for j in deps[i]):
                    pending.remove(i)
                    gpu = free_gpus.pop(0) if gpus else None
                    env = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else None
                    running[pool.submit(_one, config, planned, i, out, code, model, echo, env)] = (i, gpu)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i, gpu = running.pop(future)
                if gpu is not None:
                    free_gpus.append(gpu)
                try:
                    statuses[i] = future.result()
                except NotebookFailed as exc:
                    failure = failure or exc
            write_json(out / "pipeline.json", [statuses[i] for i in sorted(statuses)])
    if failure is not None:
        raise failure
    return [statuses[i] for i in sorted(statuses)]


def _one(config: RunConfig, planned: list[Job], i: int, out: Path, code: str, model: str, echo,
         env: dict | None = None) -> dict:
    stage, seed, folder = planned[i].stage, planned[i].seed, planned[i].folder
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
        inputs.append(sorted((str(p.relative_to(out)), p.read_text()) for p in out.glob("seed[0-9]*/*/metrics.json")))
    key = _digest(*inputs)
    label = f"[{i + 1}/{len(planned)}] {stage.notebook}" + (f" seed {seed}" if seed is not None else "")
    status = {"stage": stage.notebook, "seed": seed, "folder": str(folder), "key": key}
    if _up_to_date(folder, stage, key, "out_dir" in declared):
        echo(f"{label}: skipped (outputs up to date)")
        return {**status, "status": "skipped"}
    start = time.perf_counter()
    echo(f"{label}: running" + (f" on GPU {env['CUDA_VISIBLE_DEVICES']}" if env else ""))
    _execute(stage, params, folder, key, needs_metrics="out_dir" in declared, env=env)
    seconds = round(time.perf_counter() - start, 1)
    echo(f"{label}: done in {seconds} s")
    return {**status, "status": "ran", "seconds": seconds}


def _up_to_date(folder: Path, stage: Stage, key: str, needs_metrics: bool) -> bool:
    record = folder / "stage.json"
    if not record.exists() or not (folder / f"{stage.notebook}.ipynb").exists():
        return False
    if needs_metrics and not (folder / "metrics.json").exists():
        return False
    return json.loads(record.read_text()).get("key") == key


def _execute(stage: Stage, params: dict, folder: Path, key: str, needs_metrics: bool, env: dict | None = None) -> None:
    for stale in ("stage.json", "metrics.json"):
        (folder / stale).unlink(missing_ok=True)
    start = time.perf_counter()
    no_metrics = lambda: None if (folder / "metrics.json").exists() else f"finished but wrote no metrics.json into {folder}"  # noqa: E731
    execute_one(stage.path, folder, params, cwd=NOTEBOOKS, label=f"stage {stage.notebook}",
                check=no_metrics if needs_metrics else None, env=env)
    write_json(folder / "stage.json", {"key": key, "parameters": params, "seconds": round(time.perf_counter() - start, 1)})
