"""The real-size shape on any device: a randomly initialised full-size Qwen2.5-0.5B (151,936-id
vocabulary, tied embeddings, GQA; ``standin:qwen2.5-0.5b-instruct-full-size``) with Qwen's tokenizer
rules, through what notebook 11 runs (DPO on SPA's gold seed, evaluated by the reward model) and one
SPA round (sampling, Eq. 7 labels, the refined objective, evaluation with both KLs), on the
UltraFeedback-binarized stand-in at a handful of prompts and tokens:

    python -m prefalign_lite real-size [--prompts 30] [--eval 4] [--new-tokens 8]

It checks that every phase runs at the real shape (the vocabulary-sized head, the real layer
widths), not what it measures: the weights are random.
"""
from __future__ import annotations

import dataclasses
import time

from ..methods import spa, splits
from ..methods.baselines import dpo_baseline
from ..methods.session import Session, SessionConfig
from ..settings import DatasetSetting, resolve

MODEL = "standin:qwen2.5-0.5b-instruct-full-size"
DATASET = "standin:ultrafeedback_binarized"
JUDGE = "standin:skywork-reward-v2-qwen3-0.6b"


def run_real_size(n_prompts: int = 30, n_eval: int = 4, new_tokens: int = 8, max_length: int = 192,
                  seed: int = 0, model: str = MODEL, dataset: str = DATASET, judge: str = JUDGE) -> dict:
    """Seconds of each phase and the records of the DPO baseline and of SPA's seed and round 1
    (``model``, ``dataset`` and ``judge`` name the real-size stand-ins unless given)."""
    times, start = {}, time.perf_counter()
    setting = DatasetSetting(source=resolve(dataset), judge_model=resolve(judge), max_new_tokens=new_tokens,
                             max_length=max_length, max_prompt_tokens=max_length // 2, judge_batch_size=8,
                             judge_max_length=max_length)
    training = dataclasses.replace(SessionConfig().training, batch_size=2, grad_accumulation=2)
    session = Session(setting, model, SessionConfig(seed=seed, n_eval=n_eval, n_train=splits.spa_pool_size(n_prompts),
                                                    kl_prompts=n_eval, training=training))
    times["load_and_sft_answers_s"] = time.perf_counter() - start
    data = splits.spa_data(session, n_prompts)
    tick = time.perf_counter()
    baseline = dpo_baseline(session, data.seed_rows)
    times["dpo_baseline_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    run = spa.run_spa(session, data.seed_rows, data.prompt_sets[:1], spa.SpaConfig()).result()
    times["spa_seed_and_round_s"] = time.perf_counter() - tick
    times["total_s"] = time.perf_counter() - start
    base = sum(p.numel() for name, p in session.iterates.base.named_parameters() if "lora_" not in name)
    return {"model": model, "parameters": base,
            "vocab_size": session.iterates.base.config.vocab_size, "n_prompts": n_prompts, "n_eval": n_eval,
            "new_tokens": new_tokens, "max_length": max_length, "device": str(session.device),
            "dpo_baseline": baseline, "spa": run.to_json(), **times}
