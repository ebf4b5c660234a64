"""``python -m prefalign_lite bench``: the kit's engine against TRL on a model of real shape.

On one randomly initialised model (no weights downloaded; shapes in :mod:`.shapes`), QLoRA r = 16 on all seven projections over a 4-bit NF4 base
(bitsandbytes; on a CPU through its CPU backend), with random token ids of the shape's lengths:

* ``kit.dpo`` / ``kit.spa``: seconds per optimizer step and peak memory of
  :class:`~prefalign_lite.engine.trainer.PreferenceTrainer` with DPO and with SPA's refined objective
  (de-coupled detection, i.e. the extrapolated log-probs of Eq. 12);
* ``bare``: a bare forward+backward (+ optimizer step) of the same model and batch;
* ``kit.forward_s``: one no-grad forward of the batch through the log-prob path (the judge's cost);
* ``sample`` / ``sample_merged``: new tokens per second of ``generate`` at several batch sizes,
  the 4-bit base with the LoRA iterate active, then a merged dense copy of the iterate;
* ``trl.dpo``: TRL's ``DPOTrainer`` on the same model and batches (run last: TRL modifies the model);
* ``dro.lp_s``: one solve of the thesis' worst-case linear program (Eq. 2-4) for 256 pairs and 8
  pieces, the size of one DRO round's batch of confidences;
* ``reward``: seconds per scoring pass and peak memory of a random reward model of the config's
  judge's shape (:data:`REWARD_SHAPE_OF`) on a batch of conversations of the batch's length;
* ``projection``: the wall time of one SPA iteration on N prompts, sampling, judging, reward-model
  scoring, training and evaluation (formula in :func:`.projection.project_spa_iteration`);
* ``estimate.*_gb``: the memory model's figure beside each measured peak (:mod:`.estimate`);
* ``target.*``: the targets of the engine issue that apply to this shape and device, each with its
  value, its limit and whether it holds.

Everything lands in one JSON file with flat keys, written atomically.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from pathlib import Path

import torch

from ..core.files import write_json
from ..engine import generate, logps, losses, models, trainer
from ..engine.reward_model import last_token_scores
from . import estimate as memory_estimate
from .projection import project_spa_iteration
from .shapes import PeakMemory, Shape, build_config, environment, get_shape, random_base, random_rows, synchronize

log = logging.getLogger(__name__)
GB = 1e9


def measure_kit(iterates: models.IterateAdapters, rows: list[dict], shape: Shape, objective, label: str,
                warmup: int, steps: int, seed: int = 0) -> dict:
    """The kit's trainer on ``warmup + steps`` batches: median seconds per update after the warm-up
    (the trainer times each update; its ``.item()`` calls synchronise the GPU) and peak memory."""
    cfg = trainer.TrainConfig(batch_size=shape.pairs, max_length=shape.max_length, log_every=1, progress=False,
                              learning_rate=1e-5, warmup_fraction=0.0, seed=seed, stage=f"bench {label}")
    run = trainer.PreferenceTrainer(iterates.model, None, objective, lambda: iterates.use(None), cfg)
    quiet = logging.getLogger(trainer.__name__)
    level, _ = quiet.level, quiet.setLevel(logging.WARNING)  # one line per update is noise here
    try:
        with PeakMemory(run.device) as memory:
            history = run.train(rows[:shape.pairs * (warmup + steps)])
    finally:
        quiet.setLevel(level)
    times = [r["seconds_per_update"] for r in history.records][warmup:]
    return {"step_s": statistics.median(times), "peak_gb": memory.peak_gb, "peak_delta_gb": memory.delta_gb,
            "bf16": run.bf16, "gradient_checkpointing": run.checkpointing, "steps_timed": len(times)}


def _timed(fn, device, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_bare(iterates: models.IterateAdapters, rows: list[dict], shape: Shape, warmup: int, steps: int) -> dict:
    """(Iterate 1 active.) A bare forward (full logits) + ``logits.float().mean()`` backward + optimizer step of the
    same model and batch, with the kit's device defaults (bf16 autocast and activation
    checkpointing on a GPU, neither on a CPU)."""
    model = iterates.model
    ref = trainer.PreferenceTrainer(model, None, losses.Dpo(0.1), lambda: iterates.use(None),
                                    trainer.TrainConfig(max_length=shape.max_length, progress=False))
    batch = ref.encode(rows[:shape.pairs]).to(ref.device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)

    def bare():
        with ref.autocast():
            out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
        out.float().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.train()
    models.unpack_cpu_4bit(model)
    with trainer.activation_checkpointing(model, ref.checkpointing), PeakMemory(ref.device) as memory:
        step = _timed(bare, ref.device, warmup, steps)

    def forward():
        with iterates.use(1) as m, ref.autocast():
            logps.forward_logps(m, batch)

    forward_s = _timed(forward, ref.device, 1, steps)
    model.eval()
    return {"bare.step_s": step, "bare.peak_gb": memory.peak_gb, "bare.peak_delta_gb": memory.delta_gb,
            "kit.forward_s": forward_s}


@torch.no_grad()
def sampling_rates(model, vocab: int, batch_sizes: tuple[int, ...], prompt_tokens: int, new_tokens: int,
                   device: torch.device, seed: int = 0, peaks: dict | None = None) -> dict:
    """New tokens per second of ``generate`` (temperature 0.7, top-p 0.95, exactly ``new_tokens``
    per sequence, the key/value cache on) on random prompts, per batch size; ``None`` where the
    batch ran out of memory. ``peaks`` receives each batch size's peak memory in GB."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    out: dict = {}

    def once(b: int, n: int):
        ids = torch.randint(1, vocab, (b, prompt_tokens), generator=gen).to(device)
        return generate.generate_ids(model, ids, torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                                     pad_token_id=0, eos_token_id=None)

    once(min(batch_sizes), 2)  # warm-up
    for b in batch_sizes:
        try:
            with PeakMemory(device) as memory:
                start = time.perf_counter()
                new = once(b, new_tokens)
                synchronize(device)
                out[f"b{b}"] = new.numel() / (time.perf_counter() - start)
            if peaks is not None:
                peaks[f"b{b}"] = memory.peak_gb
        except torch.OutOfMemoryError:
            out[f"b{b}"] = None
            torch.cuda.empty_cache()
    model.train(was)
    return out


@torch.no_grad()
def measure_reward_scoring(shape_name: str, device: torch.device, rows: int, tokens: int, warmup: int = 1,
                           steps: int = 3, seed: int = 0) -> dict:
    """Seconds per scoring pass and peak memory of a randomly initialised reward model of
    ``shape_name`` (a sequence classifier in the device's dtype, under its autocast) on ``rows``
    random conversations of ``tokens`` tokens."""
    from transformers import AutoModelForSequenceClassification

    spec = get_shape(shape_name)
    torch.manual_seed(seed)
    dtype = models.default_dtype(device)
    with torch.device(device):
        model = AutoModelForSequenceClassification.from_config(build_config(spec, num_labels=1), dtype=dtype).eval()
    ids = torch.randint(1, spec.config["vocab_size"], (rows, tokens), generator=torch.Generator().manual_seed(seed)).to(device)
    mask = torch.ones_like(ids)

    def once():
        with models.autocast_for(device):
            last_token_scores(model, ids, mask)

    with PeakMemory(device) as memory:
        seconds = _timed(once, device, warmup, steps)
    out = {"score_s": seconds, "peak_gb": memory.peak_gb, "rows": rows, "tokens": tokens, "shape": shape_name,
           "parameters": sum(p.numel() for p in model.parameters())}
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


REWARD_SHAPE_OF = {"mistral-7b": "skywork-reward-v2-llama-3.1-8b", "qwen2.5-0.5b": "skywork-reward-v2-qwen3-0.6b"}


def _estimates(shape: str, spec: Shape, batches, prompt_tokens: int, new_tokens: int, reward_shape: str,
               reward_rows: int, four_bit: bool) -> dict:
    """The memory model's totals for what was measured: the training step at the bench's batch, the
    sampling call at each batch size, the reward model's scoring pass."""
    phases = memory_estimate.estimate(shape, spec.pairs, spec.prompt_tokens, spec.completion_tokens,
                                      sample_batch=max(batches), sample_prompt_tokens=prompt_tokens,
                                      new_tokens=new_tokens, reward_shape=reward_shape, reward_batch=reward_rows,
                                      reward_tokens=spec.max_length, four_bit=four_bit)
    out = {f"estimate.{phase.replace(' ', '_').replace('-', '_')}_gb": gb
           for phase, gb in memory_estimate.peak_by_phase(phases).items()}
    for b in batches:
        part = memory_estimate.estimate(shape, spec.pairs, spec.prompt_tokens, spec.completion_tokens, sample_batch=b,
                                        sample_prompt_tokens=prompt_tokens, new_tokens=new_tokens, four_bit=four_bit)
        out[f"estimate.sampling.b{b}_gb"] = memory_estimate.peak_by_phase(part)["sampling"]
    return out


def lp_solve_seconds(n_pairs: int = 256, n_pieces: int = 8, epsilon: float = 0.05, seed: int = 0) -> float:
    """Seconds of one :func:`~prefalign_lite.objectives.dro_worst_case` on ``n_pairs`` random confidences."""
    from .. import objectives

    xi = torch.sigmoid(torch.randn(n_pairs, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    start = time.perf_counter()
    objectives.dro_worst_case(xi, epsilon, n_pieces)
    return time.perf_counter() - start


def check_targets(r: dict, shape_name: str) -> dict:
    """The issue's targets that apply to this run: ``target.NAME.{value,limit,holds}``."""
    checks = []
    ratio = lambda a, b: r[a] / r[b] if r.get(a) and r.get(b) else None  # noqa: E731
    gpu = r["device"] == "cuda"
    if gpu and shape_name == "mistral-7b":
        checks += [("kit_dpo_peak_gb", r.get("kit.dpo.peak_gb"), 18.0),
                   ("sample_best_tokens_per_s_min", r.get("sample.tokens_per_s.best"), 3000.0),
                   ("spa_iteration_h", r.get("projection.spa_iteration_h"), 1.5)]
    if gpu and shape_name == "qwen2.5-0.5b":
        checks.append(("kit_dpo_peak_gb", r.get("kit.dpo.peak_gb"), 4.0))
    checks += [("kit_dpo_step_over_trl", ratio("kit.dpo.step_s", "trl.dpo.step_s"), 1.0),
               ("kit_spa_step_over_kit_dpo", ratio("kit.spa.step_s", "kit.dpo.step_s"), 1.15),
               ("kit_spa_peak_over_kit_dpo", ratio("kit.spa.peak_gb", "kit.dpo.peak_gb"), 1.3)]
    if not gpu:
        checks.append(("kit_dpo_step_over_bare", ratio("kit.dpo.step_s", "bare.step_s"), 2.0))
    checks.append(("dro_lp_n256_k8_s", r.get("dro.lp_s"), 5.0))
    out = {}
    for name, value, limit in checks:
        minimum = name.endswith("_min")
        holds = None if value is None else (value >= limit if minimum else value <= limit)
        out.update({f"target.{name}.value": value, f"target.{name}.limit": limit, f"target.{name}.holds": holds})
    return out


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What :func:`run` measures and how: the flags of ``python -m prefalign_lite bench``."""

    shape: str = "tiny"                            # a shape of :mod:`.shapes`; default "tiny"
    device: str | torch.device | None = None       # "cuda" or "cpu"; default None: CUDA where available
    warmup: int = 2                                # untimed optimizer steps before the timed ones; default 2
    steps: int = 5                                 # timed optimizer steps; default 5
    sample_batches: tuple[int, ...] | None = None  # generation batch sizes; default None: the shape's for the device
    sample_prompt_tokens: int | None = None        # prompt length when sampling; default None: 128 on a GPU, 8 on a CPU
    sample_new_tokens: int | None = None           # new tokens per sequence; default None: 128 on a GPU, 16 on a CPU
    n_prompts: int = 10_000                        # N of the SPA-iteration projection; default 10,000
    with_trl: bool = True                          # also TRL's DPOTrainer on the same model and batches; default True
    with_sampling: bool = True                     # also the sampling rates and the projection; default True
    four_bit: bool = True                          # the base quantised to 4-bit NF4 (else the device's dtype); default True
    out: Path | str | None = None                  # the JSON file, written atomically; default None: none written
    seed: int = 0                                  # seed of the random base, batches and prompts; default 0
    pairs: int | None = None                       # pairs per step; default None: the shape's
    prompt_tokens: int | None = None               # prompt length of the training batch; default None: the shape's
    completion_tokens: int | None = None           # completion length of the training batch; default None: the shape's
    reward_shape: str | None = None                # the reward model's shape; default None: REWARD_SHAPE_OF[shape] or shape
    reward_rows: int | None = None                 # rows per scoring pass; default None: 32 on a GPU, 2 x pairs on a CPU


def run(config: BenchConfig) -> dict:
    """Measure everything listed in the module docstring for ``config.shape`` (its batch, or
    ``pairs`` x ``prompt_tokens + completion_tokens``), and the scoring pass of a random reward model
    of ``reward_shape`` on ``reward_rows`` conversations of the batch's length; returns the flat dict
    and writes it to ``out`` (JSON, atomically) when given. Every measured peak has the memory
    model's estimate beside it (``estimate.*_gb``)."""
    shape, warmup, steps, seed, four_bit = config.shape, config.warmup, config.steps, config.seed, config.four_bit
    spec = get_shape(shape)
    spec = dataclasses.replace(spec, pairs=config.pairs or spec.pairs,
                               prompt_tokens=config.prompt_tokens or spec.prompt_tokens,
                               completion_tokens=config.completion_tokens or spec.completion_tokens)
    if min(warmup, steps - 1, spec.pairs - 1, spec.prompt_tokens - 1, spec.completion_tokens - 1) < 0:
        raise ValueError(f"need warmup >= 0, steps >= 1 and a batch of >= 1 pair of >= 1 prompt and completion "
                         f"token, got warmup {warmup}, steps {steps}, {spec.pairs} pairs x "
                         f"{spec.prompt_tokens} + {spec.completion_tokens} tokens")
    device = torch.device(config.device or models.default_device())
    gpu = device.type == "cuda"
    started = time.perf_counter()
    result: dict = {"shape": shape, "shape.note": spec.note, **environment(device),
                    "shape.config": {"model_type": spec.model_type, **spec.config},
                    "batch.pairs": spec.pairs, "batch.prompt_tokens": spec.prompt_tokens,
                    "batch.completion_tokens": spec.completion_tokens, "batch.max_length": spec.max_length,
                    "lora.r": 16, "lora.targets": list(models.LORA_TARGETS), "base.four_bit": four_bit,
                    "warmup_steps": warmup, "timed_steps": steps,
                    "memory_measure": "torch.cuda.max_memory_allocated" if gpu else
                    "peak resident memory of the process (sampled every 2 ms); peak_delta_gb is above the level before"}
    base = random_base(spec, device, four_bit=four_bit, seed=seed)
    result["base.parameters"] = sum(p.numel() for p in base.parameters())
    iterates = models.IterateAdapters(base, models.LoraSettings(r=16, alpha=32))
    iterates.create(1)
    vocab = spec.config["vocab_size"]
    rows = random_rows(spec.pairs * (warmup + steps), spec.prompt_tokens, spec.completion_tokens, vocab, seed)

    for label, objective in (("dpo", losses.Dpo(0.1)),
                             ("spa", losses.SpaRefined(beta=0.1, alpha=0.1, k=0.1, lam=0.5, decoupled=True,
                                                         warmup_fraction=0.0))):
        log.info("bench %s: kit %s", shape, label)
        result.update({f"kit.{label}.{k}": v for k, v in measure_kit(iterates, rows, spec, objective, label,
                                                                     warmup, steps, seed).items()})
    log.info("bench %s: bare forward+backward", shape)
    result.update(measure_bare(iterates, rows, spec, warmup, steps))
    reward_shape = config.reward_shape or REWARD_SHAPE_OF.get(shape, shape)
    reward_rows = config.reward_rows or (32 if gpu else 2 * spec.pairs)
    log.info("bench %s: reward scoring (%s)", shape, reward_shape)
    result.update({f"reward.{k}": v for k, v in measure_reward_scoring(reward_shape, device, reward_rows,
                                                                        spec.max_length).items()})

    batches = config.sample_batches or (spec.sample_batches_gpu if gpu else spec.sample_batches_cpu)
    p_tok = config.sample_prompt_tokens or (128 if gpu else 8)
    n_new = config.sample_new_tokens or (128 if gpu else 16)
    result.update(_estimates(shape, spec, batches, p_tok, n_new, reward_shape, reward_rows, four_bit))
    if config.with_sampling:
        result.update({"sample.prompt_tokens": p_tok, "sample.new_tokens": n_new})
        log.info("bench %s: sampling, 4-bit base + iterate", shape)
        peaks: dict = {}
        with iterates.use(1) as m:
            rates = sampling_rates(m, vocab, batches, p_tok, n_new, device, seed, peaks)
        result.update({f"sample.tokens_per_s.{k}": v for k, v in rates.items()})
        result.update({f"sample.peak_gb.{k}": v for k, v in peaks.items()})
        dtype = models.default_dtype(device)
        merged = iterates.merged(1, dtype=dtype)
        result["sample_merged.dtype"] = str(dtype).replace("torch.", "")
        log.info("bench %s: sampling, merged %s copy", shape, result["sample_merged.dtype"])
        merged_rates = sampling_rates(merged, vocab, batches, p_tok, n_new, device, seed)
        del merged
        if gpu:
            torch.cuda.empty_cache()
        result.update({f"sample_merged.tokens_per_s.{k}": v for k, v in merged_rates.items()})
        best = max((v for v in rates.values() if v), default=None)
        best_merged = max((v for v in merged_rates.values() if v), default=None)
        result.update({"sample.tokens_per_s.best": best, "sample_merged.tokens_per_s.best": best_merged,
                       "sample.merged_faster": bool(best_merged and best and best_merged > best)})
        if best:
            scoring = dict(score_s=result["reward.score_s"], score_rows=reward_rows, score_length=spec.max_length)
            result.update(project_spa_iteration(config.n_prompts, best, result["kit.forward_s"],
                                                result["kit.spa.step_s"], spec.pairs, spec.max_length, **scoring))
            if best_merged:
                result["projection.spa_iteration_h_with_merged_sampling"] = project_spa_iteration(
                    config.n_prompts, best_merged, result["kit.forward_s"], result["kit.spa.step_s"], spec.pairs,
                    spec.max_length, **scoring)["projection.spa_iteration_h"]

    if config.with_trl:
        from .trl_dpo import TRL_DEFAULTS_NOTE, measure_trl_dpo

        log.info("bench %s: TRL DPOTrainer", shape)
        result["trl.note"] = TRL_DEFAULTS_NOTE
        try:
            base = iterates.model.unload()  # the kit's adapters off; TRL puts its own (same settings) on
            trl = measure_trl_dpo(base, iterates.adapter_config(), rows, spec.pairs, spec.max_length, warmup, steps,
                                  device, bf16=True, checkpointing=gpu, seed=seed)
            result.update({f"trl.dpo.{k}": v for k, v in trl.items()})
        except Exception as exc:  # recorded, not fatal: the kit's figures stand on their own
            log.exception("TRL DPOTrainer failed")
            result["trl.error"] = f"{type(exc).__name__}: {exc}"
    result["dro.lp_s"] = lp_solve_seconds()
    result.update(check_targets(result, shape))
    result["bench_seconds"] = time.perf_counter() - started
    if config.out is not None:
        write_json(Path(config.out), result)
    return result


def fmt(v) -> str:
    """A figure as the bench's tables print it: "-" when missing, yes/NO, 3 significant digits."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else str(v)
    return str(v)


def targets(r: dict) -> list[tuple[str, object, object, object]]:
    """A bench record's targets as ``(name, value, limit, holds)``, by name; ``holds`` is ``None``
    where the target was not measured."""
    names = sorted(k[len("target."):-len(".holds")] for k in r if k.startswith("target.") and k.endswith(".holds"))
    return [(n, r.get(f"target.{n}.value"), r.get(f"target.{n}.limit"), r[f"target.{n}.holds"]) for n in names]


def format_table(r: dict) -> str:
    """A short text table of the main figures (each peak beside the memory model's estimate) and the targets."""
    lines = [f"bench {r['shape']} on {r['device']} ({r.get('device_name')}), {r['batch.pairs']} pairs x "
             f"{r['batch.max_length']} tokens, QLoRA r=16, 4-bit base: {r['base.four_bit']}",
             f"{'what':<34}{'step s':>10}{'peak GB':>10}{'estimate GB':>13}"]
    estimate_of = {"kit.dpo": "estimate.training_step_gb", "kit.spa": "estimate.training_step_gb"}
    for label in ("kit.dpo", "kit.spa", "trl.dpo", "bare"):
        if f"{label}.step_s" in r:
            lines.append(f"{label:<34}{fmt(r[f'{label}.step_s']):>10}{fmt(r.get(f'{label}.peak_gb')):>10}"
                         f"{fmt(r.get(estimate_of.get(label, ''))):>13}")
    if "reward.score_s" in r:
        lines.append(f"{'reward scoring (' + r['reward.shape'] + ')':<34}{fmt(r['reward.score_s']):>10}"
                     f"{fmt(r['reward.peak_gb']):>10}{fmt(r.get('estimate.reward_scoring_gb')):>13}")
    for key in sorted(k for k in r if k.startswith(("sample.tokens_per_s.", "sample_merged.tokens_per_s."))):
        b = key.rsplit(".", 1)[-1]
        peak = r.get(f"sample.peak_gb.{b}") if key.startswith("sample.") else None
        est = r.get(f"estimate.sampling.{b}_gb") if key.startswith("sample.") else None
        lines.append(f"{key + ' (tokens/s)':<44}{fmt(r[key]):>10}{fmt(peak) if peak else '':>10}"
                     f"{fmt(est) if est else '':>13}")
    if "projection.spa_iteration_h" in r:
        parts = ", ".join(f"{k} {fmt(r[f'projection.{k}_h'])}" for k in ("sample", "judge", "score", "train", "evaluate"))
        lines.append(f"{'SPA iteration on %d prompts (h)' % r['projection.n_prompts']:<44}"
                     f"{fmt(r['projection.spa_iteration_h']):>10}  ({parts})")
    for name, value, limit, holds in targets(r):
        lines.append(f"target {name:<36} {fmt(value)} (limit {fmt(limit)}): {fmt(holds) if holds is not None else 'not measured'}")
    if "trl.error" in r:
        lines.append(f"TRL failed: {r['trl.error']}")
    return "\n".join(lines)
