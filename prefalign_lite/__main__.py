"""Command line: ``python -m prefalign_lite run-notebooks --out runs/latest``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .notebook_runner import ordered_notebooks, run_notebooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefalign_lite")
    sub = parser.add_subparsers(dest="command", required=True)
    nb = sub.add_parser("run-notebooks", help="execute the notebooks in order with papermill")
    nb.add_argument("--out", type=Path, default=Path("runs/latest"), help="folder for executed notebooks")
    nb.add_argument("--only", nargs="*", help="run only notebooks whose name starts with these (e.g. 00 01)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

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


if __name__ == "__main__":
    sys.exit(main())
