"""Metrics files of a run: every replication notebook saves one JSON per run (``metrics.json`` in
the stage folder the pipeline gives it), and the report gathers them across seeds.

A run folder looks like ``runs/toy/seed0/<stage>/metrics.json``; files are written whole and then
renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

from ..core.files import building, write_json

PACKAGED_RUN = "toy_results"  # the committed 20-seed toy run, package data of prefalign_lite


def save_metrics(out_dir: str | Path | None, metrics: dict) -> Path | None:
    """Write ``metrics`` to ``out_dir/metrics.json`` (nothing when ``out_dir`` is empty: a notebook
    run by hand keeps its numbers in its outputs). NaN or infinite values are refused."""
    if not out_dir:
        return None
    return write_json(Path(out_dir) / "metrics.json", metrics, sort_keys=True, allow_nan=False, default=_plain)


PROMPT_SCORES = "prompt_scores.json.gz"


def save_prompt_scores(out_dir: str | Path | None, prompts: list[str], scores: dict[str, list[float]]) -> Path | None:
    """Write every evaluated model's gold score per prompt (``{label: [score per prompt]}``, in the
    order of ``prompts``) to ``out_dir/prompt_scores.json.gz``, gzipped JSON written whole: what
    paired prompt-level analyses and variance components are computed from."""
    import gzip

    if not out_dir:
        return None
    for label, values in scores.items():
        if len(values) != len(prompts):
            raise ValueError(f"prompt scores of {label!r}: {len(values)} scores for {len(prompts)} prompts")
    payload = json.dumps({"prompts": prompts, "scores": scores}, sort_keys=True, allow_nan=False).encode()
    path = Path(out_dir) / PROMPT_SCORES
    with building(path) as scratch:
        scratch.write_bytes(gzip.compress(payload, mtime=0))
    return path


def load_runs(root: str | Path | None = None) -> dict[str, dict[int, dict]]:
    """``{stage: {seed: metrics}}`` from ``root/seed<k>/<stage>/metrics.json``.

    With no ``root`` (``None`` or ``""``) it reads the 20-seed toy run that ships inside the package
    (``prefalign_lite/toy_results``, package data), through :mod:`importlib.resources`, so it works
    from an installed wheel where no repository is at hand (Colab)."""
    if root is None or str(root) == "":
        runs = load_packaged_runs(PACKAGED_RUN)
        if not runs:
            raise FileNotFoundError(f"the packaged toy run {PACKAGED_RUN!r} is missing from the installed package")
        return runs
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(root).glob("seed[0-9]*/*/metrics.json")):
        seed = int(path.parent.parent.name.removeprefix("seed"))
        runs.setdefault(path.parent.name, {})[seed] = json.loads(path.read_text())
    return runs


def load_packaged_runs(folder: str) -> dict[str, dict[int, dict]]:
    """A run that ships inside the package (``prefalign_lite/<folder>``), walked as
    ``importlib.resources`` traversables (a plain folder in an installed wheel or a checkout, or a
    zip archive); ``{}`` when the package has no such folder."""
    top = resources.files("prefalign_lite") / folder
    if not top.is_dir():
        return {}
    runs: dict[str, dict[int, dict]] = {}
    for seed_dir in sorted(top.iterdir(), key=lambda t: t.name):
        if not (seed_dir.is_dir() and seed_dir.name.startswith("seed")):
            continue
        seed = int(seed_dir.name.removeprefix("seed"))
        for stage_dir in sorted(seed_dir.iterdir(), key=lambda t: t.name):
            metrics = stage_dir / "metrics.json"
            if stage_dir.is_dir() and metrics.is_file():
                runs.setdefault(stage_dir.name, {})[seed] = json.loads(metrics.read_text(encoding="utf-8"))
    return runs


def _plain(value):
    """numpy scalars and arrays as plain numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric is not finite: {value!r}")
    raise TypeError(f"cannot save {type(value).__name__} as a metric")
