"""``python -m prefalign_lite gpu-check``: the one prepared check for a machine with a GPU, writing
one JSON (every figure) and one Markdown table (the figures against the targets):

* ``bench`` on ``qwen2.5-0.5b`` and ``mistral-7b``: the kit's DPO and SPA-refined steps against TRL's
  DPOTrainer, sampling with the key/value cache at two batch sizes, reward-model scoring, and the
  memory model's estimate beside each measured peak (:mod:`.benchmark`, :mod:`.estimate`);
* the real-size Qwen2.5-0.5B run at a few prompts (:mod:`prefalign_lite.replication.real_size`),
  passed in as ``real_size`` (this layer does not import the replication layer).

``--device cpu`` is the dry run: the same code at the ``tiny`` shape with few steps (a minute on
two cores), the real-size run left out unless asked for. Planned to take about 8 minutes on one
H100/H200 (not yet timed on one).
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


def run_check(device: str, out_dir: Path | str, real_size=None, plan: dict | None = None) -> dict:
    """Run the plan for ``device`` (:data:`GPU_PLAN` on CUDA, :data:`CPU_PLAN` otherwise) and, when
    given, ``real_size()`` (a callable returning the real-size run's record); write
    ``gpu-check.json`` and ``gpu-check.md`` into ``out_dir`` and return the record."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan or (GPU_PLAN if device == "cuda" else CPU_PLAN)
    started, record = time.perf_counter(), {"device": device, "benches": {}, "real_size": None}
    for shape, kwargs in plan.items():
        log.info("gpu-check: bench %s on %s", shape, device)
        try:
            config = benchmark.BenchConfig(shape=shape, device=device, out=out_dir / f"bench-{shape}-{device}.json",
                                           **kwargs)
            record["benches"][shape] = benchmark.run(config)
        except Exception as exc:   # recorded, not fatal: the other shapes still run
            log.exception("gpu-check: bench %s failed", shape)
            record["benches"][shape] = {"error": f"{type(exc).__name__}: {exc}"}
    if real_size is not None:
        try:
            record["real_size"] = real_size()
        except Exception as exc:
            log.exception("gpu-check: the real-size run failed")
            record["real_size"] = {"error": f"{type(exc).__name__}: {exc}"}
    record["seconds"] = time.perf_counter() - started
    write_json(out_dir / "gpu-check.json", json.loads(json.dumps(record, default=str)))
    write_text(out_dir / "gpu-check.md", format_check(record))
    return record


def format_check(record: dict) -> str:
    """One Markdown table: per shape, each peak beside its estimate, the times, sampling rates and
    peaks per batch size, and every target with its verdict; then the real-size run's times."""
    lines = [f"gpu-check on {record['device']} ({fmt(record.get('seconds'))} s)", "",
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
