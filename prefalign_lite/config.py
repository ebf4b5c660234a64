"""Replication configs (``configs/*.yaml``): one schema for the toy run and for real hardware,
checked completely before anything runs.

    name: toy                      # a label for the report
    model: null                    # SFT model: null = the embedded tiny model; a local folder or a hub id
    seeds: [0, 1, 2]               # default seeds (``--seeds`` overrides)
    hardware: {...}                # optional notes for people: GPUs, expected memory and time, launch command
    stages:                        # notebooks in order
      - notebook: 13_spa           # notebooks/13_spa.ipynb
        per_seed: true             # run once per seed (else once)
        parameters: {n_prompts: 3000}
        after: [12_fairness_checks]  # optional: the earlier stages it waits for (default: all of them)

Every key is known, every value has the right type, every notebook exists, every parameter is one
its notebook declares, and a local model path exists. Every notebook parameter the kit knows has
one line in ``PARAMETERS`` (kind, allowed range, meaning); a config value, and each notebook's own
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

from .notebook_runner import NOTEBOOKS

log = logging.getLogger(__name__)

TOP_KEYS = {"name": str, "model": (str, type(None)), "seeds": list, "hardware": dict, "stages": list}
STAGE_KEYS = {"notebook": str, "per_seed": bool, "parameters": dict, "after": list}
RESERVED = {"seed", "out_dir", "model", "run_dir"}  # set by the pipeline itself
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# One line per notebook parameter: name, kind, allowed range, meaning. Kinds: int, float, bool,
# str, path (text naming a file or folder, "" = none), floats (a list of distinct numbers, each in
# the range; "floats+" must also be non-empty). Ranges use interval notation; "-" means any value.
_REGISTRY_TABLE = """
seed               int      [0,inf)    random seed of the run (set by the pipeline per seed)
out_dir            path     -          stage folder for metrics.json (set by the pipeline; "" = keep in the notebook)
run_dir            path     -          run folder the report reads (set by the pipeline)
model              str      -          SFT model by local path or hub id (set by the pipeline; "" = the embedded tiny model)
seeds              int      [1,inf)    number of independent sandbox worlds averaged over
beta               float    (0,inf)    KL strength beta of the DPO-family losses
steps              int      [1,inf)    optimisation steps on the sandbox
lr                 float    (0,inf)    learning rate
n_prompts          int      [1,inf)    number of prompts (sandbox prompts, or the prompt pool of a replication)
n_responses        int      [2,inf)    responses per sandbox prompt (two are needed to form a pair)
n_pairs            int      [1,inf)    number of preference pairs
n_eval             int      [1,inf)    number of held-out evaluation prompts
n_samples          int      [2,inf)    samples per prompt for SeRA's bootstrapping (best against worst needs two)
n_pieces           int      [1,inf)    affine pieces approximating -log in the DRO program
seed_epochs        int      [1,inf)    epochs of DPO on the gold seed (SPA's pi_0)
alpha              float    [0,1]      SPA's label-smoothing weight for suspected-noise pairs (Eq. 10)
k                  float    (0,1)      SPA's share K of least-confident pairs flagged as noise (Eq. 9)
flip_rate          float    [0,1)      share of preference labels the simulated rater flips
flip_rates         floats+  [0,1)      flipped-label shares to compare
length_bias        float    (-inf,inf) rater's preference per extra token for the longer answer (negative: shorter)
keep_fraction      float    (0,1]      SeRA's share of offline pairs kept by IRM selection (k / N)
bootstrap_fraction float    (0,1]      SeRA's bootstrapped pairs as a share of N (k~ / N)
gamma              float    [0,1]      SeRA's ensemble weight gamma (Eq. 7)
lam                float    [0,inf)    Sr-DPO's refinement weight lambda (Eq. 12)
kappa              float    [0,inf)    how informative the toy prompt-augmented view is (0 = Delta_naive)
epsilon            float    [0,inf)    radius of the Wasserstein ball of DRO-DPO (0 = plain DPO)
floor              float    (0,0.5]    lowest confidence the DRO adversary may move mass to
temperature        float    (0,inf)    sampling temperature of the SFT samples shown
sample_temperature float    (0,inf)    temperature of the pairs a method samples each round (near 0 every pair is identical and the round stops)
seed_fractions     floats   (0,1)      gold-seed sizes (share of the prompt pool) besides SPA's 2/60
dataset            str      -          preference dataset by hub id or local path ("" = the embedded world)
judge              str      -          gold judge: reward model by hub id or local path ("" = the world's gold reward)
round_share        float    (0,1]      share of each SPA round's prompts used by the ablation variants
rm_prompts         int      [1,inf)    external labelled pairs the rival reward-model judge is fitted on
n_offline          int      [1,inf)    offline preference pairs (the labelled set a single-pass method trains on)
batch_epsilon      float    [0,inf)    radius of the per-batch (single-pass) DRO-DPO ablation
"""


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


def _parse_registry(table: str) -> dict[str, Param]:
    params = {}
    for line in table.strip().splitlines():
        name, kind, span, meaning = line.split(maxsplit=3)
        if kind not in ("int", "float", "bool", "str", "path", "floats", "floats+"):
            raise AssertionError(f"registry line for {name!r}: unknown kind {kind!r}")
        bounds = {}
        if span != "-":
            low, high = span[1:-1].split(",")
            bounds = dict(low=float(low), high=float(high), low_closed=span[0] == "[", high_closed=span[-1] == "]")
        params[name] = Param(name, kind, meaning, **bounds)
    return params


PARAMETERS: dict[str, Param] = _parse_registry(_REGISTRY_TABLE)


def parameter_table() -> str:
    """The registry as a Markdown table (name, allowed values, meaning)."""
    lines = ["| parameter | allowed | meaning |", "|---|---|---|"]
    lines += [f"| `{p.name}` | {p.allowed} | {p.meaning} |" for p in PARAMETERS.values()]
    return "\n".join(lines)


def check_parameter(name: str, value, where: str, note: str = "") -> None:
    """``ConfigError`` naming ``where``, the parameter, the value and its allowed range when
    ``value`` is not allowed for the registered parameter ``name`` (unregistered names pass)."""
    param = PARAMETERS.get(name)
    if param is None:
        return
    bad = param.problem(value)
    if bad:
        raise ConfigError(f"{where}: parameter {name!r} = {value!r}{note} is not allowed ({bad}); "
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


def check_model(model: str, where: str) -> None:
    """A local folder must exist and hold a ``config.json``; anything else must look like a hub id."""
    if not model.strip():
        raise ConfigError(f"{where}: 'model' is empty; use null for the embedded tiny model, or a path or hub id")
    if model in ("standin:policy",):
        return   # the kit's local stand-in of a real model, built on first use (settings.resolve)
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


def check_notebook_defaults(notebook: str, declared: dict, where: str) -> None:
    """Each registered parameter's default in the notebook's ``parameters`` cell is allowed too
    (an unregistered one is logged: the kit's own notebooks have a test that none is)."""
    for name, default in declared.items():
        if name in PARAMETERS:
            check_parameter(name, default, where, f" (the default in {notebook}'s parameters cell)")
        else:
            log.warning("%s: %s declares parameter %r that has no entry in config.PARAMETERS; "
                        "only its type is checked", where, notebook, name)


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
    declared = notebook_parameters(stage.path)
    check_notebook_defaults(stage.notebook, declared, where)
    for name, value in stage.parameters.items():
        if name in RESERVED:
            raise ConfigError(f"{where}: parameter {name!r} is set by the pipeline, not the config")
        if name not in declared:
            raise ConfigError(f"{where}: {stage.notebook} has no parameter {name!r} (it has {sorted(declared)})")
        if name in PARAMETERS:
            check_parameter(name, value, where)
        elif not _same_type(value, declared[name]):
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
