"""Single-pass methods on an offline set: DPO, IPO, Sr-DPO / Sr-IPO (with or without the prompt)
and the thesis' DRO-DPO solved per batch (the ablation of the SPA-loop version in ``dro.py``) —
one iterate trained from pi_init with reference pi_init."""
from __future__ import annotations

import numpy as np

from .. import objectives as O
from ..engine import losses
from .pairs import SinglePass, train_and_evaluate
from .session import SFT, Session, plain


def sr_dpo(session: Session, offline: list[dict], beta: float = 0.1, lam: float = 0.5, naive: bool = False,
           ipo_form: bool = False, name: int | None = None, stage: str | None = None) -> SinglePass:
    """Sr-DPO (Eq. 11-12) or Sr-IPO with the setting's quality prompt; ``naive`` is the
    Delta_naive ablation (Eq. 10, no prompt)."""
    prefix = None if naive else session.setting.quality_prompt
    return train_and_evaluate(session, offline, losses.make("sr_dpo", beta=beta, lam=lam, prefix=prefix, ipo_form=ipo_form),
                              name, stage=stage or ("Sr-IPO" if ipo_form else "Sr-DPO") + (", naive" if naive else ""))


def dro_dpo(session: Session, offline: list[dict], beta: float = 0.1, epsilon: float = 0.01,
            n_pieces: int = 8, floor: float = 1e-3, name: int | None = None, stage: str = "DRO-DPO per batch") -> SinglePass:
    """The thesis' DRO-DPO solved per batch (the ablation of the SPA-loop version in ``dro.py``)."""
    loss = losses.make("dro_dpo", beta=beta, epsilon=epsilon, n_pieces=n_pieces, floor=floor)
    return train_and_evaluate(session, offline, loss, name, stage=stage)


def refinement_values(session: Session, t: int, rows: list[dict], beta: float, prefix: str | None = "setting"):
    """Per training pair, for iterate ``t`` against the SFT model: ``(beta h, Delta_pi, gold gap)``
    as float64 arrays, where Delta_pi (Eq. 11) is the margin given the quality prompt ``p + x``
    (``prefix=None``: no prompt, so Delta_pi is Delta_naive = beta h)."""
    prefix = session.setting.quality_prompt if prefix == "setting" else prefix
    plain_rows = plain(rows)
    pi_w, pi_l = session.logps(t, plain_rows)
    ref_w, ref_l = session.logps(SFT, plain_rows)
    aug_pi_w, aug_pi_l = session.logps(t, plain_rows, prefix=prefix)
    aug_ref_w, aug_ref_l = session.logps(SFT, plain_rows, prefix=prefix)
    naive = (beta * O.log_ratio_margin(pi_w, pi_l, ref_w, ref_l)).double().numpy()
    delta = O.sr_refinement(aug_pi_w, aug_pi_l, aug_ref_w, aug_ref_l, beta).double().numpy()
    return naive, delta, session.gold_gaps(plain_rows)


def refinement_diagnostics(session: Session, t: int, rows: list[dict], beta: float, lam: float,
                           prefix: str | None = "setting") -> dict:
    """Sr-DPO's mechanism at the end of training (:func:`refinement_values` summarised).
    Corollary 3.3.1 predicts that a larger gold gap goes with a larger Delta_pi
    (``corr_delta_gold``); ``ratio`` says how far lambda Delta moves each pair's target margin
    relative to beta h, ``naive_ratio`` how much of that the prompt adds beyond Delta_naive."""
    naive, delta, gap = refinement_values(session, t, rows, beta, prefix)
    scale = float(np.mean(np.abs(naive))) or float("nan")

    def corr(x, y) -> float:
        return float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else 0.0

    return {"ratio": float(np.mean(np.abs(lam * delta))) / scale, "naive_ratio": float(np.mean(np.abs(lam * (delta - naive)))) / scale,
            "delta_abs_mean": float(np.mean(np.abs(delta))), "beta_h_abs_mean": float(np.mean(np.abs(naive))),
            "corr_delta_gold": corr(delta, gap), "corr_extra_gold": corr(delta - naive, gap),
            "delta_quantiles": [float(q) for q in np.quantile(delta, [0.05, 0.25, 0.5, 0.75, 0.95])],
            "pairs": len(rows)}
