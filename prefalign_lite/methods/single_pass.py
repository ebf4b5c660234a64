"""Single-pass methods on an offline set: DPO, IPO, Sr-DPO / Sr-IPO (with or without the prompt)
and the thesis' DRO-DPO solved per batch (the ablation of the SPA-loop version in ``dro.py``) —
one iterate trained from pi_init with reference pi_init."""
from __future__ import annotations

import time

from .. import plugins
from .common import Session, plain


def run_single_pass(session: Session, offline: list[dict], objective, name: int = 1, epochs: int = 1,
                    stage: str = "single pass") -> dict:
    start = time.perf_counter()
    history = session.train(name, plain(offline), objective, ref=None, init_from=None, epochs=epochs, stage=stage)
    return {"pairs": len(offline), "pairs_truncated": history.pairs_truncated, **session.evaluate(name),
            "final_margin": history.last("margin"), "seconds": time.perf_counter() - start}


def sr_dpo(session: Session, offline: list[dict], beta: float = 0.1, lam: float = 0.5, prefix: str | None = "setting",
           ipo_form: bool = False, name: int = 1) -> dict:
    """Sr-DPO (Eq. 11-12) or Sr-IPO; ``prefix="setting"`` is the setting's quality prompt, ``None``
    the Delta_naive ablation (Eq. 10)."""
    prefix = session.setting.quality_prompt if prefix == "setting" else prefix
    return run_single_pass(session, offline, plugins.sr_dpo(beta, lam, prefix, ipo_form), name,
                           stage="Sr-IPO" if ipo_form else "Sr-DPO")


def dro_dpo(session: Session, offline: list[dict], beta: float = 0.1, epsilon: float = 0.01,
            n_pieces: int = 8, floor: float = 1e-3, name: int = 1) -> dict:
    return run_single_pass(session, offline, plugins.dro_dpo(beta, epsilon, n_pieces, floor), name,
                           stage="DRO-DPO per batch")
