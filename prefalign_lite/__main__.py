"""Command line:

    python -m prefalign_lite run --config configs/toy.yaml --seeds 0 1 2 --out runs/toy
                                                               the whole replication, resumable
    python -m prefalign_lite run-notebooks --out runs/latest   execute the notebooks with papermill
    python -m prefalign_lite lr-grid                           DPO on all gold at each learning rate (how it was chosen)
    python -m prefalign_lite sr-lambda                         Sr-DPO at each lambda of the paper's grid, on validation prompts
    python -m prefalign_lite make-fixture                      rewrite data/toy_ultrafeedback.jsonl
    python -m prefalign_lite bench --shape mistral-7b          the engine against TRL on a random model of that shape
    python -m prefalign_lite bench --estimate [--shape S | --config C]   the memory model, per phase and component
    python -m prefalign_lite gpu-check [--device cpu]          the prepared GPU check (one JSON, one Markdown table)
    python -m prefalign_lite real-size                         a random full-size Qwen2.5-0.5B through DPO and one SPA round
    python -m prefalign_lite links [--check]                   the notebooks' Colab/Binder badges and install cells

Each subcommand is registered with its flags in :func:`_parser` and dispatched to a handler of its
own, ``handler(args) -> exit status``; the handlers import what they need, so the command line
starts fast. The command line is the top of the package: it is the one module that may import every layer.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.logs:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return args.handler(args)


def _command(sub, name: str, handler, help: str, logs: bool = True) -> argparse.ArgumentParser:
    """Subcommand ``name``, dispatched to ``handler(args)``; ``logs``: log at INFO level while it runs."""
    parser = sub.add_parser(name, help=help)
    parser.set_defaults(handler=handler, logs=logs)
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m prefalign_lite")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = _command(sub, "run", _run_pipeline, "the replication pipeline: the config's notebooks, per seed, resumable")
    rp.add_argument("--config", type=Path, default=Path("configs/toy.yaml"))
    rp.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the config's)")
    rp.add_argument("--out", type=Path, default=Path("runs/toy"))
    rp.add_argument("--check", action="store_true", help="validate the config and stop")
    rp.add_argument("--jobs", type=_jobs, default=None,
                    help="stages at once: default one per GPU on CUDA (each pinned to its GPU), 1 on a CPU; "
                         "'auto' is one per GPU, or 2 on a CPU (two seeds on two cores)")
    nb = _command(sub, "run-notebooks", _run_notebooks, "execute the notebooks in order with papermill")
    nb.add_argument("--out", type=Path, default=Path("runs/latest"), help="folder for executed notebooks")
    nb.add_argument("--only", nargs="*", help="run only notebooks whose name starts with these (e.g. 00 01)")
    grid = _command(sub, "lr-grid", _grid, "DPO on all gold at each learning rate: the rate every method uses")
    grid.add_argument("--json", type=Path, help="also write the grid here")
    lam = _command(sub, "sr-lambda", _grid,
                   "Sr-DPO at each lambda of the paper's grid on validation prompts: the lambda it uses")
    lam.add_argument("--json", type=Path, help="also write the grid here")
    _command(sub, "make-fixture", _make_fixture, "rewrite the small UltraFeedback-layout fixture in data/")
    links = _command(sub, "links", _links, "bring the notebooks' badges and install cells up to date with pyproject.toml",
                     logs=False)
    links.add_argument("--check", action="store_true", help="only report; exit status 1 if a notebook is out of date")
    bench = _command(sub, "bench", _bench, "step time, memory and sampling speed of the engine against TRL (random model)")
    bench.add_argument("--shape", help="tiny (default), tiny-qwen2-152k, qwen2.5-0.5b, llama-3.2-1b, mistral-7b")
    bench.add_argument("--out", type=Path, default=None, help="JSON file (default bench-SHAPE-DEVICE.json)")
    bench.add_argument("--pairs", type=int, help="pairs per step (default: the shape's)")
    bench.add_argument("--prompt-tokens", type=int, help="prompt length (default: the shape's)")
    bench.add_argument("--completion-tokens", type=int, help="completion length (default: the shape's)")
    bench.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up")
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--sample-batches", type=int, nargs="+", help="generation batch sizes")
    bench.add_argument("--new-tokens", type=int, help="new tokens per sampled sequence")
    bench.add_argument("--prompts", type=int, default=10_000, help="N of the SPA-iteration projection")
    bench.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    bench.add_argument("--no-trl", action="store_true")
    bench.add_argument("--no-sampling", action="store_true")
    bench.add_argument("--estimate", action="store_true",
                       help="print the memory model's components per phase (no model built); with --shape or --config")
    bench.add_argument("--config", help="with --estimate: a run config (configs/mistral7b-sft-4bit.yaml) instead of a shape")
    gc = _command(sub, "gpu-check", _gpu_check,
                  "the prepared GPU check: bench on qwen2.5-0.5b and mistral-7b, the real-size run; "
                  "one JSON and one Markdown table")
    gc.add_argument("--device", help="cuda (default when available) or cpu (the dry run at the tiny shape)")
    gc.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for gpu-check.json and gpu-check.md")
    gc.add_argument("--real-size", choices=("auto", "yes", "no"), default="auto",
                    help="run the real-size 0.5B pipeline too (auto: on CUDA only)")
    rs = _command(sub, "real-size", _real_size, "a random full-size Qwen2.5-0.5B through notebook 11's DPO and one SPA round")
    rs.add_argument("--prompts", type=int, default=30, help="SPA's n_prompts (the seed is 1/30 of it, at least 1)")
    rs.add_argument("--eval", type=int, default=4, help="evaluation prompts")
    rs.add_argument("--new-tokens", type=int, default=8)
    rs.add_argument("--json", type=Path, help="also write the record here")
    return parser


def _jobs(text: str):
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs takes an integer or 'auto', got {text!r}") from None


def _links(args) -> int:
    from .notebook import links as notebook_links

    return notebook_links.main(["--check"] if args.check else [])


def _grid(args) -> int:
    """``lr-grid`` and ``sr-lambda``: the grid as JSON on stdout, and in ``--json`` when given."""
    import json

    from .core.files import write_text
    from .replication import fairness

    report = json.dumps(fairness.learning_rate_grid() if args.command == "lr-grid" else fairness.sr_lambda_grid(), indent=1)
    print(report)
    if args.json:
        write_text(args.json, report)
    return 0


def _bench(args) -> int:
    if args.estimate:
        return _estimate(args)
    from .bench.benchmark import BenchConfig, format_table, run as run_bench
    from .engine.models import default_device

    device = args.device or default_device().type
    args.shape = args.shape or "tiny"
    out = args.out or Path(f"bench-{args.shape}-{device}.json")
    result = run_bench(BenchConfig(shape=args.shape, device=device, warmup=args.warmup, steps=args.steps,
                                   sample_batches=tuple(args.sample_batches) if args.sample_batches else None,
                                   sample_new_tokens=args.new_tokens, n_prompts=args.prompts, with_trl=not args.no_trl,
                                   with_sampling=not args.no_sampling, out=out, pairs=args.pairs,
                                   prompt_tokens=args.prompt_tokens, completion_tokens=args.completion_tokens))
    print(format_table(result))
    print(f"wrote {out.resolve()}")
    return 0


def _estimate(args) -> int:
    """``bench --estimate``: the memory model's table; exit status 2 for an unknown shape or config."""
    from .bench.estimate import estimate_report

    try:
        print(estimate_report(args.shape, args.config))
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _gpu_check(args) -> int:
    """Exit status 1 when a shape's bench failed."""
    from .bench.gpu_check import run_check
    from .engine.models import default_device
    from .replication.real_size import run_real_size

    device = args.device or default_device().type
    wanted = args.real_size == "yes" or (args.real_size == "auto" and device == "cuda")
    record = run_check(device, args.out, real_size=run_real_size if wanted else None)
    print((args.out / "gpu-check.md").read_text())
    print(f"wrote {(args.out / 'gpu-check.json').resolve()}")
    return 0 if all("error" not in r for r in record["benches"].values()) else 1


def _real_size(args) -> int:
    import json

    from .replication.real_size import run_real_size

    record = run_real_size(n_prompts=args.prompts, n_eval=args.eval, new_tokens=args.new_tokens)
    text = json.dumps(record, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


def _make_fixture(args) -> int:
    from .settings.fixtures import FIXTURE, write_fixture

    write_fixture(FIXTURE)
    print(f"wrote {FIXTURE}")
    return 0


def _run_notebooks(args) -> int:
    """Exit status 1 when there is no notebook to run or one failed."""
    from .replication.runner import ordered_notebooks, run_notebooks

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
    """``run``: exit status 2 for a bad config, seeds or ``--jobs`` (before anything runs), 1 when a stage failed."""
    import time

    from .replication import pipeline
    from .replication.config import ConfigError, check_seeds, load_config, notebook_parameters
    from .replication.prompt_needs import check_inputs

    logging.getLogger("papermill").setLevel(logging.WARNING)  # one line per stage is ours; papermill's are noise
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seeds = args.seeds or config.seeds
    try:
        check_seeds(seeds, "--seeds")
        workers = pipeline.resolve_jobs(args.jobs, pipeline.visible_gpus())
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checked = check_inputs(config, lambda stage: notebook_parameters(stage.path), str(args.config))
    if checked.problems:
        print("error: " + "\n       ".join(checked.problems), file=sys.stderr)
        return 2
    if args.check:
        for line in checked.not_checked:
            print(f"not checked: {line}")
        if checked.not_checked:
            print(f"{args.config}: no problem found, but not checked in full ({len(config.stages)} stages, seeds {seeds}; "
                  f"{len(checked.not_checked)} input(s) not checked offline, listed above)")
        else:
            print(f"{args.config}: valid ({len(config.stages)} stages, seeds {seeds})")
        return 0
    start = time.perf_counter()
    out = args.out.resolve()   # before papermill moves the working directory
    try:
        pipeline.run(config, seeds, out, echo=lambda line: print(line, flush=True), workers=workers)
    except pipeline.StageFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = sorted(out.glob("*/report.md"))
    print(f"replication finished in {time.perf_counter() - start:.0f} s; run folder {out}")
    for path in report:
        print(f"report: {path.resolve()} (tables) and {path.with_name(path.parent.name + '.ipynb').resolve()} (plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
