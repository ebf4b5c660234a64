"""The baselines and controls of the replication tables: DPO on the gold seed, DPO on all labels,
and the measurements that tell whether the world is a fair test — does the outcome depend on the
labels (DPO on on-policy pairs with gold against random labels), and does Sr-DPO's Delta have room
after DPO's schedule."""
from __future__ import annotations

import random
import time

from ..engine import losses
from . import sr_dpo
from .session import SFT, Session, plain


def dpo_baseline(session: Session, rows: list[dict], beta: float = 0.1, epochs: int = 1, name: int | None = None,
                 stage: str = "DPO") -> dict:
    """DPO from pi_init with reference pi_init on ``rows`` (iterate ``name``, a fresh one by
    default), evaluated against SFT."""
    start = time.perf_counter()
    name = session.fresh() if name is None else name
    history = session.train(name, plain(rows), losses.dpo(beta), ref=SFT, init_from=None, epochs=epochs, stage=stage)
    return {"pairs": len(rows), "pairs_truncated": history.pairs_truncated, **session.evaluate(name, label=stage).record,
            "final_margin": history.last("margin"), "seconds": time.perf_counter() - start}


def _swapped(row: dict) -> dict:
    return {"prompt": row["prompt"], "chosen": row["rejected"], "rejected": row["chosen"]}


def label_sensitivity(session: Session, prompts: list[str], beta: float = 0.1, stage: str = "label sensitivity") -> dict:
    """Does the outcome depend on the labels? Two samples of the SFT model at the sampler's
    temperature on each of ``prompts`` (identical pairs and gold ties dropped), labelled once by
    the gold judge and once by a fair coin; one epoch of DPO from the SFT model on each; their win
    rates against SFT and the difference (protocol, fairness check ``label_sensitivity``)."""
    samples = session.sample(SFT, prompts, n_samples=2, seed=session.config.seed * 100 + 50)
    rows = [{"prompt": p, "chosen": a, "rejected": b} for p, (a, b) in zip(prompts, samples) if a != b]
    if not rows:
        raise ValueError(f"{stage}: all {len(prompts)} sampled pairs were identical")
    gaps = session.gold_gaps(rows)
    decided = [(r, g) for r, g in zip(rows, gaps) if g != 0]
    if not decided:
        raise ValueError(f"{stage}: the gold judge ties every one of the {len(rows)} pairs")
    coin = random.Random(session.config.seed * 7_919 + 50)
    gold = [r if g > 0 else _swapped(r) for r, g in decided]
    rand = [r if coin.random() < 0.5 else _swapped(r) for r, _ in decided]
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
