"""``python -m prefalign_lite bench --estimate``: the memory model of :mod:`prefalign_lite.engine.memory`
for a bench shape or a run config, every component of every phase, in GB. No model is built.

The run configs' presets are the settings a run uses: the policy shape and its 4-bit base, the
training pass (pairs x tokens; the same for any gradient accumulation), the log-prob pass of the
judge and the KL (:func:`prefalign_lite.engine.logps.pair_logps`: 128 pairs = 256 rows per pass),
the sampling batch the device picks (:func:`prefalign_lite.engine.generate.default_batch_size` at
a 512-token prompt and 300 new tokens on an 80 GB GPU), four resident adapters, and the reward model
in bf16 scoring 32 conversations per pass.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..engine import memory
from .shapes import SHAPES, Shape, build_config

GB = 1e9


@dataclass(frozen=True)
class Preset:
    """A run's memory-relevant settings."""

    shape: str
    pairs: int
    prompt_tokens: int
    completion_tokens: int
    logprob_rows: int = 256
    sample_batch: int = 256
    sample_prompt_tokens: int = 512
    new_tokens: int = 300
    adapters: int = 4
    reward_shape: str | None = None
    reward_batch: int = 32
    reward_tokens: int = 1024
    note: str = ""


PRESETS = {
    "mistral7b-sft-4bit": Preset("mistral-7b", 4, 512, 512, reward_shape="skywork-reward-v2-llama-3.1-8b",
                                 note="configs/mistral7b-sft-4bit.yaml: 4 pairs x 1,024 tokens per pass"),
    "qwen0.5b-4bit": Preset("qwen2.5-0.5b", 8, 256, 256, reward_shape="skywork-reward-v2-qwen3-0.6b",
                            note="configs/qwen0.5b-4bit.yaml at the bench's 8 pairs x 512 tokens per pass"),
}


def dims(shape: Shape) -> memory.Dims:
    return memory.Dims.from_config(build_config(shape))


def estimate(shape: str, pairs: int, prompt_tokens: int, completion_tokens: int, *, logprob_rows: int | None = None,
             sample_batch: int = 64, sample_prompt_tokens: int = 128, new_tokens: int = 128, adapters: int = 1,
             reward_shape: str | None = None, reward_batch: int = 32, reward_tokens: int = 1024,
             four_bit: bool = True) -> dict[str, memory.Estimate]:
    """``{phase: Estimate}`` for one shape and batch (see :mod:`prefalign_lite.engine.memory`)."""
    d = dims(SHAPES[shape])
    seq = prompt_tokens + completion_tokens
    out = {"training step": memory.training_step(d, pairs, seq, completion_tokens, four_bit=four_bit, adapters=adapters),
           "log-prob pass": memory.logprob_pass(d, logprob_rows or 2 * pairs, seq, completion_tokens, four_bit=four_bit,
                                                adapters=adapters),
           "sampling": memory.sampling(d, sample_batch, sample_prompt_tokens, new_tokens, four_bit=four_bit,
                                       adapters=adapters)}
    if reward_shape:
        out["reward scoring"] = memory.reward_scoring(dims(SHAPES[reward_shape]), reward_batch, reward_tokens)
    return out


def preset_estimate(name: str) -> dict[str, memory.Estimate]:
    p = PRESETS[name]
    return estimate(p.shape, p.pairs, p.prompt_tokens, p.completion_tokens, logprob_rows=p.logprob_rows,
                    sample_batch=p.sample_batch, sample_prompt_tokens=p.sample_prompt_tokens, new_tokens=p.new_tokens,
                    adapters=p.adapters, reward_shape=p.reward_shape, reward_batch=p.reward_batch,
                    reward_tokens=p.reward_tokens)


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
        names = [("config " + preset_for(config), preset_estimate(preset_for(config)))]
    elif shape:
        names = [(f"shape {shape} at {SHAPES[shape].pairs} pairs x {SHAPES[shape].max_length} tokens",
                  shape_estimate(shape))]
    else:
        names = [(f"config {p} ({PRESETS[p].note})", preset_estimate(p)) for p in PRESETS]
        names += [(f"shape {s} at {SHAPES[s].pairs} pairs x {SHAPES[s].max_length} tokens", shape_estimate(s))
                  for s in BENCH_SHAPES]
    return "\n\n".join(format_estimate(title, phases) for title, phases in names)
