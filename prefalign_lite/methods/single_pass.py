"""Single-pass methods on an offline set: DPO, Sr-DPO / Sr-IPO (with or without the prompt) and
the thesis' DRO-DPO — one iterate trained from pi_init with reference pi_init."""
from __future__ import annotations

import time

from .. import plugins
from .common import Session


def run_single_pass(session: Session, offline: list[dict], objective, name: int = 1, epochs: int = 1) -> dict:
    start = time.perf_counter()
    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in offline]
    history = session.train(name, rows, objective, ref=None, init_from=None, epochs=epochs)
    return {"pairs": len(rows), **session.evaluate(name), "final_margin": history.last("margin"),
            "seconds": time.perf_counter() - start}


def sr_dpo(session: Session, offline: list[dict], beta: float = 0.5, lam: float = 0.5,
           prefix: str | None = plugins.TOY_QUALITY_PREFIX, ipo_form: bool = False, name: int = 1) -> dict:
    return run_single_pass(session, offline, plugins.sr_dpo(beta, lam, prefix, ipo_form), name)


def dro_dpo(session: Session, offline: list[dict], beta: float = 0.5, epsilon: float = 0.01,
            n_pieces: int = 8, floor: float = 1e-3, name: int = 1) -> dict:
    return run_single_pass(session, offline, plugins.dro_dpo(beta, epsilon, n_pieces, floor), name)
