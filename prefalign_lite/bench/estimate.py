"""``python -m prefalign_lite bench --estimate``: the memory model of :mod:`prefalign_lite.engine.memory`
for a bench shape or a run config, every component of every phase, in GB. No model is built.

The run configs' presets are the settings a run uses, with every term that is alive at once:

* the training pass (pairs x tokens; the same for any gradient accumulation), four resident adapters;
* the no-gradient log-prob pass of the judge and the KL: as many rows as
  :data:`~prefalign_lite.engine.logps.LOGPROB_TOKEN_BUDGET` tokens hold (at most 128 pairs);
* sampling: the batch :func:`~prefalign_lite.engine.generate.default_batch_size` picks on the
  preset's card, with the merged bf16 copy of the iterate alive beside the 4-bit base (the session
  reserves it when it sizes the batch, and frees it before any judging, scoring or training);
* reward scoring: the reward model in bf16 (offloaded to the CPU between passes) at as many
  conversations of the judge's longest context as
  :data:`~prefalign_lite.engine.reward_model.REWARD_TOKEN_BUDGET` tokens hold, beside the policy's
  4-bit base and adapters, which stay on the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from ..engine import generate, memory
from ..engine.logps import LOGPROB_TOKEN_BUDGET
from ..engine.reward_model import REWARD_TOKEN_BUDGET
from .shapes import SHAPES, Shape, build_config

GB = 1e9
CUDA_CONTEXT_GB = 1.0   # the CUDA context and allocator slack, not counted in any phase


@dataclass(frozen=True)
class Preset:
    """A run's memory-relevant settings."""

    shape: str
    pairs: int
    prompt_tokens: int
    completion_tokens: int
    card_gb: float                 # the GPU the preset is for: it sets the sampling batch
    logprob_pairs: int = 128       # pair_logps' batch_size (the token budget usually binds first)
    sample_prompt_tokens: int = 512
    new_tokens: int = 300
    adapters: int = 4
    merged_sampling: bool = True
    reward_shape: str | None = None
    reward_batch: int = 32
    reward_tokens: int = 4096      # the judge's longest context (DatasetSetting.judge_max_length)
    note: str = ""


PRESETS = {
    "mistral7b-sft-4bit": Preset("mistral-7b", 4, 512, 512, 40, reward_shape="skywork-reward-v2-llama-3.1-8b",
                                 note="configs/mistral7b-sft-4bit.yaml: 4 pairs x 1,024 tokens per pass, a 40 GB card"),
    "mistral7b-sft-4bit-80gb": Preset("mistral-7b", 4, 512, 512, 80, reward_shape="skywork-reward-v2-llama-3.1-8b",
                                      note="configs/mistral7b-sft-4bit-80gb.yaml: the same run on an 80 GB card"),
    "qwen0.5b-4bit": Preset("qwen2.5-0.5b", 8, 256, 256, 16, reward_shape="skywork-reward-v2-qwen3-0.6b",
                            note="configs/qwen0.5b-4bit.yaml at the bench's 8 pairs x 512 tokens per pass, a 16 GB card"),
}


def dims(shape: Shape) -> memory.Dims:
    return memory.Dims.from_config(build_config(shape))


def sampling_batch(shape: str, card_gb: float, prompt_tokens: int, new_tokens: int, *, adapters: int = 4,
                   merged: bool = True) -> int:
    """The batch :func:`generate.default_batch_size` picks on a card of ``card_gb`` with the 4-bit
    base and its adapters loaded, the merged copy reserved (``merged``) and the CUDA context aside."""
    config, d = build_config(SHAPES[shape]), dims(SHAPES[shape])
    resident = memory.weights_bytes(d, True) + adapters * d.lora_params(16) * 4 + CUDA_CONTEXT_GB * GB
    return generate.default_batch_size(SimpleNamespace(config=config), "cuda", context_tokens=prompt_tokens + new_tokens,
                                       prompt_tokens=prompt_tokens, free_bytes=card_gb * GB - resident,
                                       reserve_bytes=memory.merged_copy_bytes(config) if merged else 0)


def estimate(shape: str, pairs: int, prompt_tokens: int, completion_tokens: int, *, logprob_rows: int | None = None,
             sample_batch: int = 64, sample_prompt_tokens: int = 128, new_tokens: int = 128, adapters: int = 1,
             merged_sampling: bool = False, reward_shape: str | None = None, reward_batch: int = 32,
             reward_tokens: int = 1024, four_bit: bool = True) -> dict[str, memory.Estimate]:
    """``{phase: Estimate}`` for one shape and batch (see :mod:`prefalign_lite.engine.memory`)."""
    d = dims(SHAPES[shape])
    seq = prompt_tokens + completion_tokens
    out = {"training step": memory.training_step(d, pairs, seq, completion_tokens, four_bit=four_bit, adapters=adapters),
           "log-prob pass": memory.logprob_pass(d, logprob_rows or 2 * pairs, seq, completion_tokens, four_bit=four_bit,
                                                adapters=adapters),
           "sampling": memory.sampling(d, sample_batch, sample_prompt_tokens, new_tokens, four_bit=four_bit,
                                       adapters=adapters, merged=merged_sampling)}
    if reward_shape:
        out["reward scoring"] = memory.reward_scoring(dims(SHAPES[reward_shape]), reward_batch, reward_tokens,
                                                      beside=memory.weights_bytes(d, four_bit)
                                                      + adapters * d.lora_params(16) * 4)
    return out


def preset_batches(p: Preset) -> dict[str, int]:
    """The batches a run of preset ``p`` uses: log-prob rows and reward conversations within their
    token budgets, the sampling batch its card gives."""
    seq = p.prompt_tokens + p.completion_tokens
    return {"logprob_rows": min(2 * p.logprob_pairs, max(2, LOGPROB_TOKEN_BUDGET // seq // 2 * 2)),
            "reward_batch": min(p.reward_batch, max(1, REWARD_TOKEN_BUDGET // p.reward_tokens)),
            "sample_batch": sampling_batch(p.shape, p.card_gb, p.sample_prompt_tokens, p.new_tokens,
                                           adapters=p.adapters, merged=p.merged_sampling)}


def preset_estimate(name: str) -> dict[str, memory.Estimate]:
    p, b = PRESETS[name], preset_batches(PRESETS[name])
    return estimate(p.shape, p.pairs, p.prompt_tokens, p.completion_tokens, logprob_rows=b["logprob_rows"],
                    sample_batch=b["sample_batch"], sample_prompt_tokens=p.sample_prompt_tokens, new_tokens=p.new_tokens,
                    adapters=p.adapters, merged_sampling=p.merged_sampling, reward_shape=p.reward_shape,
                    reward_batch=b["reward_batch"], reward_tokens=p.reward_tokens)


def shape_estimate(name: str, sample_batch: int = 256) -> dict[str, memory.Estimate]:
    """A bench shape at its own batch (the bench's sampling: 128-token prompts, 128 new tokens)."""
    s = SHAPES[name]
    return estimate(name, s.pairs, s.prompt_tokens, s.completion_tokens, sample_batch=sample_batch)


def format_estimate(title: str, phases: dict[str, memory.Estimate]) -> str:
    """A Markdown table: one row per phase and component, then each phase's peak (in bold) and how
    the components combine into it."""
    lines = [f"**{title}**", "", "| phase | component | GB |", "|---|---|---|"]
    for phase, e in phases.items():
        for component, value in e.components.items():
            lines.append(f"| {phase} | {component.replace('_', ' ')} | {value / GB:.2f} |")
        lines.append(f"| {phase} | **peak** = {e.rule.replace('_', ' ')} | **{e.peak / GB:.2f}** |")
    return "\n".join(lines)


def peak_by_phase(phases: dict[str, memory.Estimate]) -> dict[str, float]:
    """The peak of each phase in GB (the figure set beside a measured peak)."""
    return {phase: e.peak / GB for phase, e in phases.items()}


BENCH_SHAPES = ("mistral-7b", "qwen2.5-0.5b")   # the shapes whose targets the bench checks


def preset_title(name: str) -> str:
    """The preset's note and the batches it runs at."""
    p, b = PRESETS[name], preset_batches(PRESETS[name])
    seq = p.prompt_tokens + p.completion_tokens
    return (f"{p.note}; log-prob pass {b['logprob_rows']} rows x {seq:,}, sampling {b['sample_batch']} x "
            f"({p.sample_prompt_tokens} + {p.new_tokens}){' with the merged copy' if p.merged_sampling else ''}, "
            f"reward scoring {b['reward_batch']} x {p.reward_tokens:,}")


def preset_for(config: str) -> str:
    """The preset of a run config given by name or path (``configs/mistral7b-sft-4bit.yaml``)."""
    name = config.rsplit("/", 1)[-1].removesuffix(".yaml")
    if name not in PRESETS:
        raise ValueError(f"no memory preset for config {config!r}: presets are {sorted(PRESETS)}")
    return name


def estimate_report(shape: str | None = None, config: str | None = None) -> str:
    """What ``bench --estimate`` prints: the tables of a config's preset or a bench shape at its own
    batch, or (neither given) of every preset and every bench shape with a target."""
    if config:
        names = [(f"config {preset_for(config)} ({preset_title(preset_for(config))})", preset_estimate(preset_for(config)))]
    elif shape:
        names = [(f"shape {shape} at {SHAPES[shape].pairs} pairs x {SHAPES[shape].max_length} tokens",
                  shape_estimate(shape))]
    else:
        names = [(f"config {p} ({preset_title(p)})", preset_estimate(p)) for p in PRESETS]
        names += [(f"shape {s} at {SHAPES[s].pairs} pairs x {SHAPES[s].max_length} tokens", shape_estimate(s))
                  for s in BENCH_SHAPES]
    return "\n\n".join(format_estimate(title, phases) for title, phases in names)
