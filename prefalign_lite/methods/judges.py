"""The preference judges SPA compares itself with (SPA Tables 2 and 7), besides its own Eq. 7-8.

* An external reward model — the analogue of PairRM: a sequence classifier with a scalar head,
  initialised from the SFT model and fitted with the Bradley–Terry loss on labelled pairs of
  prompts outside SPA's pool (PairRM was trained on external data, not on SPA's seed), saved with
  ``save_pretrained`` and read back like a hub reward model. It never changes while the policy
  moves away from its data.
* LLM-as-judge: a fixed model (the SFT model, as SPA's judge is fixed; App. B.2) is asked which
  answer is better in the setting's way of asking (:meth:`Setting.llm_first_wins`), and its
  log-probs of the possible verdicts are compared.

Every judge gives a tie to the second answer, as SPA's Eq. 8 does (y1 is chosen only if p > 0.5).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..engine.logps import pair_logps
from ..engine.reward_model import RewardModel, train_reward_model


def reward_model_prefers_first(judge: RewardModel, rows: list[dict]) -> list[bool]:
    """``chosen`` is the first answer of each row; ``True`` where the reward model scores it higher.
    A score that is not a finite number (any judge's) is a ``ValueError`` naming the pair and the
    answer: a NaN would otherwise label the pair "second answer wins"."""
    prompts = [r["prompt"] for r in rows]
    s1, s2 = (_judged(judge, prompts, [r[side] for r in rows], side) for side in ("chosen", "rejected"))
    return [bool(a > b) for a, b in zip(s1, s2)]


def _judged(judge, prompts: list[str], answers: list[str], side: str) -> np.ndarray:
    """The judge's scores of ``answers``: one finite float per pair, or a ``ValueError`` naming them."""
    name = getattr(judge, "name", type(judge).__name__)
    try:
        scores = np.asarray(judge.score(prompts, answers), dtype=float).reshape(-1)
    except ValueError as exc:
        raise ValueError(f"reward-model labelling of {len(prompts)} pairs, the {side} answers: {exc}") from None
    if scores.shape != (len(prompts),):
        raise ValueError(f"reward-model labelling: {name} gave {scores.size} scores for {len(prompts)} {side} answers")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise ValueError(f"reward-model labelling: {name} scored the {side} answer of pair {int(bad[0])} as "
                         f"{scores[bad[0]]} ({bad.size} pairs not finite: {bad[:8].tolist()}); a reward must be finite")
    return scores


def llm_prefers_first(model, tokenizer, setting, rows: list[dict], max_length: int) -> list[bool]:
    """LLM-as-judge with ``model`` in the setting's style; ``chosen`` is the first answer. A verdict
    log-prob that is not finite is a ``ValueError`` naming the question (a NaN margin would label
    the pair "second answer wins")."""
    def verdicts(asked: list[dict]):
        return _finite_verdicts(*pair_logps(model, tokenizer, asked, max_length=max_length), asked)
    return setting.llm_first_wins(verdicts, rows, tokenizer=tokenizer, max_length=max_length)


def _finite_verdicts(first: torch.Tensor, second: torch.Tensor, asked: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """The two verdicts' log-probs unchanged when finite; else a ``ValueError`` naming the question."""
    bad = (~(torch.isfinite(first) & torch.isfinite(second))).nonzero().flatten().tolist()
    if bad:
        i = bad[0]
        raise ValueError(f"LLM-as-judge: the verdict log-probs of question {i} are {first[i].item()} and "
                         f"{second[i].item()} ({len(bad)} of {len(asked)} questions not finite: {bad[:8]}); "
                         f"its prompt ends {asked[i]['prompt'][-60:]!r}")
    return first, second


def fit_reward_judge(session, rows: list[dict], folder: Path | None = None) -> RewardModel:
    """The PairRM analogue: a reward model (initialised from the SFT model) fitted on labelled pairs
    of prompts outside SPA's pool, read back by path like a hub reward model (kept in ``folder``
    when given, else in a temporary folder removed once the judge has loaded it)."""
    def fit(where: Path) -> RewardModel:
        path = train_reward_model(session.sft_path, rows, where / "reward_model", seed=session.config.seed,
                                  max_length=session.max_length)
        return RewardModel(path, device=str(session.device), batch_size=128)

    if folder is not None:
        return fit(Path(folder))
    with tempfile.TemporaryDirectory(prefix="prefalign-rm-") as scratch:
        return fit(Path(scratch))


def label_agreement(a: list, b: list) -> float:
    """The share of pairs on which two judges' labels are the same (``a[i] == b[i]``): how far two
    judges are one judge (the void diagnostic of SPA Tables 2 and 7)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"label_agreement needs two equally long, non-empty label lists, got {len(a)} and {len(b)}")
    return sum(x == y for x, y in zip(a, b)) / len(a)
