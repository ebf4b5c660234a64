"""Command line:

    python -m prefalign_lite run --config configs/toy.yaml --seeds 0 1 2 --out runs/toy
                                                               the whole replication, resumable
    python -m prefalign_lite run-notebooks --out runs/latest   execute the notebooks with papermill
    python -m prefalign_lite world-check                       is the embedded world a fair test?
    python -m prefalign_lite make-fixture                      rewrite data/toy_ultrafeedback.jsonl
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .notebook_runner import ordered_notebooks, run_notebooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefalign_lite")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("run", help="the replication pipeline: the config's notebooks, per seed, resumable")
    rp.add_argument("--config", type=Path, default=Path("configs/toy.yaml"))
    rp.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the config's)")
    rp.add_argument("--out", type=Path, default=Path("runs/toy"))
    rp.add_argument("--check", action="store_true", help="validate the config and stop")
    nb = sub.add_parser("run-notebooks", help="execute the notebooks in order with papermill")
    nb.add_argument("--out", type=Path, default=Path("runs/latest"), help="folder for executed notebooks")
    nb.add_argument("--only", nargs="*", help="run only notebooks whose name starts with these (e.g. 00 01)")
    check = sub.add_parser("world-check", help="SFT stats and DPO-on-all-gold win rate against SFT")
    check.add_argument("--json", type=Path, help="also write the report here")
    sub.add_parser("make-fixture", help="rewrite the small UltraFeedback-layout fixture in data/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "world-check":
        import json

        from .world_check import run

        report = json.dumps(run(), indent=1)
        print(report)
        if args.json:
            args.json.write_text(report)
        return 0
    if args.command == "run":
        return _run_pipeline(args)
    if args.command == "make-fixture":
        from .fixture import FIXTURE, write_fixture

        write_fixture(FIXTURE)
        print(f"wrote {FIXTURE}")
        return 0

    notebooks = ordered_notebooks(names=args.only)
    if not notebooks:
        print("no notebooks to run", file=sys.stderr)
        return 1
    try:
        done = run_notebooks(args.out, notebooks)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"executed {len(done)} notebooks into {args.out.resolve()}")
    return 0


def _run_pipeline(args) -> int:
    import time

    from . import pipeline
    from .config import ConfigError, load_config

    logging.getLogger("papermill").setLevel(logging.WARNING)  # one line per stage is ours; papermill's are noise
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seeds = args.seeds or config.seeds
    if args.check:
        print(f"{args.config}: valid ({len(config.stages)} stages, seeds {seeds})")
        return 0
    start = time.perf_counter()
    try:
        pipeline.run(config, seeds, args.out, echo=lambda line: print(line, flush=True))
    except pipeline.StageFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = sorted(args.out.glob("*/report.md"))
    print(f"replication finished in {time.perf_counter() - start:.0f} s; run folder {args.out.resolve()}")
    for path in report:
        print(f"report: {path.resolve()} (tables) and {path.with_name(path.parent.name + '.ipynb').resolve()} (plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
