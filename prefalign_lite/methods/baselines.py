"""The baselines and controls of the replication tables: DPO on the gold seed, DPO on all labels,
and the measurements that tell whether the world is a fair test — does the outcome depend on the
labels (DPO on on-policy pairs with gold against random labels), and does Sr-DPO's Delta have room
after DPO's schedule."""
from __future__ import annotations

import random

import numpy as np

from ..core.pairs import label_quality, ordered
from ..core.streams import LABEL_SENSITIVITY
from ..engine import losses
from . import judges, sr_dpo
from .pairs import sample_pairs, train_and_evaluate
from .session import SFT, Session


def dpo_baseline(session: Session, rows: list[dict], beta: float = 0.1, epochs: int = 1, name: int | None = None,
                 stage: str = "DPO") -> dict:
    """DPO from pi_init with reference pi_init on ``rows`` (iterate ``name``, a fresh one by
    default), evaluated against SFT: the record of :func:`.pairs.train_and_evaluate`."""
    return train_and_evaluate(session, rows, losses.make("dpo", beta=beta), name, epochs, stage).record


def sft_measurements(session: Session) -> dict:
    """The SFT model's side of the fairness checks (``replication.fairness`` says what each
    decides), on the held-out prompts: the share of its answers the gold judge scores 1, its gold
    score asked with the setting's quality instruction minus without, and its accuracy as
    LLM-as-judge on pairs of its own answers (ties excluded)."""
    prompts = session.eval_prompts
    quality = [f"{session.setting.quality_prompt} {p}" for p in prompts]
    with_instruction = [r[0] for r in session.sample(SFT, quality, temperature=session.config.eval_temperature,
                                                     seed=session.seed_of("quality instruction answers"))]
    gain = session.score(prompts, with_instruction) - session.sft_scores
    sampled = sample_pairs(session, SFT, prompts, session.seed_of("judge pairs"), "SFT as LLM-as-judge")
    with session.model_for(SFT) as m:
        first = judges.llm_prefers_first(m, session.tokenizer, session.setting, sampled.pairs, session.max_length)
    quality_of = label_quality(session.gold_gaps(ordered(sampled.pairs, first)))
    return {"perfect_share": float(np.mean(session.sft_scores >= 1.0)), "sft_gold": float(session.sft_scores.mean()),
            "gold_with_instruction": float(np.mean(session.score(prompts, with_instruction))),
            "quality_gain": float(gain.mean()), "judge_accuracy": quality_of["label_accuracy"],
            "judge_pair_ties": quality_of["tie_share"], "judge_pairs": len(sampled.pairs)}


def label_sensitivity(session: Session, prompts: list[str], beta: float = 0.1, stage: str = "label sensitivity") -> dict:
    """Does the outcome depend on the labels? Two samples of the SFT model at the sampler's
    temperature on each of ``prompts`` (identical pairs and gold ties dropped), labelled once by
    the gold judge and once by a fair coin; one epoch of DPO from the SFT model on each; their win
    rates against SFT and the difference (protocol, fairness check ``label_sensitivity``)."""
    sampled = sample_pairs(session, SFT, prompts, session.seed_of("pair samples", LABEL_SENSITIVITY), stage)
    gaps = session.gold_gaps(sampled.pairs)
    decided = [(p, g) for p, g in zip(sampled.pairs, gaps) if g != 0]
    if not decided:
        raise ValueError(f"{stage}: the gold judge ties every one of the {len(sampled.pairs)} pairs")
    coin = random.Random(session.seed_of("coin", LABEL_SENSITIVITY))
    gold = ordered([p for p, _ in decided], [g > 0 for _, g in decided])
    rand = ordered([p for p, _ in decided], [coin.random() < 0.5 for _ in decided])
    with_gold = dpo_baseline(session, gold, beta, stage=f"{stage}, gold labels")
    with_coin = dpo_baseline(session, rand, beta, stage=f"{stage}, random labels")
    return {"gold": with_gold, "random": with_coin, "pairs": len(decided), "sampled": len(prompts),
            "difference": with_gold["win_rate"] - with_coin["win_rate"]}


def refinement_room(session: Session, offline: list[dict], beta: float = 0.1, lam: float = 0.5,
                    stage: str = "DPO on the Sr-DPO offline set") -> dict:
    """Sr-DPO's precondition, measured on plain DPO (the schedule every method shares): DPO on the
    offline set, then :func:`sr_dpo.refinement_diagnostics` of the trained model on its pairs."""
    name = session.fresh()
    trained = dpo_baseline(session, offline, beta, name=name, stage=stage)
    return {"dpo": trained, **sr_dpo.refinement_diagnostics(session, name, offline, beta, lam)}
