"""The seam between the methods and their world. A *setting* (:class:`.base.Setting`) says where
prompts and labelled pairs come from, who judges, and what else belongs to the world; the methods
never import the world.

* :class:`.embedded.EmbeddedSetting` — the kit's own world and its gold reward;
* :class:`.dataset.DatasetSetting` — a real preference dataset judged by a reward model;
* ``standin:`` names — the kit's local stand-ins of real models and data (:mod:`.standins`).

Both settings give prompts from one pool split the same way: the evaluation prompts are held out,
and the training prompts come in a fixed order from which SPA's 2 : 8 : 20 : 30 split, the offline
sets and the seeds of other sizes are cut, so that no two of them share a prompt.
"""
from __future__ import annotations

from .base import Pool, Setting
from .dataset import DatasetSetting
from .embedded import EmbeddedSetting

__all__ = ["DatasetSetting", "EmbeddedSetting", "Pool", "STANDINS", "Setting", "from_parameters", "is_standin", "resolve"]

STANDIN = "standin:"   # "standin:policy", "standin:reward_model", "standin:dataset": the kit's local stand-ins
STANDINS = ("policy", "reward_model", "dataset")


def is_standin(name: str) -> bool:
    """Whether ``name`` asks for one of the kit's local stand-ins (``standin:policy``, ...)."""
    return isinstance(name, str) and name.startswith(STANDIN) and name[len(STANDIN):] in STANDINS


def resolve(name: str) -> str:
    """A model, judge or dataset name with ``standin:`` replaced by the path of the kit's own local
    stand-in of a real one (:mod:`.standins`: tiny Qwen2 policy and reward model with a BPE
    tokenizer, rows in UltraFeedback's layout), built on first use; other names pass unchanged."""
    if not name or not name.startswith(STANDIN):
        return name
    if not is_standin(name):
        raise ValueError(f"unknown stand-in {name!r}: use " + ", ".join(STANDIN + s for s in STANDINS))
    from . import standins

    return str(getattr(standins.standins(), name[len(STANDIN):]))


def from_parameters(dataset: str = "", judge: str = "") -> Setting:
    """The setting a notebook's parameters ask for: the embedded world unless ``dataset`` is given."""
    if dataset:
        return DatasetSetting(source=resolve(dataset), judge_model=resolve(judge))
    if judge:
        raise ValueError("a reward-model judge was given without a dataset; the embedded world has its own gold judge")
    return EmbeddedSetting()
