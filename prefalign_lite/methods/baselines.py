"""The baselines of the replication tables: DPO on the gold seed only, DPO on all gold labels."""
from __future__ import annotations

import time

from ..engine import losses
from .session import SFT, Session, plain


def dpo_baseline(session: Session, rows: list[dict], beta: float = 0.1, epochs: int = 1, name: int = 0,
                 stage: str = "DPO") -> dict:
    """DPO from pi_init with reference pi_init on ``rows``, evaluated against SFT."""
    start = time.perf_counter()
    history = session.train(name, plain(rows), losses.dpo(beta), ref=SFT, init_from=None, epochs=epochs, stage=stage)
    return {"pairs": len(rows), "pairs_truncated": history.pairs_truncated, **session.evaluate(name).record,
            "seconds": time.perf_counter() - start}
