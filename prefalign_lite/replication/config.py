"""Replication configs (``configs/*.yaml``): one schema for the toy run and for real hardware,
checked completely before anything runs.

    name: toy                      # a label for the report
    model: null                    # SFT model: null = the setting's own; a local folder or a hub id
    seeds: [0, 1, 2]               # default seeds (``--seeds`` overrides)
    hardware: {...}                # optional notes for people: GPUs, expected memory and time, launch command
    stages:                        # notebooks in order
      - notebook: 21_my_method     # notebooks/21_my_method.ipynb
        per_seed: true             # run once per seed (else once)
        parameters: {n_prompts: 3000}
        after: [12_fairness_checks]  # optional: the earlier stages it waits for (default: all of them)

Every key is known, every value has the right type, every notebook exists, every parameter is one
its notebook declares, and a local model path exists.

A notebook declares each parameter once, in its ``parameters`` cell, with its default and a
trailing comment giving its kind, its allowed range and its meaning, which papermill reads back as
the parameter's help::

    beta = 0.1  # float (0, inf): KL strength beta of the DPO-family losses

Kinds: int, float, bool, str, path (text naming a file or folder, "" = none), floats (a list of
distinct numbers, each in the range; "floats+" must also be non-empty). The range is an interval
(``[0, 1)``, ``(0, inf)``), left out for bool, str and path. A config value, and each notebook's own
default, outside that range is refused here, before any training, with the file, the stage, the
parameter, the value and the range in the message.
"""
from __future__ import annotations

import ast
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import STANDIN, is_standin, standin_kind, standin_names
from .runner import NOTEBOOKS

log = logging.getLogger(__name__)

TOP_KEYS = {"name": str, "model": (str, type(None)), "seeds": list, "hardware": dict, "stages": list}
STAGE_KEYS = {"notebook": str, "per_seed": bool, "parameters": dict, "after": list}
RESERVED = {"seed", "out_dir", "model", "run_dir"}  # set by the pipeline itself
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

KINDS = ("int", "float", "bool", "str", "path", "floats", "floats+")
HELP = re.compile(r"^(?P<kind>[a-z]+\+?)\s*(?P<span>[\[(][^\])]*[\])])?\s*:\s*(?P<meaning>\S.*)$")


@dataclass(frozen=True)
class Param:
    """One notebook parameter: its kind, allowed interval and meaning."""

    name: str
    kind: str
    meaning: str
    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False

    @property
    def interval(self) -> str:
        return (("[" if self.low_closed else "(") + f"{_num(self.low)}, {_num(self.high)}"
                + ("]" if self.high_closed else ")"))

    @property
    def allowed(self) -> str:
        """The allowed values in words, e.g. 'an integer >= 1' or 'a number in (0, 1)'."""
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("str", "path"):
            return "text" + (' (a path; "" = none)' if self.kind == "path" else "")
        if self.low == -math.inf and self.high == math.inf:
            span = "(any finite value)"
        elif self.high == math.inf:
            span = f"{'>=' if self.low_closed else '>'} {_num(self.low)}"
        else:
            span = f"in {self.interval}"
        if self.kind.startswith("floats"):
            return ("a non-empty " if self.kind == "floats+" else "a ") + f"list of distinct numbers, each {span}"
        return ("an integer " if self.kind == "int" else "a number ") + span

    def problem(self, value) -> str | None:
        """What is wrong with ``value`` for this parameter, or ``None`` when it is allowed."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "not true/false"
        if self.kind in ("str", "path"):
            return None if isinstance(value, str) else f"not text but {type(value).__name__}"
        if self.kind.startswith("floats"):
            if not isinstance(value, list):
                return f"not a list but {type(value).__name__}"
            if self.kind == "floats+" and not value:
                return "an empty list"
            for i, item in enumerate(value):
                bad = self._scalar_problem(item, "float")
                if bad:
                    return f"element {i} ({item!r}) {bad}"
            if len(set(value)) != len(value):
                return f"repeated values {sorted({v for v in value if value.count(v) > 1})}"
            return None
        return self._scalar_problem(value, self.kind)

    def _scalar_problem(self, value, kind: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"not a number but {type(value).__name__}" + _yaml_hint(value)
        if kind == "int" and not isinstance(value, int):
            return "not an integer"
        if not math.isfinite(value):
            return "not finite"
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return None if above and below else f"outside {self.interval}"


def _num(x: float) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"


def _yaml_hint(value) -> str:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return f" (YAML reads {value!r} as text; write numbers with a dot, e.g. 1.0e-3)"
    return ""


def parse_help(name: str, help_text: str) -> Param | None:
    """The :class:`Param` a parameter's help comment declares (``kind [range]: meaning``), or
    ``None`` when the comment does not follow that form."""
    match = HELP.match(help_text.strip())
    if match is None or match["kind"] not in KINDS:
        return None
    bounds = {}
    if match["span"]:
        low, high = (part.strip() for part in match["span"][1:-1].split(","))
        bounds = dict(low=float(low), high=float(high), low_closed=match["span"][0] == "[",
                      high_closed=match["span"][-1] == "]")
    return Param(name, match["kind"], match["meaning"].strip(), **bounds)


@dataclass(frozen=True)
class Declared:
    """A notebook parameter: its default and, when its help comment declares it, its :class:`Param`."""

    default: object
    param: Param | None


def declared_parameters(path: Path) -> dict[str, Declared]:
    """The parameters a notebook's ``parameters`` cell declares, with their defaults and declarations."""
    import papermill

    return {name: Declared(ast.literal_eval(p["default"]), parse_help(name, p.get("help") or ""))
            for name, p in papermill.inspect_notebook(str(path)).items()}


def notebook_parameters(path: Path) -> dict:
    """The parameters a notebook declares, with their default values."""
    return {name: d.default for name, d in declared_parameters(path).items()}


def parameter_table(path: Path) -> str:
    """A notebook's declared parameters as a Markdown table (name, default, allowed values, meaning)."""
    lines = ["| parameter | default | allowed | meaning |", "|---|---|---|---|"]
    for name, d in declared_parameters(path).items():
        allowed, meaning = (d.param.allowed, d.param.meaning) if d.param else ("(undeclared)", "")
        lines.append(f"| `{name}` | `{d.default!r}` | {allowed} | {meaning} |")
    return "\n".join(lines)


def check_parameter(param: Param, value, where: str, note: str = "") -> None:
    """``ConfigError`` naming ``where``, the parameter, the value and its allowed range when
    ``value`` is not allowed for ``param``."""
    bad = param.problem(value)
    if bad:
        raise ConfigError(f"{where}: parameter {param.name!r} = {value!r}{note} is not allowed ({bad}); "
                          f"it must be {param.allowed} -- {param.meaning}")


class ConfigError(ValueError):
    """A config that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class Stage:
    notebook: str
    per_seed: bool = True
    parameters: dict = field(default_factory=dict)
    after: tuple[str, ...] | None = None   # earlier stages it waits for (same seed or run-wide); None = all

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
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return validate(raw, str(path))


def validate(raw, where: str = "config") -> RunConfig:
    if not isinstance(raw, dict):
        got = "empty" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(f"{where}: the top level must be a mapping, the file is {got}")
    _check_keys(raw, TOP_KEYS, where, required=("name", "stages"))
    if not raw["name"].strip():
        raise ConfigError(f"{where}: 'name' is empty")
    seeds = check_seeds(raw.get("seeds", [0]), f"{where}: 'seeds'")
    model = raw.get("model")
    if model is not None:
        check_model(model, where)
    if not raw["stages"]:
        raise ConfigError(f"{where}: 'stages' is empty")
    stages = [_stage(s, f"{where}: stages[{i}]") for i, s in enumerate(raw["stages"])]
    names = [s.notebook for s in stages]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: notebook {', '.join(twice)} appears twice in 'stages'")
    for i, stage in enumerate(stages):
        for name in stage.after or ():
            if name not in names[:i]:
                raise ConfigError(f"{where}: stages[{i}] ({stage.notebook}): 'after' names {name!r}, which is not "
                                  f"an earlier stage (earlier: {names[:i] or 'none'})")
    return RunConfig(raw["name"], model, seeds, stages, raw.get("hardware", {}))


def check_seeds(seeds, where: str = "seeds") -> list[int]:
    """Seeds must be a non-empty list of distinct integers >= 0 (a repeated seed would run, and
    count, the same replication twice)."""
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ConfigError(f"{where}: must be a non-empty list of integers >= 0, got {seeds!r}")
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"{where}: element {i} ({s!r}) is not an integer >= 0")
    repeated = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if repeated:
        raise ConfigError(f"{where}: seed(s) {repeated} appear more than once in {list(seeds)}")
    return list(seeds)


def check_model(model: str, where: str, what: str = "model", kind: str = "policy") -> None:
    """A model (``what``: ``model`` or ``judge``) is a stand-in of ``kind`` (``policy`` or
    ``reward_model``), a local folder that holds a ``config.json``, or text that looks like a hub id."""
    if not model.strip():
        raise ConfigError(f"{where}: {what!r} is empty; use null for the embedded tiny model, or a path or hub id")
    if model.startswith(STANDIN):
        check_standin(model, where, what, kind)
        return   # the kit's local stand-in of a real artefact, built on first use (settings.resolve)
    local = Path(model).expanduser()
    if model.startswith(("/", ".", "~")) or local.exists():
        if not (local / "config.json").exists():
            raise ConfigError(f"{where}: {what} path {model!r} does not exist or holds no config.json")
    elif not HUB_ID.match(model):
        raise ConfigError(f"{where}: {what} {model!r} is neither an existing folder nor a hub id like 'org/name'")


def is_hub_model(model: str) -> bool:
    """Whether a model name that :func:`check_model` accepts is a hub id (not checked offline)."""
    return not is_standin(model) and not Path(model).expanduser().exists()


def check_standin(name: str, where: str, what: str, kind: str) -> None:
    """``name`` (``standin:...``) is a stand-in the kit has, and one of ``kind``."""
    if not is_standin(name):
        raise ConfigError(f"{where}: {what} {name!r} is no stand-in the kit has; the {kind.replace('_', ' ')} stand-ins "
                          f"are {', '.join(standin_names(kind))}")
    if standin_kind(name) != kind:
        raise ConfigError(f"{where}: {what} {name!r} is a {standin_kind(name).replace('_', ' ')} stand-in, not a "
                          f"{kind.replace('_', ' ')}; the {kind.replace('_', ' ')} stand-ins are {', '.join(standin_names(kind))}")


def check_notebook_defaults(notebook: str, declared: dict[str, Declared], where: str) -> None:
    """Each declared parameter's default in the notebook's ``parameters`` cell is allowed too (an
    undeclared one is logged: the kit's own notebooks have a test that none is)."""
    for name, d in declared.items():
        if d.param is not None:
            check_parameter(d.param, d.default, where, f" (the default in {notebook}'s parameters cell)")
        elif name not in RESERVED:
            log.warning("%s: %s's parameter %r has no 'kind [range]: meaning' comment; only its type is checked",
                        where, notebook, name)


def _stage(raw, where: str) -> Stage:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with 'notebook', got {raw!r}")
    _check_keys(raw, STAGE_KEYS, where, required=("notebook",))
    after = raw.get("after")
    if after is not None and not all(isinstance(a, str) for a in after):
        raise ConfigError(f"{where}: 'after' must be a list of notebook names, got {after!r}")
    stage = Stage(raw["notebook"], raw.get("per_seed", True), raw.get("parameters", {}),
                  None if after is None else tuple(after))
    where = f"{where} ({stage.notebook})"
    if not stage.path.exists():
        hint = " (write the name without '.ipynb')" if stage.notebook.endswith(".ipynb") else ""
        raise ConfigError(f"{where}: no notebook {stage.path.name} in {NOTEBOOKS}{hint}")
    declared = declared_parameters(stage.path)
    check_notebook_defaults(stage.notebook, declared, where)
    for name, value in stage.parameters.items():
        if name in RESERVED:
            raise ConfigError(f"{where}: parameter {name!r} is set by the pipeline, not the config")
        if name not in declared:
            raise ConfigError(f"{where}: {stage.notebook} has no parameter {name!r} (it has {sorted(declared)})")
        if declared[name].param is not None:
            check_parameter(declared[name].param, value, where)
        elif not _same_type(value, declared[name].default):
            default = declared[name].default
            raise ConfigError(f"{where}: parameter {name!r} must be {type(default).__name__} "
                              f"like its default {default!r}, got {value!r}")
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
