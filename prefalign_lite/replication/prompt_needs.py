"""How many distinct prompts each stage of a config draws from its dataset, checked by ``run --check``
against the dataset itself when it is local (a stand-in or a path): a stage that asks for more
training or evaluation prompts than the split holds is refused before anything runs, naming the
stage, the parameters, what they need and what the split has.

The needs are the notebooks' own: the ``n_train`` they give ``Session.from_parameters`` and ``n_eval``; the
training prompts come from the dataset's training split and the evaluation prompts from its
evaluation split (``test_prefs`` for UltraFeedback-binarized), or from the training split too when
it has none (:class:`prefalign_lite.settings.DatasetSetting`). For a hub dataset whose split sizes
are published (UltraFeedback-binarized: 61,135 ``train_prefs`` rows, 2,000 ``test_prefs``) the
rows bound the distinct prompts, and the check runs offline against them.
"""
from __future__ import annotations

from pathlib import Path

from ..methods import experiments as X
from ..methods.splits import spa_pool_size
from ..settings import is_standin, resolve
from ..settings.artefacts import ULTRAFEEDBACK_ID, ULTRAFEEDBACK_SPLITS

PUBLISHED_ROWS = {ULTRAFEEDBACK_ID: ULTRAFEEDBACK_SPLITS}   # hub datasets whose split sizes the kit knows


def training_prompts(notebook: str, params: dict) -> int | None:
    """Training prompts a stage's session draws (``None``: the stage draws none)."""
    n = params.get("n_prompts")
    if notebook in (X.Baselines.stage, X.Spa.stage):
        return spa_pool_size(n)
    if notebook == X.SpaJudges.stage:
        return spa_pool_size(n) + params["rm_prompts"]
    if notebook in (X.Sera.stage, X.SrDpo.stage):
        return n
    if notebook == X.Dro.stage:
        return max(spa_pool_size(n), params["n_offline"])
    return None


def is_local(dataset: str) -> bool:
    return bool(dataset) and (is_standin(dataset) or Path(dataset).expanduser().exists())


def check_prompt_needs(config, defaults_of, where: str) -> list[str]:
    """Problems of ``config``'s stages whose dataset is local: ``defaults_of(stage)`` gives the
    notebook's declared defaults, overridden by the stage's parameters. Each problem names the
    stage, the prompts needed and the split's distinct prompts."""
    from ..settings.dataset import default_splits, distinct_prompts

    counted: dict[tuple[str, str], int] = {}

    def count(source: str, split: str) -> int:
        if (source, split) not in counted:
            counted[(source, split)] = len(distinct_prompts(source, split))
        return counted[(source, split)]

    problems = []
    for stage in config.stages:
        params = {**defaults_of(stage), **stage.parameters}
        dataset, need = params.get("dataset", ""), training_prompts(stage.notebook, params)
        if need is None or not (is_local(dataset) or dataset in PUBLISHED_ROWS):
            continue
        source = resolve(dataset)
        train_split, eval_split = default_splits(source)
        if not is_local(dataset):   # a hub id whose split sizes are published: distinct prompts are at most its rows
            counted.setdefault((source, train_split), PUBLISHED_ROWS[dataset][train_split])
            counted.setdefault((source, eval_split), PUBLISHED_ROWS[dataset][eval_split])
        n_eval = params.get("n_eval", 0)
        have = count(source, train_split)
        if eval_split:
            held = count(source, eval_split)
            if n_eval > held:
                problems.append(f"{where}: stage {stage.notebook}: n_eval={n_eval} evaluation prompts, but split "
                                f"{eval_split!r} of {dataset} has {held} distinct prompts")
            n_eval = 0
        if need + n_eval > have:
            asked = f"{need} training" + (f" + {n_eval} evaluation" if n_eval else "")
            problems.append(f"{where}: stage {stage.notebook}: its parameters ({_shown(params)}) need {asked} prompts, "
                            f"but split {train_split!r} of {dataset} has {have} distinct prompts")
    return problems


def _shown(params: dict) -> str:
    keys = ("n_prompts", "n_eval", "rm_prompts", "n_offline")
    return ", ".join(f"{k}={params[k]}" for k in keys if k in params)
