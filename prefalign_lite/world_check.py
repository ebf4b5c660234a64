"""Is the embedded world a fair test? DPO with TRL's ``DPOTrainer`` on pairs labelled by the gold
reward must beat the SFT model clearly: that is the upper-bound row of the replication table.

``python -m prefalign_lite world-check`` prints SFT time, parse rate, the gold-reward distribution
of SFT samples, generation throughput, and the DPO-on-all-gold win rate against SFT with its CI.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import evaluate, generate, tiny, world

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckConfig:
    """Chosen by measurement before any method was run (see the notebook 10 and the README):
    pairs of the programmatic generators taught DPO nothing (win rate 0.506 [0.488, 0.524]); pairs
    of SFT samples did, best at beta 0.5."""

    n_prompts: int = 12000
    n_eval: int = 1000
    beta: float = 0.5
    learning_rate: float = 2e-4
    epochs: int = 1
    batch_size: int = 32
    temperature: float = 0.7
    sample_temperature: float = 1.0
    seed: int = 0


def gold_pairs(sft_path: Path, n_prompts: int, seed: int, temperature: float = 1.0) -> list[dict]:
    """Two samples of the SFT model per prompt, labelled by the gold reward itself (no noise; ties
    left out), in TRL's conversational format: the "all gold labels" data."""
    model, tokenizer = tiny.load(sft_path)
    tasks = world.make_tasks(n_prompts, seed=seed + 77)
    samples, _ = generate.sample(model, tokenizer, [t.prompt for t in tasks], n_samples=2,
                                 temperature=temperature, seed=seed, progress=False)
    rows = world.preference_rows(tasks, world.Annotator(temperature=1e-6), seed=seed,
                                 responses=[tuple(s) for s in samples])
    rows = [r for r in rows if r["gold_chosen"] != r["gold_rejected"]]
    return [{"prompt": [r["chosen"][0]], "chosen": [r["chosen"][1]], "rejected": [r["rejected"][1]]} for r in rows]


def train_dpo_trl(sft_path: Path, rows: list[dict], out: Path, cfg: CheckConfig) -> float:
    """TRL ``DPOTrainer`` from the SFT model (its own path is the reference); returns seconds."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = tiny.load(sft_path)
    args = DPOConfig(output_dir=str(out / "trainer"), beta=cfg.beta, learning_rate=cfg.learning_rate,
                     num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
                     lr_scheduler_type="cosine", warmup_steps=0.1, max_length=64, logging_steps=20,
                     save_strategy="no", report_to=[], seed=cfg.seed, use_cpu=True,
                     bf16=False, gradient_checkpointing=False, disable_tqdm=True)
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / "trainer", ignore_errors=True)
    return seconds


def sample_and_score(path: Path, tasks: list[world.Task], cfg: CheckConfig):
    model, tokenizer = tiny.load(path)
    out, stats = generate.sample(model, tokenizer, [t.prompt for t in tasks], temperature=cfg.temperature,
                                 seed=cfg.seed + 1, progress=False)
    responses = [o[0] for o in out]
    return responses, evaluate.gold_rewards(tasks, responses), stats


def run(cfg: CheckConfig = CheckConfig(), tiny_config: tiny.TinyConfig = tiny.TinyConfig()) -> dict:
    start = time.perf_counter()
    sft_path = tiny.sft_model_path(tiny_config)
    sft_stats = json.loads((sft_path / "sft_stats.json").read_text())
    tasks = world.make_tasks(cfg.n_eval, seed=10_000 + cfg.seed)  # held out: other seeds than training
    sft_resp, sft_gold, gen = sample_and_score(sft_path, tasks, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        rows = gold_pairs(sft_path, cfg.n_prompts, cfg.seed, cfg.sample_temperature)
        dpo_seconds = train_dpo_trl(sft_path, rows, Path(tmp), cfg)
        dpo_resp, dpo_gold, _ = sample_and_score(Path(tmp), tasks, cfg)
    w = evaluate.wins(dpo_gold, sft_gold)
    report = {
        "check": asdict(cfg),
        "sft_seconds": sft_stats["sft_seconds"], "parameters": sft_stats["parameters"],
        "sft_parse_rate": float(np.mean([world.parses(t, r) for t, r in zip(tasks, sft_resp)])),
        "sft_gold": {"mean": float(sft_gold.mean()), "std": float(sft_gold.std()),
                     "quantiles_10_50_90": [float(q) for q in np.quantile(sft_gold, [0.1, 0.5, 0.9])],
                     "share_perfect": float((sft_gold == 1).mean())},
        "generation_tokens_per_second": gen.tokens_per_second, "generation_responses_per_second": gen.responses_per_second,
        "dpo_pairs": len(rows), "dpo_seconds": dpo_seconds, "dpo_gold_mean": float(dpo_gold.mean()),
        "dpo_win_rate_vs_sft": asdict(evaluate.bootstrap_ci(w)),
        "dpo_lc_win_rate_vs_sft": evaluate.length_controlled_win_rate(
            w, [len(r.split()) for r in dpo_resp], [len(r.split()) for r in sft_resp]),
        "wall_seconds": time.perf_counter() - start,
    }
    log.info("world check: %s", report)
    return report
