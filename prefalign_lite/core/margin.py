"""The log-ratio margin ``h`` that every pairwise objective of the papers is a function of."""
from __future__ import annotations

import torch

from .arguments import check_tensors


def log_ratio_margin(pi_w, pi_l, ref_w, ref_l) -> torch.Tensor:
    """``h = (pi_w - ref_w) - (pi_l - ref_l)``: the implicit reward margin divided by beta."""
    # summed log-probs of the chosen (_w) and rejected (_l) completion under policy and reference
    check_tensors(pi_w=pi_w, pi_l=pi_l, ref_w=ref_w, ref_l=ref_l)
    return (pi_w - ref_w) - (pi_l - ref_l)
