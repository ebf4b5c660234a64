"""Metrics files of a run: every replication notebook saves one JSON per run (``metrics.json`` in
the stage folder the pipeline gives it), and the report gathers them across seeds.

A run folder looks like ``runs/toy/seed0/12_spa/metrics.json``; files are written whole and then
renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path


def save_metrics(out_dir: str | Path | None, metrics: dict) -> Path | None:
    """Write ``metrics`` to ``out_dir/metrics.json`` (nothing when ``out_dir`` is empty: a notebook
    run by hand keeps its numbers in its outputs). NaN or infinite values are refused."""
    if not out_dir:
        return None
    text = json.dumps(metrics, indent=1, sort_keys=True, allow_nan=False, default=_plain)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / ".metrics.json.partial"
    partial.write_text(text)
    os.replace(partial, out / "metrics.json")
    return out / "metrics.json"


def load_runs(root: str | Path) -> dict[str, dict[int, dict]]:
    """``{stage: {seed: metrics}}`` from ``root/seed<k>/<stage>/metrics.json``."""
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(root).glob("seed*/*/metrics.json")):
        seed = int(path.parent.parent.name.removeprefix("seed"))
        runs.setdefault(path.parent.name, {})[seed] = json.loads(path.read_text())
    return runs


def _plain(value):
    """numpy scalars and arrays as plain numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric is not finite: {value!r}")
    raise TypeError(f"cannot save {type(value).__name__} as a metric")
