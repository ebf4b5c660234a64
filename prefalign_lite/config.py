"""Replication configs (``configs/*.yaml``): one schema for the toy run and for real hardware,
checked completely before anything runs.

    name: toy                      # a label for the report
    model: null                    # SFT model: null = the embedded tiny model; a local folder or a hub id
    seeds: [0, 1, 2]               # default seeds (``--seeds`` overrides)
    hardware: {...}                # optional notes for people: GPUs, expected memory and time, launch command
    stages:                        # notebooks in order
      - notebook: 12_spa           # notebooks/12_spa.ipynb
        per_seed: true             # run once per seed (else once)
        parameters: {n_prompts: 3000}

Every key is known, every value has the right type, every notebook exists, every parameter is one
its notebook declares with a value of the type of its default, and a local model path exists.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from .notebook_runner import NOTEBOOKS

TOP_KEYS = {"name": str, "model": (str, type(None)), "seeds": list, "hardware": dict, "stages": list}
STAGE_KEYS = {"notebook": str, "per_seed": bool, "parameters": dict}
RESERVED = {"seed", "out_dir", "model", "run_dir"}  # set by the pipeline itself
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ConfigError(ValueError):
    """A config that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class Stage:
    notebook: str
    per_seed: bool = True
    parameters: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return NOTEBOOKS / f"{self.notebook}.ipynb"


@dataclass(frozen=True)
class RunConfig:
    name: str
    model: str | None
    seeds: list[int]
    stages: list[Stage]
    hardware: dict = field(default_factory=dict)


def load_config(path: str | Path) -> RunConfig:
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return validate(raw, str(path))


def validate(raw, where: str = "config") -> RunConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping")
    _check_keys(raw, TOP_KEYS, where, required=("name", "stages"))
    seeds = raw.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"{where}: 'seeds' must be a non-empty list of integers >= 0, got {seeds!r}")
    model = raw.get("model")
    if model is not None:
        check_model(model, where)
    if not raw["stages"]:
        raise ConfigError(f"{where}: 'stages' is empty")
    stages = [_stage(s, f"{where}: stages[{i}]") for i, s in enumerate(raw["stages"])]
    names = [s.notebook for s in stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a notebook appears twice in 'stages'")
    return RunConfig(raw["name"], model, list(seeds), stages, raw.get("hardware", {}))


def check_model(model: str, where: str) -> None:
    """A local folder must exist and hold a ``config.json``; anything else must look like a hub id."""
    local = Path(model).expanduser()
    if model.startswith(("/", ".", "~")) or local.exists():
        if not (local / "config.json").exists():
            raise ConfigError(f"{where}: model path {model!r} does not exist or holds no config.json")
    elif not HUB_ID.match(model):
        raise ConfigError(f"{where}: model {model!r} is neither an existing folder nor a hub id like 'org/name'")


def notebook_parameters(path: Path) -> dict:
    """The parameters a notebook declares, with their default values."""
    import papermill

    return {name: ast.literal_eval(p["default"]) for name, p in papermill.inspect_notebook(str(path)).items()}


def _stage(raw, where: str) -> Stage:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with 'notebook'")
    _check_keys(raw, STAGE_KEYS, where, required=("notebook",))
    stage = Stage(raw["notebook"], raw.get("per_seed", True), raw.get("parameters", {}))
    if not stage.path.exists():
        raise ConfigError(f"{where}: no notebook {stage.path.name} in {NOTEBOOKS}")
    declared = notebook_parameters(stage.path)
    for name, value in stage.parameters.items():
        if name in RESERVED:
            raise ConfigError(f"{where}: parameter {name!r} is set by the pipeline, not the config")
        if name not in declared:
            raise ConfigError(f"{where}: {stage.notebook} has no parameter {name!r} (it has {sorted(declared)})")
        if not _same_type(value, declared[name]):
            raise ConfigError(f"{where}: parameter {name!r} must be {type(declared[name]).__name__} "
                              f"like its default {declared[name]!r}, got {value!r}")
    if stage.per_seed and "seed" not in declared:
        raise ConfigError(f"{where}: {stage.notebook} runs per seed but declares no 'seed' parameter")
    return stage


def _same_type(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        return isinstance(value, list) and (not default or not value or all(_same_type(v, default[0]) for v in value))
    return isinstance(value, type(default))


def _check_keys(raw: dict, schema: dict, where: str, required: tuple) -> None:
    for key in raw:
        if key not in schema:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {sorted(schema)})")
        if not isinstance(raw[key], schema[key]):
            kinds = schema[key] if isinstance(schema[key], tuple) else (schema[key],)
            raise ConfigError(f"{where}: {key!r} must be {' or '.join(k.__name__ for k in kinds)}, got {raw[key]!r}")
    for key in required:
        if key not in raw:
            raise ConfigError(f"{where}: missing required key {key!r}")
