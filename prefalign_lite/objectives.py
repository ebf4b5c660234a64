"""Every objective of the papers, one pure tensor function per equation.

Notation (per-example tensors of shape ``(B,)``): ``pi_w, pi_l`` are the summed log-probs of the
chosen / rejected completion under the policy, ``ref_w, ref_l`` the same under the reference, and
``h = (pi_w - ref_w) - (pi_l - ref_l)`` the log-ratio margin. Each loss returns per-example values
(no reduction). Papers: SPA (Kim et al., "Spread Preference Annotation"), SeRA (Ko et al.,
"Self-Reviewing and Alignment"), Sr-DPO (Yu et al., "quality-aware self-refinement"), and the
thesis proposal on adversarial DPO (Eq. 2-3 to 2-6, defined in ``prefalign_lite.core.robust``
and re-exported here).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .core.arguments import check_binary, check_positive, check_range, check_tensors
from .core.margin import log_ratio_margin
from .core.robust import DROWorstCase, dro_dpo_loss, dro_worst_case

__all__ = [
    "log_ratio_margin", "dpo_loss", "ipo_loss", "slic_loss", "simpo_loss", "cdpo_loss",
    "spa_preference", "spa_label", "spa_refined_loss", "extrapolated_logps", "sera_margin",
    "sera_ensemble_reward", "sr_refinement", "sr_dpo_loss", "sr_ipo_loss",
    "dro_worst_case", "dro_dpo_loss", "DROWorstCase",
]


def dpo_loss(pi_w, pi_l, ref_w, ref_l, beta: float) -> torch.Tensor:
    """DPO: ``-log sigma(beta * h)``.

    SPA Eq. 6, SeRA Eq. 4, Sr-DPO Eq. 5 (Rafailov et al., 2023)."""
    beta = check_positive("beta", beta)
    return -F.logsigmoid(beta * log_ratio_margin(pi_w, pi_l, ref_w, ref_l))


def ipo_loss(pi_w, pi_l, ref_w, ref_l, beta: float, *, len_w=None, len_l=None) -> torch.Tensor:
    """IPO: ``(h - 1/(2 beta))**2`` on summed log-probs (SeRA Eq. 9, Sr-DPO Eq. 8).

    With ``len_w`` / ``len_l`` (completion lengths in tokens) each log-prob is first divided by its
    length, which is what TRL's ``loss_type="ipo"`` does; the papers use summed log-probs."""
    beta = check_positive("beta", beta)
    check_tensors(pi_w=pi_w, len_w=len_w, len_l=len_l)
    if (len_w is None) != (len_l is None):
        raise ValueError("len_w and len_l must be given together")
    if len_w is not None:
        for name, n in (("len_w", len_w), ("len_l", len_l)):
            if not bool((n > 0).all()):
                raise ValueError(f"{name} must be > 0 everywhere (a completion length in tokens)")
        pi_w, ref_w, pi_l, ref_l = pi_w / len_w, ref_w / len_w, pi_l / len_l, ref_l / len_l
    return (log_ratio_margin(pi_w, pi_l, ref_w, ref_l) - 1.0 / (2.0 * beta)) ** 2


def slic_loss(pi_w, pi_l, ref_w, ref_l, beta: float) -> torch.Tensor:
    """SLiC-HF hinge loss: ``max(0, 1 - beta * h)`` (SeRA Eq. 8)."""
    beta = check_positive("beta", beta)
    return torch.relu(1.0 - beta * log_ratio_margin(pi_w, pi_l, ref_w, ref_l))


def simpo_loss(pi_w_avg, pi_l_avg, beta: float, gamma: float = 0.0) -> torch.Tensor:
    """SimPO: ``-log sigma(beta * (avg_w - avg_l) - gamma)`` on length-averaged log-probs, no
    reference model (SeRA Eq. 17-18; Meng et al., 2024)."""
    beta = check_positive("beta", beta)
    gamma = check_range("gamma", gamma, 0.0, float("inf"))
    check_tensors(pi_w_avg=pi_w_avg, pi_l_avg=pi_l_avg)
    return -F.logsigmoid(beta * (pi_w_avg - pi_l_avg) - gamma)


def cdpo_loss(pi_w, pi_l, ref_w, ref_l, beta: float, label_smoothing: float) -> torch.Tensor:
    """Conservative DPO: ``-(1-eps) log sigma(beta h) - eps log sigma(-beta h)``, i.e. DPO trained
    against labels that are flipped with probability ``eps`` (Mitchell, 2023). It is SPA Eq. 10
    with every pair flagged (``z = 1``, ``alpha = eps``)."""
    beta = check_positive("beta", beta)
    eps = check_range("label_smoothing", label_smoothing, 0.0, 0.5)
    logits = beta * log_ratio_margin(pi_w, pi_l, ref_w, ref_l)
    return -(1.0 - eps) * F.logsigmoid(logits) - eps * F.logsigmoid(-logits)


def spa_preference(pi_1, pi_2, init_1, init_2, beta: float) -> torch.Tensor:
    """SPA Eq. 7: the judge's probability that y1 beats y2,
    ``sigma(beta * [(pi_1 - init_1) - (pi_2 - init_2)])``, with the current iterate's log-probs
    ``pi_*`` measured against the initial SFT model's ``init_*``."""
    beta = check_positive("beta", beta)
    return torch.sigmoid(beta * log_ratio_margin(pi_1, pi_2, init_1, init_2))


def spa_label(preference: torch.Tensor) -> torch.Tensor:
    """SPA Eq. 8: ``True`` where y1 is the chosen response (``p > 0.5``), else y2 is chosen."""
    check_tensors(preference=preference)
    return preference > 0.5


def spa_refined_loss(pi_w, pi_l, ref_w, ref_l, z, beta: float, alpha: float) -> torch.Tensor:
    """SPA Eq. 10: ``-[(1 - alpha z) log sigma(beta h) + alpha z log sigma(-beta h)]``.

    ``z`` in {0, 1} marks pairs suspected of a wrong label (Eq. 9 / Eq. 11); for those the label is
    smoothed by ``alpha``. With ``alpha = 0`` or ``z = 0`` this is exactly DPO. ``z`` is data: no
    gradient flows through it."""
    beta = check_positive("beta", beta)
    alpha = check_range("alpha", alpha, 0.0, 1.0)
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"z must be a torch.Tensor of 0/1 flags, got {type(z).__name__}")
    if z.shape != pi_w.shape:
        raise ValueError(f"z has shape {tuple(z.shape)} but pi_w has shape {tuple(pi_w.shape)}")
    check_binary("z", z)
    logits = beta * log_ratio_margin(pi_w, pi_l, ref_w, ref_l)
    smooth = alpha * z.detach().to(logits.dtype)
    return -(1.0 - smooth) * F.logsigmoid(logits) - smooth * F.logsigmoid(-logits)


def extrapolated_logps(policy_logits, ref_logits, labels, lam: float) -> torch.Tensor:
    """SPA Eq. 12: summed log-prob of ``labels`` under the de-coupled model whose next-token logits
    are ``(1 + lam) * policy_logits - lam * ref_logits``, renormalised by a softmax at every position.

    Shapes: logits ``(B, T, V)``, labels ``(B, T)`` *aligned* with the logits (``logits[:, t]``
    scores ``labels[:, t]``; shift before calling), label ``-100`` is ignored. Returns ``(B,)``.
    This is not ``(1 + lam) * logp_policy - lam * logp_ref``: the two log-normalisers differ.
    Only one extra ``(B, T, V)`` tensor (the mixed logits) is made."""
    lam = check_range("lam", lam, 0.0, float("inf"))
    check_tensors(policy_logits=policy_logits, ref_logits=ref_logits)
    if policy_logits.dim() != 3:
        raise ValueError(f"policy_logits must have shape (B, T, V), got {tuple(policy_logits.shape)}")
    if labels.shape != policy_logits.shape[:2]:
        raise ValueError(
            f"labels has shape {tuple(labels.shape)} but the logits need {tuple(policy_logits.shape[:2])}"
        )
    vocab = policy_logits.shape[-1]
    mask = labels != -100
    if bool(((labels[mask] < 0) | (labels[mask] >= vocab)).any()):
        raise ValueError(f"labels must be -100 or a token id in [0, {vocab})")
    mixed = policy_logits if lam == 0 else torch.lerp(policy_logits, ref_logits, -lam)
    safe = labels.masked_fill(~mask, 0).unsqueeze(-1)
    token_logps = mixed.gather(-1, safe).squeeze(-1) - torch.logsumexp(mixed, dim=-1)
    return (token_logps * mask).sum(-1)


def sera_margin(pi_w, pi_l, ref_w, ref_l) -> torch.Tensor:
    """SeRA Eq. 5: the implicit reward margin ``m = r(y_w) - r(y_l)`` with
    ``r(y) = log pi(y) - log ref(y)`` (no beta). Used to rank offline pairs for selection."""
    return log_ratio_margin(pi_w, pi_l, ref_w, ref_l)


def sera_ensemble_reward(logp_t1, logp_t2, logp_t3=None, gamma: float = 0.3) -> torch.Tensor:
    """SeRA Eq. 7: the ensemble implicit reward of one response,
    ``(1 - gamma)(logp_t1 - logp_t2) + gamma (logp_t2 - logp_t3)``, where ``logp_tk`` is its
    log-prob under ``pi_{t-k}``. With ``logp_t3=None`` (iterations t < 3) it is the single-step
    reward ``logp_t1 - logp_t2``."""
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    check_tensors(logp_t1=logp_t1, logp_t2=logp_t2, logp_t3=logp_t3)
    if logp_t3 is None:
        return logp_t1 - logp_t2
    return (1.0 - gamma) * (logp_t1 - logp_t2) + gamma * (logp_t2 - logp_t3)


def sr_refinement(pi_aug_w, pi_aug_l, ref_aug_w, ref_aug_l, beta: float) -> torch.Tensor:
    """Sr-DPO Eq. 11: ``Delta = beta * [(pi_aug_w - ref_aug_w) - (pi_aug_l - ref_aug_l)]``, the
    margin of the completions' log-probs given the prompt-augmented query ``p + x``."""
    beta = check_positive("beta", beta)
    return beta * log_ratio_margin(pi_aug_w, pi_aug_l, ref_aug_w, ref_aug_l)


def sr_dpo_loss(pi_w, pi_l, ref_w, ref_l, delta, beta: float, lam: float) -> torch.Tensor:
    """Sr-DPO Eq. 12 / Algorithm 1: ``-log sigma(beta h - lam * sg[Delta])``.

    ``Delta`` (from :func:`sr_refinement`) is detached here, so it shifts each pair's target margin
    but never receives gradient (the stop-gradient of Algorithm 1)."""
    beta = check_positive("beta", beta)
    lam = check_range("lam", lam, 0.0, float("inf"))
    check_tensors(pi_w=pi_w, delta=delta)
    h = log_ratio_margin(pi_w, pi_l, ref_w, ref_l)
    return -F.logsigmoid(beta * h - lam * delta.detach())


def sr_ipo_loss(pi_w, pi_l, ref_w, ref_l, delta, beta: float, lam: float) -> torch.Tensor:
    """Sr-IPO, Sr-DPO paper Algorithm 2: ``(h - lam * sg[Delta] - 1/(2 beta))**2``; its fixed
    point is ``h = 1/(2 beta) + lam * Delta`` (Proposition 3.4)."""
    beta = check_positive("beta", beta)
    lam = check_range("lam", lam, 0.0, float("inf"))
    check_tensors(pi_w=pi_w, delta=delta)
    h = log_ratio_margin(pi_w, pi_l, ref_w, ref_l)
    return (h - lam * delta.detach() - 1.0 / (2.0 * beta)) ** 2
