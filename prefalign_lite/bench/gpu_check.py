"""``python -m prefalign_lite gpu-check``: the one prepared check for a machine with a GPU, writing
one JSON (every figure) and one Markdown table (the figures against the targets):

* ``bench`` on ``qwen2.5-0.5b`` and ``mistral-7b``: the kit's DPO and SPA-refined steps against TRL's
  DPOTrainer, sampling with the key/value cache at two batch sizes, reward-model scoring, and the
  memory model's estimate beside each measured peak (:mod:`.benchmark`, :mod:`.estimate`);
* the real-size Qwen2.5-0.5B run at a few prompts (:mod:`prefalign_lite.replication.real_size`),
  passed in as ``real_size`` (this layer does not import the replication layer).

Each phase runs in its own process with its own time limit, and the JSON and the table are
rewritten after every phase, so a check that is cut short keeps what it measured. ``--device cpu``
is the dry run: the same code at the ``tiny`` shape with few steps (a minute on two cores), the
real-size run left out unless asked for. On one H100/H200 it takes at most the sum of the GPU phases'
limits, 7 minutes (an estimate: no GPU has run it yet).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..core.files import write_json, write_text
from . import benchmark
from .benchmark import fmt

log = logging.getLogger(__name__)

# per shape, the :class:`~.benchmark.BenchConfig` fields that differ from its defaults
GPU_PLAN = {"qwen2.5-0.5b": dict(warmup=2, steps=5, sample_batches=(64, 256)),
            "mistral-7b": dict(warmup=2, steps=5, sample_batches=(128, 512))}
CPU_PLAN = {"tiny": dict(warmup=1, steps=2, pairs=8, sample_batches=(4, 8), sample_new_tokens=4)}

# (label, measured key, estimate key) rows of the table, per shape
PEAKS = [("DPO step peak GB", "kit.dpo.peak_gb", "estimate.training_step_gb"),
         ("SPA step peak GB", "kit.spa.peak_gb", "estimate.training_step_gb"),
         ("TRL DPO step peak GB", "trl.dpo.peak_gb", None),
         ("reward scoring peak GB", "reward.peak_gb", "estimate.reward_scoring_gb")]
TIMES = [("DPO step s", "kit.dpo.step_s"), ("SPA step s", "kit.spa.step_s"), ("TRL DPO step s", "trl.dpo.step_s"),
         ("reward scoring pass s", "reward.score_s"), ("SPA iteration h (projected)", "projection.spa_iteration_h")]


PHASE_TIMEOUT_S = {"qwen2.5-0.5b": 120, "mistral-7b": 210, "real_size": 90, "tiny": 300}   # seconds, per phase


def environment(device: str) -> dict:
    """Versions of the stack and the card: its name, memory and whether it computes in bf16."""
    import importlib.metadata as metadata

    import torch

    found = {}
    for package in ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    card = {}
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        card = {"name": props.name, "memory_gb": props.total_memory / 1e9, "capability": f"{props.major}.{props.minor}",
                "bf16": bool(torch.cuda.is_bf16_supported())}
    return {"versions": found, "card": card}


def _phase(target, args, queue) -> None:
    """A phase in its own process: its record, or its error, on ``queue``."""
    try:
        queue.put(("done", target(*args)))
    except Exception as exc:   # recorded, not fatal: the other phases still run
        log.exception("gpu-check: a phase failed")
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_phase(target, args: tuple, timeout_s: float) -> dict:
    """``target(*args)`` in a fresh process (so each phase starts from an empty GPU and its peak is its
    own), stopped after ``timeout_s``; its record, or ``{"error": ...}`` saying why there is none."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_phase, args=(target, args, queue), daemon=True)
    process.start()
    try:
        status, value = queue.get(timeout=timeout_s)
    except Exception:   # queue.Empty: the phase ran past its limit or died without a word
        status, value = "error", (f"timed out after {timeout_s:g} s" if process.is_alive()
                                  else f"the phase's process died (exit code {process.exitcode})")
    if process.is_alive():
        process.kill()
    process.join(10)
    return json.loads(json.dumps(value, default=str)) if status == "done" else {"error": value}


def run_check(device: str, out_dir: Path | str, real_size=None, plan: dict | None = None,
              timeouts: dict | None = None) -> dict:
    """Run the plan for ``device`` (:data:`GPU_PLAN` on CUDA, :data:`CPU_PLAN` otherwise) and, when
    given, ``real_size()`` (a module-level callable returning the real-size run's record), each
    phase in its own process with its limit (:data:`PHASE_TIMEOUT_S`, or ``timeouts``). After every
    phase ``gpu-check.json`` and ``gpu-check.md`` in ``out_dir`` are rewritten whole with what has
    been measured so far, so a check cut short keeps its finished phases. Returns the record."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan if plan is not None else (GPU_PLAN if device == "cuda" else CPU_PLAN)
    limits = {**PHASE_TIMEOUT_S, **(timeouts or {})}
    started = time.perf_counter()
    record = {"device": device, **environment(device), "benches": {}, "real_size": None, "phases_done": []}

    def save(phase: str) -> None:
        record["phases_done"].append(phase)
        record["seconds"] = time.perf_counter() - started
        write_json(out_dir / "gpu-check.json", record)
        write_text(out_dir / "gpu-check.md", format_check(record))

    for shape, kwargs in plan.items():
        log.info("gpu-check: bench %s on %s", shape, device)
        config = benchmark.BenchConfig(shape=shape, device=device, out=out_dir / f"bench-{shape}-{device}.json", **kwargs)
        record["benches"][shape] = run_phase(benchmark.run, (config,), limits.get(shape, 300))
        save(shape)
    if real_size is not None:
        record["real_size"] = run_phase(real_size, (), limits["real_size"])
        save("real_size")
    return record


def format_check(record: dict) -> str:
    """One Markdown table: per shape, each peak beside its estimate, the times, sampling rates and
    peaks per batch size, and every target with its verdict; then the real-size run's times."""
    card = record.get("card") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items() if v)
    lines = [f"gpu-check on {record['device']} ({fmt(record.get('seconds'))} s)"
             + (f": {card.get('name')}, {fmt(card.get('memory_gb'))} GB, bf16 {card.get('bf16')}" if card else ""),
             *([f"versions: {versions}"] if versions else []), "",
             "| shape | figure | measured | estimate / limit | holds |", "|---|---|---|---|---|"]
    for shape, r in record["benches"].items():
        if "error" in r:
            lines.append(f"| {shape} | error | {r['error'][:120]} | | |")
            continue
        for label, key, est in PEAKS:
            lines.append(f"| {shape} | {label} | {fmt(r.get(key))} | {fmt(r.get(est)) if est else '-'} | |")
        for label, key in TIMES:
            lines.append(f"| {shape} | {label} | {fmt(r.get(key))} | | |")
        for key in sorted(k for k in r if k.startswith("sample.tokens_per_s.b")):
            b = key.rsplit(".", 1)[-1]
            lines.append(f"| {shape} | sampling {b} tokens/s (peak GB) | {fmt(r[key])} ({fmt(r.get(f'sample.peak_gb.{b}'))}) "
                         f"| {fmt(r.get(f'estimate.sampling.{b}_gb'))} GB | |")
        for name, value, limit, holds in benchmark.targets(r):
            lines.append(f"| {shape} | target {name} | {fmt(value)} | {fmt(limit)} | {fmt(holds)} |")
    real = record.get("real_size")
    if real:
        if "error" in real:
            lines.append(f"| real-size 0.5B | error | {real['error'][:120]} | | |")
        else:
            for key in ("load_and_sft_answers_s", "dpo_baseline_s", "spa_seed_and_round_s", "total_s"):
                lines.append(f"| real-size 0.5B | {key} | {fmt(real.get(key))} | | |")
    return "\n".join(lines) + "\n"
