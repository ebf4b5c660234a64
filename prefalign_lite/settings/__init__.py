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

__all__ = ["DatasetSetting", "EmbeddedSetting", "FAITHFUL", "Pool", "STANDINS", "Setting", "dataset_source", "from_parameters",
           "is_standin", "resolve", "standin_kind", "standin_names"]

STANDIN = "standin:"   # "standin:policy", "standin:qwen2.5-0.5b-instruct", ...: the kit's local stand-ins
# the first stand-ins (a tiny Qwen2 policy and reward model sharing a BPE tokenizer, JSONL rows)
STANDINS = ("policy", "reward_model", "dataset")
# one quirk-faithful stand-in per artefact the configs name (:mod:`.artefacts`, :mod:`.standin_build`)
FAITHFUL = ("qwen2.5-0.5b-instruct", "zephyr-7b-sft-full", "skywork-reward-v2-llama-3.1-8b",
            "skywork-reward-v2-qwen3-0.6b", "ultrafeedback_binarized", "qwen2.5-0.5b-instruct-full-size")
# what each stand-in is: a policy (an SFT model), a reward model (a judge) or a dataset
STANDIN_KINDS = {"policy": "policy", "reward_model": "reward_model", "dataset": "dataset",
                 "qwen2.5-0.5b-instruct": "policy", "zephyr-7b-sft-full": "policy",
                 "skywork-reward-v2-llama-3.1-8b": "reward_model", "skywork-reward-v2-qwen3-0.6b": "reward_model",
                 "ultrafeedback_binarized": "dataset", "qwen2.5-0.5b-instruct-full-size": "policy"}


def is_standin(name: str) -> bool:
    """Whether ``name`` asks for one of the kit's local stand-ins (``standin:policy``, ...)."""
    return isinstance(name, str) and name.startswith(STANDIN) and name[len(STANDIN):] in STANDINS + FAITHFUL


def standin_kind(name: str) -> str | None:
    """``"policy"``, ``"reward_model"`` or ``"dataset"`` for a stand-in name, ``None`` for any other name."""
    return STANDIN_KINDS[name[len(STANDIN):]] if is_standin(name) else None


def standin_names(kind: str) -> list[str]:
    """The stand-in names of one kind (``standin:policy``, ...), for messages."""
    return [STANDIN + short for short in STANDINS + FAITHFUL if STANDIN_KINDS[short] == kind]


def dataset_source(name: str) -> str:
    """What a dataset name reads, without building a model: ``standin:dataset``'s rows are the
    committed ``data/smoke_ultrafeedback.jsonl`` (the file its build writes, byte for byte) where
    the checkout has it; other names as :func:`resolve` gives them (the UltraFeedback stand-in
    builds its rows alone, in about a second)."""
    if name == STANDIN + "dataset":
        from .smoke_data import SMOKE_FIXTURE

        if SMOKE_FIXTURE.exists():
            return str(SMOKE_FIXTURE)
    return resolve(name)


def resolve(name: str) -> str:
    """A model, judge or dataset name with ``standin:`` replaced by the path of the kit's own local
    stand-in of a real one, built on first use; other names pass unchanged. ``standin:policy``,
    ``standin:reward_model`` and ``standin:dataset`` are the first, friendly stand-ins
    (:mod:`.standins`); the others reproduce each real artefact's quirks (:mod:`.standin_build`)."""
    if not name or not name.startswith(STANDIN):
        return name
    if not is_standin(name):
        raise ValueError(f"unknown stand-in {name!r}: use " + ", ".join(STANDIN + s for s in STANDINS + FAITHFUL))
    short = name[len(STANDIN):]
    if short in FAITHFUL:
        from .standin_build import standin_path

        return str(standin_path(short))
    from . import standins

    return str(getattr(standins.standins(), short))


def from_parameters(dataset: str = "", judge: str = "", **options) -> Setting:
    """The setting a notebook's parameters ask for: the embedded world unless ``dataset`` is given.
    ``options`` are :class:`.dataset.DatasetSetting` fields (``split``, ``eval_split``,
    ``max_length``, ``max_new_tokens``, ``max_prompt_tokens``, ...); a value of ``None`` keeps the
    default."""
    options = {k: v for k, v in options.items() if v is not None}
    if dataset:
        return DatasetSetting(source=resolve(dataset), judge_model=resolve(judge), **options)
    if judge:
        raise ValueError("a reward-model judge was given without a dataset; the embedded world has its own gold judge")
    if options:
        raise ValueError(f"{sorted(options)}: options of a real dataset, but no dataset was given")
    return EmbeddedSetting()
