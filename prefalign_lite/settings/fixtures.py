"""The small preference fixture in UltraFeedback's column layout that ships in ``data/``.
Written by the kit itself from the embedded world (never copied from a public dataset)."""
from __future__ import annotations

import json
from pathlib import Path

from .. import world
from ..core.files import building
from ..engine.data import load_preferences

FIXTURE = Path(__file__).resolve().parent.parent.parent / "data" / "toy_ultrafeedback.jsonl"


def fixture_rows(n: int = 40, seed: int = 0) -> list[dict]:
    """``n`` rows labelled by a rater with some noise and a length preference, so that the
    fixture holds both correct and wrong labels (``gold_*`` tells which)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (rows in the fixture), got {n!r}")
    rater = world.Annotator(temperature=0.1, flip_rate=0.1, length_bias=0.2)
    return world.preference_rows(world.make_tasks(n, seed=seed), rater, seed=seed)


def write_fixture(path: Path = FIXTURE, n: int = 40, seed: int = 0) -> None:
    """Write atomically: a temporary file, checked to load without a bad row, renamed into place
    (so a failed write or a fixture the loader would refuse never replaces the old one)."""
    with building(path, check=load_preferences) as scratch:  # load_preferences raises on the first bad row
        scratch.write_text("".join(json.dumps(r) + "\n" for r in fixture_rows(n, seed)), encoding="utf-8")
