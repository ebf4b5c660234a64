"""The tabular Bradley-Terry sandbox: a world small enough that the right answer is known exactly.

A handful of prompts, each with a finite set of responses carrying a latent reward and a spurious
"length". A policy is a table of logits, one row per prompt, so ``log pi(y|x)`` is a log-softmax of
that row. With a KL penalty ``beta`` the RLHF optimum is ``pi* ∝ pi_ref exp(r / beta)`` (the
derivation of DPO), and DPO trained on the Bradley-Terry preferences must reach it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..core.arguments import check_positive, check_range
from ..core.margin import log_ratio_margin
from ..core.noise import AdaptiveThreshold, refinement_alpha
from ..core.selection import extreme_pairs
from ..objectives import extrapolated_logps, spa_refined_loss

log = logging.getLogger(__name__)


@dataclass
class Sandbox:
    """``rewards``, ``lengths`` and ``ref_logits`` have shape ``(n_prompts, n_responses)``."""

    rewards: torch.Tensor
    lengths: torch.Tensor
    ref_logits: torch.Tensor

    @property
    def n_prompts(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_responses(self) -> int:
        return self.rewards.shape[1]

    def optimal_policy(self, beta: float) -> torch.Tensor:
        """The exact KL-regularised optimum ``pi* ∝ pi_ref exp(r / beta)``, shape ``(P, R)``."""
        beta = check_positive("beta", beta)
        return torch.softmax(self.ref_logits + self.rewards / beta, dim=-1)


@dataclass
class Pairs:
    """Labelled preference pairs: ``prompt``, ``chosen``, ``rejected`` are index tensors ``(M,)``;
    ``flipped`` marks pairs whose label disagrees with the latent reward (noise, known here);
    ``weight`` is 1 for sampled pairs and the label probability for the exhaustive soft pairs."""

    prompt: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor
    flipped: torch.Tensor
    weight: torch.Tensor

    def __len__(self) -> int:
        return self.prompt.numel()

    def subset(self, index: torch.Tensor) -> "Pairs":
        return Pairs(*(getattr(self, f)[index] for f in _FIELDS))

    def __add__(self, other: "Pairs") -> "Pairs":
        return Pairs(*(torch.cat([getattr(self, f), getattr(other, f)]) for f in _FIELDS))


_FIELDS = ("prompt", "chosen", "rejected", "flipped", "weight")


def make_sandbox(n_prompts: int = 8, n_responses: int = 6, reward_scale: float = 1.0,
                 ref_scale: float = 1.0, max_length: int = 10, seed: int = 0) -> Sandbox:
    """Random latent rewards ``N(0, reward_scale²)``, a reference policy with random logits and
    integer lengths in ``[1, max_length]`` drawn independently of the reward (so any length
    preference of the annotator is purely spurious)."""
    g = torch.Generator().manual_seed(seed)
    shape = (n_prompts, n_responses)
    rewards = reward_scale * torch.randn(shape, generator=g, dtype=torch.float64)
    ref_logits = ref_scale * torch.randn(shape, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, max_length + 1, shape, generator=g).to(torch.float64)
    return Sandbox(rewards=rewards, lengths=lengths, ref_logits=ref_logits)


def annotator_probability(box: Sandbox, prompt, first, second, temperature: float = 1.0,
                          length_bias: float = 0.0) -> torch.Tensor:
    """Bradley-Terry probability that the annotator prefers ``first`` over ``second``:
    ``sigma((r1 - r2) / temperature + length_bias * (len1 - len2))``."""
    temperature = check_positive("temperature", temperature)
    dr = box.rewards[prompt, first] - box.rewards[prompt, second]
    dl = box.lengths[prompt, first] - box.lengths[prompt, second]
    return torch.sigmoid(dr / temperature + length_bias * dl)


def sample_pairs(box: Sandbox, n_pairs: int, flip_rate: float = 0.0, temperature: float = 1.0,
                 length_bias: float = 0.0, seed: int = 0) -> Pairs:
    """Draw ``n_pairs`` (prompt, two distinct responses), label them with the BT annotator, then
    flip a ``flip_rate`` share of the labels at random. ``flipped`` records pairs whose final label
    contradicts the latent reward, whatever the cause (annotator noise, length bias or the flip)."""
    flip_rate = check_range("flip_rate", flip_rate, 0.0, 1.0)
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, box.n_prompts, (n_pairs,), generator=g)
    first = torch.randint(0, box.n_responses, (n_pairs,), generator=g)
    offset = torch.randint(1, box.n_responses, (n_pairs,), generator=g)
    second = (first + offset) % box.n_responses
    p = annotator_probability(box, prompt, first, second, temperature, length_bias)
    first_wins = torch.rand(n_pairs, generator=g, dtype=torch.float64) < p
    first_wins ^= torch.rand(n_pairs, generator=g, dtype=torch.float64) < flip_rate
    chosen = torch.where(first_wins, first, second)
    rejected = torch.where(first_wins, second, first)
    flipped = box.rewards[prompt, chosen] < box.rewards[prompt, rejected]
    return Pairs(prompt, chosen, rejected, flipped, torch.ones(n_pairs, dtype=torch.float64))


def all_pairs(box: Sandbox, temperature: float = 1.0) -> Pairs:
    """Every ordered pair of distinct responses, weighted by the annotator's probability of that
    order: the population version of the data, whose DPO minimiser is exactly ``pi*`` when
    ``temperature = 1`` and ``beta`` is the KL weight."""
    idx = [(x, a, b) for x in range(box.n_prompts) for a in range(box.n_responses)
           for b in range(box.n_responses) if a != b]
    prompt, chosen, rejected = (torch.tensor(col) for col in zip(*idx))
    weight = annotator_probability(box, prompt, chosen, rejected, temperature)
    flipped = box.rewards[prompt, chosen] < box.rewards[prompt, rejected]
    return Pairs(prompt, chosen, rejected, flipped, weight)


def pair_logps(logits: torch.Tensor, pairs: Pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log pi(chosen|x), log pi(rejected|x))`` for a tabular policy given by its logits."""
    logp = F.log_softmax(logits, dim=-1)
    return logp[pairs.prompt, pairs.chosen], logp[pairs.prompt, pairs.rejected]


def mean_kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """``KL(p || q)`` averaged over prompts, for row-stochastic tables ``(P, R)``."""
    return float((p * (p.log() - q.log())).sum(-1).mean())


def tabular_logps(box: Sandbox, logits: torch.Tensor, pairs: Pairs, ref_logits: torch.Tensor | None = None):
    """``(pi_w, pi_l, ref_w, ref_l)`` for the pairs: the argument list every objective takes. The
    reference is the sandbox's unless ``ref_logits`` (e.g. a previous iterate) is given."""
    ref = box.ref_logits if ref_logits is None else ref_logits
    return (*pair_logps(logits, pairs), *pair_logps(ref, pairs))


def extrapolated_pair_logps(box: Sandbox, logits: torch.Tensor, pairs: Pairs, lam: float):
    """``(pi~_w, pi~_l)`` under SPA's de-coupled model (Eq. 12); in the tabular world a response
    is a single token, so a row of logits is the whole next-token distribution."""
    policy, ref = logits[pairs.prompt].unsqueeze(1), box.ref_logits[pairs.prompt].unsqueeze(1)
    return tuple(extrapolated_logps(policy, ref, y.unsqueeze(1), lam) for y in (pairs.chosen, pairs.rejected))


def expected_reward(box: Sandbox, logits: torch.Tensor) -> float:
    """The true reward of a policy: ``E_x E_{y~pi(.|x)} r(x, y)`` (prompts weighted equally)."""
    return float((torch.softmax(logits, -1) * box.rewards).sum(-1).mean())


def implicit_reward(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """``log pi(y|x) - log pi_ref(y|x)`` for every (prompt, response): DPO's reward over beta."""
    return F.log_softmax(logits, -1) - F.log_softmax(ref_logits, -1)


def ranking_accuracy(box: Sandbox, scores: torch.Tensor) -> float:
    """Share of (prompt, response pair) whose order under ``scores`` (P, R) matches the reward's."""
    ds = scores.unsqueeze(-1) - scores.unsqueeze(-2)
    dr = box.rewards.unsqueeze(-1) - box.rewards.unsqueeze(-2)
    upper = torch.triu(torch.ones_like(dr, dtype=torch.bool), diagonal=1).expand_as(dr)
    return float(((ds * dr)[upper] > 0).double().mean())


def augmented_margins(box: Sandbox, logits: torch.Tensor, pairs: Pairs, kappa_policy: float,
                      kappa_ref: float) -> tuple[torch.Tensor, ...]:
    """Sr-DPO's prompt-augmented log-probs ``(pi_w, pi_l, ref_w, ref_l)`` given ``p + x``, in a toy
    model of what the quality instruction does: it tilts a model towards better responses,
    ``pi(y|p+x) ∝ pi(y|x) exp(kappa r(x, y))``, the policy by ``kappa_policy`` and the reference by
    ``kappa_ref``. Then ``Delta = beta h + beta (kappa_policy - kappa_ref)(r_w - r_l)``: with equal
    tilts the prompt adds nothing (``Delta`` = ``Delta_naive``); a policy that follows the
    instruction more than the reference makes ``Delta`` a second, label-free view of the reward."""
    pol = pair_logps(logits + kappa_policy * box.rewards, pairs)
    ref = pair_logps(box.ref_logits + kappa_ref * box.rewards, pairs)
    return (*pol, *ref)


PairLoss = Callable[[torch.Tensor, Pairs, int], torch.Tensor]


def pair_loss(box: Sandbox, objective, *args, ref_logits: torch.Tensor | None = None, **kwargs) -> PairLoss:
    """Adapt an objective ``f(pi_w, pi_l, ref_w, ref_l, *args, **kwargs)`` from
    :mod:`prefalign_lite.objectives` into a ``loss`` for :func:`train_tabular`."""
    return lambda logits, batch, step: objective(*tabular_logps(box, logits, batch, ref_logits), *args, **kwargs)


def bootstrap_pairs(box: Sandbox, logits: torch.Tensor, reward: torch.Tensor, n_groups: int,
                    n_samples: int = 4, temperature: float = 0.7, seed: int = 0) -> tuple[Pairs, torch.Tensor]:
    """SeRA's preference bootstrapping in the sandbox: ``n_groups`` times, pick a prompt, sample
    ``n_samples`` responses from the policy at ``temperature``, score them with ``reward`` (a
    ``(P, R)`` table, e.g. an implicit reward) and pair the best with the worst. Groups whose
    samples all score the same are dropped. Returns the pairs and their reward margins."""
    temperature = check_positive("temperature", temperature)
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, box.n_prompts, (n_groups,), generator=g)
    probs = torch.softmax(logits[prompt] / temperature, -1)
    samples = torch.multinomial(probs, n_samples, replacement=True, generator=g)
    best, worst, margin = extreme_pairs(reward[prompt.unsqueeze(1), samples])
    chosen, rejected = samples.gather(1, best[:, None])[:, 0], samples.gather(1, worst[:, None])[:, 0]
    keep = margin > 0
    flipped = box.rewards[prompt, chosen] < box.rewards[prompt, rejected]
    pairs = Pairs(prompt, chosen, rejected, flipped, torch.ones(n_groups, dtype=torch.float64))
    return pairs.subset(keep), margin[keep]


def train_tabular(box: Sandbox, pairs: Pairs, loss: PairLoss, steps: int = 500, lr: float = 0.1,
                  batch_size: int | None = None, target: torch.Tensor | None = None,
                  seed: int = 0, init: torch.Tensor | None = None) -> tuple[torch.Tensor, list[float]]:
    """Adam on a tabular policy initialised at the reference (or at ``init``, a previous iterate). ``loss(logits, batch, step)``
    returns per-pair losses (see :func:`tabular_logps`), weighted by ``batch.weight`` and averaged.
    Returns the final logits and, if ``target`` (a policy table) is given, ``KL(target || pi)``
    after each step."""
    g = torch.Generator().manual_seed(seed)
    logits = (box.ref_logits if init is None else init).clone().requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    kls: list[float] = []
    for step in range(steps):
        index = torch.arange(len(pairs)) if batch_size is None else torch.randperm(len(pairs), generator=g)[:batch_size]
        batch = pairs.subset(index)
        per_pair = loss(logits, batch, step)
        value = (batch.weight * per_pair).sum() / batch.weight.sum()
        opt.zero_grad()
        value.backward()
        opt.step()
        if target is not None:
            kls.append(mean_kl(target, torch.softmax(logits.detach(), -1)))
    return logits.detach(), kls


class SpaTabularLoss:
    """SPA's refined loss (Eq. 10) with de-coupled noise detection (Eq. 11-12) on the sandbox, as a
    ``loss`` for :func:`train_tabular`. Every call records which pairs it flagged, so precision and
    recall of the flag against the known ``flipped`` labels can be measured afterwards."""

    def __init__(self, box: Sandbox, beta: float = 0.1, alpha: float = 0.1, k: float = 0.1,
                 lam: float = 0.5, total_steps: int = 500, warmup_fraction: float = 0.2,
                 window: int = 50):
        self.box, self.beta, self.alpha, self.lam = box, beta, alpha, lam
        self.total_steps, self.warmup_fraction = total_steps, warmup_fraction
        self.threshold = AdaptiveThreshold(k=k, window=window)
        self.flags: list[torch.Tensor] = []
        self.flipped: list[torch.Tensor] = []

    def __call__(self, logits: torch.Tensor, batch: Pairs, step: int) -> torch.Tensor:
        pi_w, pi_l, ref_w, ref_l = tabular_logps(self.box, logits, batch)
        with torch.no_grad():
            ext_w, ext_l = extrapolated_pair_logps(self.box, logits, batch, self.lam)
            z = self.threshold(self.beta * log_ratio_margin(ext_w, ext_l, ref_w, ref_l))
        alpha = refinement_alpha(step, self.total_steps, self.alpha, self.warmup_fraction)
        if alpha > 0:
            self.flags.append(z.bool())
            self.flipped.append(batch.flipped)
        return spa_refined_loss(pi_w, pi_l, ref_w, ref_l, z, self.beta, alpha)

    def precision_recall(self) -> tuple[float, float]:
        """Of the pairs flagged after warm-up, the share truly flipped; of the flipped ones seen
        after warm-up, the share flagged."""
        z, flipped = torch.cat(self.flags), torch.cat(self.flipped)
        precision = float((z & flipped).sum() / z.sum().clamp_min(1))
        recall = float((z & flipped).sum() / flipped.sum().clamp_min(1))
        return precision, recall
