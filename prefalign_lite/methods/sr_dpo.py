"""Single-pass methods on an offline set: DPO, IPO, Sr-DPO / Sr-IPO (with or without the prompt)
and the thesis' DRO-DPO solved per batch (the ablation of the SPA-loop version in ``dro.py``) —
one iterate trained from pi_init with reference pi_init."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..engine import losses
from ..engine.losses import TrainingLoss
from .session import SFT, Evaluation, Session, plain


@dataclass
class SinglePass:
    """One trained model: the numbers a notebook saves and its evaluation (for head-to-heads)."""

    record: dict
    evaluation: Evaluation


def run_single_pass(session: Session, offline: list[dict], objective: TrainingLoss, name: int = 1, epochs: int = 1,
                    stage: str = "single pass") -> SinglePass:
    start = time.perf_counter()
    history = session.train(name, plain(offline), objective, ref=SFT, init_from=None, epochs=epochs, stage=stage)
    evaluation = session.evaluate(name)
    record = {"pairs": len(offline), "pairs_truncated": history.pairs_truncated, **evaluation.record,
              "final_margin": history.last("margin"), "seconds": time.perf_counter() - start}
    return SinglePass(record, evaluation)


def sr_dpo(session: Session, offline: list[dict], beta: float = 0.1, lam: float = 0.5, naive: bool = False,
           ipo_form: bool = False, name: int = 1) -> SinglePass:
    """Sr-DPO (Eq. 11-12) or Sr-IPO with the setting's quality prompt; ``naive`` is the
    Delta_naive ablation (Eq. 10, no prompt)."""
    prefix = None if naive else session.setting.quality_prompt
    return run_single_pass(session, offline, losses.sr_dpo(beta, lam, prefix, ipo_form), name,
                           stage="Sr-IPO" if ipo_form else "Sr-DPO")


def dro_dpo(session: Session, offline: list[dict], beta: float = 0.1, epsilon: float = 0.01,
            n_pieces: int = 8, floor: float = 1e-3, name: int = 1) -> SinglePass:
    return run_single_pass(session, offline, losses.dro_dpo(beta, epsilon, n_pieces, floor), name,
                           stage="DRO-DPO per batch")
