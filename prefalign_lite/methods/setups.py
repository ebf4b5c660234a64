"""The data each replication starts from, built the same way in notebooks 11-15 and the pipeline.

* ``spa_data``: SPA's split of one prompt pool (seed : X_1 : X_2 : X_3 = 2 : 8 : 20 : 30, so the
  gold seed is 3.3%), the seed labelled by gold on two SFT samples per prompt; a different seed
  fraction (Table 3) changes only the seed, never the iteration prompts. "All gold" labels the
  whole pool the same way.
* ``offline_set``: an UltraFeedback-like offline set for SeRA, Sr-DPO and DRO-DPO: two SFT samples
  per prompt labelled by a simulated rater (Bradley-Terry noise, a length bias, flipped labels).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import world
from .common import Session, gold_labelled, rater_labelled

SPA_PARTS = (2, 8, 20, 30)


@dataclass
class SpaData:
    seed_rows: list[dict]
    prompt_sets: list[list[world.Task]]
    all_gold_rows: list[dict]


def spa_data(session: Session, n_prompts: int = 6000, seed_fraction: float = 2 / 60, data_seed: int = 0,
             all_gold: bool = True) -> SpaData:
    if not 0 < seed_fraction < 1:
        raise ValueError(f"seed_fraction must be in (0, 1), got {seed_fraction!r}")
    unit = n_prompts / sum(SPA_PARTS)
    iteration_tasks = world.make_tasks(round(unit * sum(SPA_PARTS[1:])), seed=1_000 * data_seed + 1)
    bounds = [0]
    for part in SPA_PARTS[1:]:
        bounds.append(bounds[-1] + round(unit * part))
    prompt_sets = [iteration_tasks[a:b] for a, b in zip(bounds, bounds[1:])]
    seed_tasks = world.make_tasks(max(1, round(seed_fraction * n_prompts)), seed=1_000 * data_seed + 2)
    seed_rows = _gold_pairs(session, seed_tasks, 1_000 * data_seed + 3)
    all_rows = []
    if all_gold:  # the full pool at the paper's 3.3% seed, every prompt gold-labelled
        pool_seed = world.make_tasks(round(unit * SPA_PARTS[0]), seed=1_000 * data_seed + 2)
        all_rows = _gold_pairs(session, pool_seed + iteration_tasks, 1_000 * data_seed + 4)
    return SpaData(seed_rows, prompt_sets, all_rows)


def offline_set(session: Session, n_prompts: int = 1000, flip_rate: float = 0.0, length_bias: float = 0.2,
                temperature: float = 0.1, data_seed: int = 0) -> list[dict]:
    """Rows carry ``label_correct`` (does the label agree with gold?); flips differ by ``flip_rate``
    only: the same prompts and samples for every flip rate of one ``data_seed``."""
    tasks = world.make_tasks(n_prompts, seed=1_000 * data_seed + 5)
    samples = session.sample(None, [t.prompt for t in tasks], n_samples=2, temperature=1.0, seed=1_000 * data_seed + 6)
    rater = world.Annotator(temperature=temperature, flip_rate=flip_rate, length_bias=length_bias)
    return rater_labelled(tasks, samples, rater, seed=1_000 * data_seed + 7)


def _gold_pairs(session: Session, tasks: list[world.Task], seed: int) -> list[dict]:
    return gold_labelled(tasks, session.sample(None, [t.prompt for t in tasks], n_samples=2, temperature=1.0, seed=seed))
