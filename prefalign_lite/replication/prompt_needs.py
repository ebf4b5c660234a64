"""What ``run`` checks of a config's real-data inputs before anything runs (``run --check`` stops
there): every stage that names a dataset is read as its notebook will read it, and whatever would
fail after ``--out`` exists is refused, naming the stage, the parameter and the value.

* **Names and paths.** The judge is a reward-model stand-in, a folder holding a ``config.json`` or
  a hub id; the dataset a dataset stand-in, a file or folder that exists, or a hub id; a stage with a
  dataset has a judge and the config a ``model``; a judge or split without a dataset is refused.
  Stand-in names are checked by name (:func:`prefalign_lite.settings.is_standin`), never built
  for it; only a dataset stand-in's rows are read (``standin:dataset``'s from the committed fixture).
* **Splits.** The named ``split`` and ``eval_split`` (``""``: the dataset's default,
  :func:`prefalign_lite.settings.dataset.default_splits`) must exist.
* **Prompt counts.** The training prompts each stage's session draws (:func:`training_prompts`: the
  notebooks' own ``n_train``) and its ``n_eval`` evaluation prompts must fit the usable prompts of
  the named splits: for local data those the setting keeps (one pair per distinct prompt, after the
  loader's pair filters, :func:`prefalign_lite.settings.dataset.read_split`); a training prompt that
  may also be drawn as an evaluation prompt counts as taken.

A hub id is not looked up (the check is offline): a dataset whose split sizes the kit knows
(:data:`PUBLISHED_ROWS`: UltraFeedback-binarized, 61,135 ``train_prefs`` rows, 2,000 ``test_prefs``)
is checked against its published rows, which bound its distinct prompts; any other hub id, of a
dataset, a model or a judge, is reported as not checked (:attr:`Checked.not_checked`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.data import DataSourceError, split_names
from ..methods import experiments as X
from ..methods.splits import spa_pool_size
from ..settings import STANDIN, dataset_source, is_standin
from ..settings.artefacts import ULTRAFEEDBACK_ID, ULTRAFEEDBACK_SPLITS
from .config import ConfigError, check_model, check_standin, is_hub_model

PUBLISHED_ROWS = {ULTRAFEEDBACK_ID: ULTRAFEEDBACK_SPLITS}   # hub datasets whose split sizes the kit knows


@dataclass
class Checked:
    """What the check found: ``problems`` (the run would fail) and ``not_checked`` (inputs it could
    not see offline: hub ids it has no table for)."""

    problems: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SplitCount:
    """The usable distinct prompts of one split: their number, the prompts themselves where the
    data is local (``None`` for published sizes), and how the count is described in a message."""

    n: int
    prompts: frozenset | None
    described: str


def training_prompts(notebook: str, params: dict) -> int | None:
    """Training prompts a stage's session draws (``None``: a notebook the kit does not know)."""
    n = params.get("n_prompts")
    if notebook == X.Spa.stage:
        return spa_pool_size(n)
    if notebook in (X.Baselines.stage, X.Dro.stage):
        return max(spa_pool_size(n), params["n_offline"])
    if notebook == X.SpaJudges.stage:
        return spa_pool_size(n) + params["rm_prompts"]
    if notebook in (X.Sera.stage, X.SrDpo.stage):
        return n
    return None


def check_inputs(config, defaults_of, where: str) -> Checked:
    """The check of the module doc on ``config``; ``defaults_of(stage)`` gives the notebook's
    declared defaults, overridden by the stage's parameters; ``where`` names the config file."""
    checked, counts = Checked(), {}
    if config.model and is_hub_model(config.model):
        checked.not_checked.append(f"{where}: model {config.model!r} is a hub id, not looked up offline")
    for stage in config.stages:
        params = {**defaults_of(stage), **stage.parameters}
        if "dataset" in params:
            _check_stage(stage.notebook, params, config.model, f"{where}: stage {stage.notebook}", counts, checked)
    return checked


def check_prompt_needs(config, defaults_of, where: str) -> list[str]:
    """The problems :func:`check_inputs` finds."""
    return check_inputs(config, defaults_of, where).problems


def _check_stage(notebook: str, params: dict, model: str | None, at: str, counts: dict, checked: Checked) -> None:
    dataset, judge = params.get("dataset", ""), params.get("judge", "")
    if not dataset:
        given = [f"{k}={params[k]!r}" for k in ("judge", "split", "eval_split") if params.get(k)]
        if given:
            checked.problems.append(f"{at}: {', '.join(given)} given without a dataset; the embedded world has its own "
                                    "prompts and gold judge (set 'dataset', or leave these empty)")
        return
    if not judge:
        checked.problems.append(f"{at}: dataset {dataset!r} needs a judge (a reward model by path, hub id or stand-in), "
                                "but 'judge' is empty")
    else:
        _check_judge(judge, at, checked)
    if not model:
        checked.problems.append(f"{at}: dataset {dataset!r} needs an SFT model, but the config's 'model' is null (the "
                                "embedded tiny model); set it to a path, a hub id or a stand-in")
    _check_dataset(notebook, dataset, params, at, counts, checked)


def _check_judge(judge: str, at: str, checked: Checked) -> None:
    try:
        check_model(judge, at, what="judge", kind="reward_model")
    except ConfigError as exc:
        checked.problems.append(str(exc))
        return
    if is_hub_model(judge):
        checked.not_checked.append(f"{at}: judge {judge!r} is a hub id, not looked up offline")


def _check_dataset(notebook: str, dataset: str, params: dict, at: str, counts: dict, checked: Checked) -> None:
    """The dataset's name, its named splits and its prompts against what the stage draws."""
    from ..settings.dataset import default_splits

    if dataset.startswith(STANDIN):
        try:
            check_standin(dataset, at, "dataset", "dataset")
        except ConfigError as exc:
            checked.problems.append(str(exc))
            return
    source = dataset_source(dataset) if is_standin(dataset) else dataset
    try:
        local = split_names(source) is not None
    except (OSError, ValueError, TypeError) as exc:
        checked.problems.append(f"{at}: dataset: {exc}")
        return
    if not local and dataset not in PUBLISHED_ROWS:
        checked.not_checked.append(f"{at}: dataset {dataset!r} is a hub id whose splits the kit does not know; its "
                                   "splits and prompt counts are not checked offline")
        return
    train_default, held_default = default_splits(source)
    train, held = params.get("split") or train_default, params.get("eval_split") or held_default
    published = None if local else PUBLISHED_ROWS[dataset]
    have = _count(counts, (dataset, source, train, published), _named("split", train, params), at, checked)
    held_count = _count(counts, (dataset, source, held, published), _named("eval_split", held, params), at, checked) \
        if held else None
    if have is None or (held and held_count is None):
        return
    need = training_prompts(notebook, params)
    if need is None:
        checked.not_checked.append(f"{at}: a notebook the kit does not know; the training prompts it draws are not counted")
        need = 0
    _check_counts(params, need, (train, have), (held, held_count), dataset, at, checked)


def _named(parameter: str, split: str, params: dict) -> str:
    return f"parameter {parameter!r} = {split!r}" if params.get(parameter) else f"{parameter} {split!r} (the default)"


def _count(counts: dict, which: tuple, named: str, at: str, checked: Checked) -> SplitCount | None:
    """The usable prompts of ``which`` (``(dataset, source, split, published rows or None)``, cached),
    or ``None`` with the problem recorded."""
    key = which[1:3]
    if key not in counts:
        counts[key] = _split_count(*which)
    found = counts[key]
    if isinstance(found, str):
        checked.problems.append(f"{at}: {named}: {found}")
        return None
    return found


def _split_count(dataset: str, source: str, split: str, published: dict | None) -> SplitCount | str:
    """:class:`SplitCount` of one split (of a local source, or from the ``published`` rows of a hub
    dataset), or what is wrong with it."""
    from ..settings.dataset import read_split

    if published is not None:
        if split not in published:
            return f"{dataset} has no split {split!r}; its splits are {sorted(published)}"
        return SplitCount(published[split], None, f"at most {published[split]} distinct prompts (its published rows)")
    try:
        read = read_split(source, split)
    except (DataSourceError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return SplitCount(read.counts["kept"], frozenset(r["prompt"].strip() for r in read.rows),
                      f"{read.counts['kept']} usable distinct prompts ({read.counts['read']} rows read; {read.not_used})")


def _check_counts(params: dict, need: int, training: tuple, held_out: tuple, dataset: str, at: str, checked: Checked) -> None:
    """The stage's ``need`` training and ``n_eval`` evaluation prompts against the splits' counts."""
    (train, have), (held, held_count) = training, held_out
    n_eval = params.get("n_eval", 0)
    if held:
        if n_eval > held_count.n:
            checked.problems.append(f"{at}: n_eval={n_eval} evaluation prompts, but split {held!r} of {dataset} has "
                                    f"{held_count.described}")
        shared = min(n_eval, _overlap(train, have, held, held_count))
        if need > have.n - shared:
            taken = f"; up to {shared} of them are drawn as evaluation prompts from split {held!r}" if shared else ""
            checked.problems.append(f"{at}: its parameters ({_shown(params)}) need {need} training prompts, but split "
                                    f"{train!r} of {dataset} has {have.described}{taken}")
    elif need + n_eval > have.n:
        checked.problems.append(f"{at}: its parameters ({_shown(params)}) need {need} training + {n_eval} evaluation "
                                f"prompts, but split {train!r} of {dataset} has {have.described}")


def _overlap(train: str, have: SplitCount, held: str, held_count: SplitCount) -> int:
    """Prompts the two splits share: the evaluation draw may take them from the training prompts."""
    if have.prompts is not None and held_count.prompts is not None:
        return len(have.prompts & held_count.prompts)
    return have.n if train == held else 0


def _shown(params: dict) -> str:
    keys = ("n_prompts", "n_eval", "rm_prompts", "n_offline")
    return ", ".join(f"{k}={params[k]}" for k in keys if k in params)
