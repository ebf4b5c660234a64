"""The small preference fixture in UltraFeedback's column layout that ships in ``data/``.
Written by the kit itself from the embedded world (never copied from a public dataset)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import world

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "toy_ultrafeedback.jsonl"


def fixture_rows(n: int = 40, seed: int = 0) -> list[dict]:
    """``n`` rows labelled by a rater with some noise and a length preference, so that the
    fixture holds both correct and wrong labels (``gold_*`` tells which)."""
    rater = world.Annotator(temperature=0.1, flip_rate=0.1, length_bias=0.2)
    return world.preference_rows(world.make_tasks(n, seed=seed), rater, seed=seed)


def write_fixture(path: Path = FIXTURE, n: int = 40, seed: int = 0) -> None:
    """Write atomically: a temporary file renamed into place."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in fixture_rows(n, seed)))
    os.replace(tmp, path)
