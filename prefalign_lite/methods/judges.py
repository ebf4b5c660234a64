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

from ..engine.logps import pair_logps
from ..engine.reward_model import RewardModel, train_reward_model


def reward_model_prefers_first(judge: RewardModel, rows: list[dict]) -> list[bool]:
    """``chosen`` is the first answer of each row; ``True`` where the reward model scores it higher."""
    prompts = [r["prompt"] for r in rows]
    s1, s2 = judge.score(prompts, [r["chosen"] for r in rows]), judge.score(prompts, [r["rejected"] for r in rows])
    return [bool(a > b) for a, b in zip(s1, s2)]


def llm_prefers_first(model, tokenizer, setting, rows: list[dict], max_length: int) -> list[bool]:
    """LLM-as-judge with ``model`` in the setting's style; ``chosen`` is the first answer."""
    return setting.llm_first_wins(lambda asked: pair_logps(model, tokenizer, asked, max_length=max_length), rows,
                                  tokenizer=tokenizer, max_length=max_length)


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
