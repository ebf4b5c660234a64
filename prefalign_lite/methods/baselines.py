"""The baselines of the replication table: DPO on the gold seed only, DPO on all gold labels."""
from __future__ import annotations

import time

from .. import plugins
from .common import Session


def dpo_baseline(session: Session, rows: list[dict], beta: float = 0.5, epochs: int = 1, name: int = 0) -> dict:
    """DPO from pi_init with reference pi_init on ``rows`` (gold-labelled), evaluated against SFT."""
    start = time.perf_counter()
    session.train(name, rows, plugins.dpo(beta), ref=None, init_from=None, epochs=epochs)
    return {"pairs": len(rows), **session.evaluate(name), "seconds": time.perf_counter() - start}
