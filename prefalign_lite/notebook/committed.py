"""nbval that fails on regressions only: compare a notebook's measured numbers with a committed
run within stated tolerances, and print one stable line.

Notebooks whose numbers depend on CPU kernels (a trained tiny model, sampling) print slightly
different digits on another machine, and nbval, which compares printed text, would fail there for
no reason. The convention:

1. the cell that prints the raw numbers carries the nbval tag ``nbval-ignore-output`` (the reader
   still sees them; nbval does not compare them);
2. the next cell calls :func:`check_within_tolerance` with the measured numbers, the committed
   ones (e.g. :func:`committed_metrics`) and a tolerance per number. It prints a single line such as
   ``12 numbers within tolerance of the committed run: True``, which nbval compares exactly, and
   raises ``AssertionError`` naming every number that is off (its value, the committed value and
   the tolerance), so a real regression fails the notebook with a readable message.

The sandbox notebooks 01-05 and notebook 10 have no committed run to read: their committed values are
the numbers of their own committed outputs, written into the check cell, and they hold only for the
parameters those outputs were made with. :class:`CommittedOutputs` carries both: built once in the
notebook's import cell from the parameters cell's defaults and the values in use, its
:meth:`~CommittedOutputs.check` compares at the defaults and says that nothing was compared when a
parameter was changed (``papermill -p beta 1.0``), instead of failing a run that was never committed.

Deterministic mathematics (the derivations on the sandbox) needs none of this: print a verdict instead of a
machine-epsilon number (``max |autograd - analytic| < 1e-12: True``) and let nbval compare it.
"""
from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

from ..replication import results

log = logging.getLogger(__name__)


def flatten(metrics: Mapping, prefix: str = "") -> dict[str, float]:
    """Nested metrics as ``{"a/b": number}`` (booleans and strings are left out; lists get their
    index as a key part), the shape :func:`check_within_tolerance` compares."""
    flat: dict[str, float] = {}
    items = metrics.items() if isinstance(metrics, Mapping) else enumerate(metrics)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (Mapping, list, tuple)):
            flat.update(flatten(value, name + "/"))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def committed_metrics(stage: str, seed: int = 0, run_dir: str | None = None) -> dict[str, float]:
    """The flattened metrics of ``stage`` for ``seed`` in a committed run (default: the toy run
    that ships with the package, see :func:`prefalign_lite.replication.results.load_runs`)."""
    runs = results.load_runs(run_dir)
    if stage not in runs:
        raise KeyError(f"stage {stage!r} is not in the committed run; it has {sorted(runs)}")
    if seed not in runs[stage]:
        raise KeyError(f"stage {stage!r} has no seed {seed} in the committed run; it has {sorted(runs[stage])}")
    return flatten(runs[stage][seed])


def _tolerance_of(name: str, tolerance: float | Mapping[str, float]) -> float:
    value = tolerance.get(name) if isinstance(tolerance, Mapping) else tolerance
    if value is None:
        raise KeyError(f"no tolerance given for {name!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance for {name!r} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_within_tolerance(measured: Mapping[str, float], committed: Mapping[str, float],
                           tolerance: float | Mapping[str, float], *,
                           against: str = "the committed run") -> bool:
    """Assert that every measured number lies within ``tolerance`` (absolute; one number for all,
    or one per name) of its committed value, then print
    ``"<n> numbers within tolerance of <against>: True"`` and return ``True``.

    Every name in ``measured`` must have a committed value and a tolerance (a ``KeyError`` names
    the one missing); committed names that were not measured are ignored, so a notebook can check
    a subset. A non-finite measured value fails. All failures are reported together, one per
    line: name, measured value, committed value, tolerance and the distance.

    It prints (the one ``print`` in the package) because the line is meant for nbval, which
    compares a cell's stdout; logging would go to stderr, which notebooks must not write."""
    if not measured:
        raise ValueError("measured is empty: nothing to check")
    failures = []
    for name, value in measured.items():
        if name not in committed:
            raise KeyError(f"{name!r} has no committed value; committed names: {sorted(committed)}")
        allowed = _tolerance_of(name, tolerance)
        reference = float(committed[name])
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name!r}: measured value must be a number, got {value!r}")
        value = float(value)
        log.debug("%s: measured %r, committed %r, allowed ±%g", name, value, reference, allowed)
        if not math.isfinite(value):
            failures.append(f"{name}: measured {value!r} is not finite (committed {reference:.6g}, allowed ±{allowed:g})")
        elif abs(value - reference) > allowed:
            failures.append(f"{name}: measured {value:.6g}, committed {reference:.6g}, allowed ±{allowed:g}, "
                            f"off by {abs(value - reference):.3g}")
    if failures:
        raise AssertionError(f"{len(failures)} of {len(measured)} numbers outside tolerance of {against}:\n  "
                             + "\n  ".join(failures))
    print(f"{len(measured)} numbers within tolerance of {against}: True")
    return True


def compare_with_committed(stage: str, metrics: Mapping, tolerance: Mapping[str, float], seed: int | None = None) -> bool:
    """The check cell of a replication notebook: compare the numbers named in ``tolerance`` with
    the committed run's metrics of ``stage``, but only when this run used the committed run's
    parameters (``metrics["parameters"]``); otherwise print that nothing was compared (a pipeline
    stage with another seed, or a user's own settings) and return ``False``."""
    committed = _committed_counterpart(stage, metrics, seed)
    return False if committed is None else _check_named(stage, metrics, committed, tolerance)


def _committed_counterpart(stage: str, metrics: Mapping, seed: int | None) -> dict | None:
    """The committed run's metrics of ``stage`` for this run's seed, or ``None`` (after printing
    why nothing will be compared) when the committed run lacks them or used other parameters."""
    seed = metrics.get("parameters", {}).get("seed", 0) if seed is None else seed
    try:
        committed = results.load_runs(None)[stage][seed]
    except (KeyError, FileNotFoundError):
        print(f"no committed run of {stage} seed {seed}: nothing compared")
        return None
    if committed.get("parameters") != metrics.get("parameters"):
        print("parameters differ from the committed run: nothing compared")
        return None
    return committed


def _check_named(stage: str, metrics: Mapping, committed: Mapping, tolerance: Mapping[str, float]) -> bool:
    measured = {name: value for name, value in flatten(metrics).items() if name in tolerance}
    missing = sorted(set(tolerance) - set(measured))
    if missing:
        raise KeyError(f"{stage}: no measured value for {missing}")
    return check_within_tolerance(measured, flatten(committed), tolerance)


SPREAD_SDS = 4.0      # a committed number is matched within this many between-seed standard deviations
SPREAD_FLOOR = 0.01   # ... and never tighter than this (numbers that barely vary across seeds)
KERNEL_RERUN = "toy_results_avx2"  # package data: committed seeds rerun with the other CPU kernels
KERNEL_FACTOR = 2.0   # another CPU type may move a number twice as far as that rerun's kernels did


def seed_tolerances(stage: str, keys: list[str], run_dir: str | None = None,
                    kernels_dir: str | None = None) -> dict[str, float]:
    """Per number, the largest of ``SPREAD_SDS`` x its sd over the committed run's seeds,
    ``KERNEL_FACTOR`` x its largest same-seed difference between that run and its rerun with the
    other CPU kernels (``kernels_dir``; for the packaged run, the packaged :data:`KERNEL_RERUN` when
    it ships), and ``SPREAD_FLOOR``. A seed moves what is trained per seed; another CPU also
    rebuilds the SFT model that every seed shares, which moves numbers the seed spread cannot see
    (the SFT model's quality-instruction gain: 4 sd = 0.025, moved 0.026 by the other kernels)."""
    import statistics

    runs = results.load_runs(run_dir)
    if stage not in runs:
        raise KeyError(f"stage {stage!r} is not in the committed run; it has {sorted(runs)}")
    if kernels_dir:
        kernels = results.load_runs(kernels_dir)
    else:
        kernels = results.load_packaged_runs(KERNEL_RERUN) if not run_dir else {}
    flat = {seed: flatten(m) for seed, m in runs[stage].items()}
    other = {seed: flatten(m) for seed, m in kernels.get(stage, {}).items() if seed in flat}
    out = {}
    for key in keys:
        values = [f[key] for f in flat.values() if key in f]
        if len(values) < 2:
            raise KeyError(f"{stage}: {key!r} is in fewer than two committed seeds")
        moved = [abs(o[key] - flat[seed][key]) for seed, o in other.items() if key in o and key in flat[seed]]
        out[key] = max(SPREAD_SDS * statistics.stdev(values), KERNEL_FACTOR * max(moved, default=0.0), SPREAD_FLOOR)
    return out


COMMITTED_DEVICE = "cpu"   # the committed run was trained and sampled on CPUs


def run_device() -> str:
    """The device a session of this process trains on: ``cuda`` where a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_against_seeds(stage: str, metrics: Mapping, keys: list[str], seed: int | None = None,
                        device: str | None = None) -> bool:
    """The check cell of a replication notebook: the numbers ``keys`` of this run against the
    committed run's same seed, each within :func:`seed_tolerances` (when this run used the
    committed run's parameters; otherwise nothing is compared, and it says so). On another device
    than the committed run's (``device``, default :func:`run_device`) other kernels draw other
    numbers: a number outside its tolerance is then printed, with why, and the notebook goes on."""
    committed = _committed_counterpart(stage, metrics, seed)
    if committed is None:
        return False
    device = device or run_device()
    try:
        return _check_named(stage, metrics, committed, seed_tolerances(stage, keys))
    except AssertionError as failed:
        if device == COMMITTED_DEVICE:
            raise
        print(f"on {device}, not the committed run's {COMMITTED_DEVICE}: {failed}\n"
              "(another device's kernels sample and train differently; the notebook goes on)")
        return False


@dataclass(frozen=True)
class CommittedOutputs:
    """The parameters a notebook's committed outputs were made with (``made_with``: its parameters
    cell's defaults, a test holds them equal) and the ones this run uses (``running_with``, the same
    names), so that :meth:`check` compares trained and sampled numbers only where the committed
    values apply."""

    made_with: Mapping
    running_with: Mapping

    def __post_init__(self):
        if set(self.made_with) != set(self.running_with):
            raise ValueError(f"made_with and running_with must name the same parameters; only in made_with: "
                             f"{sorted(set(self.made_with) - set(self.running_with))}, only in running_with: "
                             f"{sorted(set(self.running_with) - set(self.made_with))}")

    @property
    def changed(self) -> list[str]:
        """The parameters whose value differs from the committed outputs', sorted."""
        return sorted(name for name in self.made_with if self.running_with[name] != self.made_with[name])

    def check(self, measured: Mapping[str, float], committed: Mapping[str, float],
              tolerance: float | Mapping[str, float]) -> None:
        """:func:`check_within_tolerance` against the committed outputs when every parameter has its
        committed value; otherwise print which parameters changed and that nothing was compared.
        Returns nothing, so a check as a cell's last line displays only its one printed line."""
        if self.changed:
            print(f"parameters {', '.join(self.changed)} differ from the committed outputs: nothing compared")
            return
        check_within_tolerance(measured, committed, tolerance, against="the committed outputs")
