"""The data each replication starts from, cut from one seed's pool of training prompts (the
setting's, disjoint from the held-out evaluation prompts) the same way in every notebook.

* SPA's split of ``n_prompts``: X_1 : X_2 : X_3 take 8 : 20 : 30 sixtieths, in that order; the
  gold seed is cut from the prompts after them, so that a seed of another size (SPA Table 3: 0.8%,
  1.7%, 10%) changes only the seed and never the iteration prompts, and smaller seeds are prefixes
  of larger ones. "All gold" (SPA Table 1's Zephyr row) is the dataset's labels on every prompt of
  the 3.3% design.
* ``offline_set``: the first ``n`` pool rows with the dataset's labels, a ``flip_rate`` share of them
  swapped — the off-policy offline set of SeRA, Sr-DPO and DRO-DPO.
* ``external_rows``: labelled pairs of prompts beyond SPA's pool, for the reward-model judge.
"""
from __future__ import annotations

from dataclasses import dataclass

from .session import Session

SPA_PARTS = (2, 8, 20, 30)   # seed : X_1 : X_2 : X_3 (SPA: 2K, 8K, 20K, 30K of 60K)
LARGEST_SEED = 0.10          # SPA Table 3's largest seed share


@dataclass
class SpaData:
    seed_rows: list[dict]
    prompt_sets: list[list[str]]
    all_gold_rows: list[dict]


def iteration_sizes(n_prompts: int) -> list[int]:
    total = sum(SPA_PARTS)
    sizes = [round(n_prompts * part / total) for part in SPA_PARTS[1:]]
    if min(sizes) < 1:
        least = next(n for n in range(1, total + 1) if all(round(n * p / total) >= 1 for p in SPA_PARTS[1:]))
        raise ValueError(f"n_prompts={n_prompts} leaves an SPA round without prompts; need at least {least}")
    return sizes


def spa_pool_size(n_prompts: int) -> int:
    """Training prompts SPA needs from the pool: the three rounds and the largest seed."""
    return sum(iteration_sizes(n_prompts)) + round(LARGEST_SEED * n_prompts)


def spa_data(session: Session, n_prompts: int, seed_fraction: float = SPA_PARTS[0] / sum(SPA_PARTS),
             all_gold: bool = False) -> SpaData:
    if not 0 < seed_fraction <= LARGEST_SEED:
        raise ValueError(f"seed_fraction must be in (0, {LARGEST_SEED}], got {seed_fraction!r}")
    train, sizes = session.pool.train, iteration_sizes(n_prompts)
    needed = spa_pool_size(n_prompts)
    if len(train) < needed:
        raise ValueError(f"SPA with n_prompts={n_prompts} needs {needed} training prompts, the session drew {len(train)}")
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    prompt_sets = [[r["prompt"] for r in train[a:b]] for a, b in zip(bounds, bounds[1:])]
    seed_part = train[bounds[-1]:bounds[-1] + max(1, round(seed_fraction * n_prompts))]
    seed_rows = session.setting.labelled(seed_part, seed=session.config.seed)
    if not seed_rows:
        raise ValueError(f"SPA seed: none of its {len(seed_part)} prompts has a labelled pair; "
                         f"use a larger n_prompts or seed fraction")
    all_rows = []
    if all_gold:
        paper_seed = train[bounds[-1]:bounds[-1] + round(SPA_PARTS[0] / sum(SPA_PARTS) * n_prompts)]
        all_rows = session.setting.labelled(paper_seed + train[:bounds[-1]], seed=session.config.seed)
    return SpaData(seed_rows, prompt_sets, all_rows)


def offline_set(session: Session, n_prompts: int, flip_rate: float = 0.0) -> list[dict]:
    """The dataset's labelled pairs of the first ``n_prompts`` pool prompts; the same prompts and
    answers for every ``flip_rate`` (only which labels are swapped changes)."""
    if len(session.pool.train) < n_prompts:
        raise ValueError(f"offline set of {n_prompts} prompts, the session drew {len(session.pool.train)}")
    rows = session.setting.labelled(session.pool.train[:n_prompts], seed=session.config.seed, flip_rate=flip_rate)
    if not rows:
        raise ValueError(f"offline set: none of {n_prompts} prompts has a labelled pair")
    return rows


def external_rows(session: Session, start: int, n_prompts: int) -> list[dict]:
    """Labelled pairs of pool prompts ``start .. start + n_prompts`` (outside the method's own)."""
    part = session.pool.train[start:start + n_prompts]
    if len(part) < n_prompts:
        raise ValueError(f"external rows {start}..{start + n_prompts}: the session drew {len(session.pool.train)} prompts")
    return session.setting.labelled(part, seed=session.config.seed + 1)
