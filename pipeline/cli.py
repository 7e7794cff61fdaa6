"""Command line: ``python -m pipeline.cli <stage> [options]``; ``<stage> -h`` lists a stage's options.

Stages: train, hls, csim, emulate, rtl, report, demo, synth, results, bench. Each takes only its own
options; ``--seed N`` picks one of the recipe's seeds (default: its first), ``train --seeds SPEC``
trains several ("all", or e.g. "0-9", "0,3,5-7"), ``--jobs J`` of them at once. Errors print one line
and exit 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SEEDS_FORM = "'all' or a comma list of seeds and inclusive ranges, e.g. '0-9' or '0,3,5-7'"
MAX_SEEDS = 10_000  # a sweep this long is a typo, not a plan (and would build a huge list first)
_SEED_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?")


def parse_seeds(text: str) -> list[int] | None:
    """``--seeds`` text -> sorted seeds without duplicates; None for "all" (every seed the recipe lists).

    Raises ValueError naming the text and the expected form for anything else ("", "a-b", "5-2", "-1").
    """
    if text.strip().lower() == "all":
        return None
    seeds: set[int] = set()
    for item in text.split(","):
        match = _SEED_ITEM.fullmatch(item.strip())
        if match is None:
            raise ValueError(f"expected {SEEDS_FORM}, got {text!r}")
        first = int(match.group(1))
        last = first if match.group(2) is None else int(match.group(2))
        if last < first:
            raise ValueError(f"range {item.strip()!r} runs backwards: expected {SEEDS_FORM}, got {text!r}")
        if last - first >= MAX_SEEDS or len(seeds) + last - first >= MAX_SEEDS:
            raise ValueError(f"{text!r} names more than {MAX_SEEDS} seeds; a recipe lists the seeds it runs")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def _seeds_arg(text: str) -> str:
    """argparse type of ``--seeds``: validated here, kept as text (so that "all" differs from not given)."""
    try:
        parse_seeds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


# ------------------------------------------------------------------------------------------- the stages
def _train(args) -> None:
    from pipeline import stages

    if args.seeds is not None or args.jobs is not None:
        if args.seeds is not None:
            seeds = parse_seeds(args.seeds)
        else:
            seeds = None if args.seed is None else [args.seed]
        stages.run_sweep(args.model, out=args.out, seeds=seeds, jobs=args.jobs or 1, force=args.force,
                         epochs=args.epochs, limit=args.limit)
    else:
        stages.run_train(args.model, out=args.out, seed=args.seed, force=args.force, epochs=args.epochs,
                         limit=args.limit)


def _hls(args) -> None:
    from pipeline import stages

    stages.run_hls(args.model, out=args.out, root=args.root, seed=args.seed, force=args.force)


def _csim(args) -> None:
    from pipeline import stages

    stages.run_csim(args.model, out=args.out, root=args.root, seed=args.seed, force=args.force)


def _emulate(args) -> None:
    from pipeline import stages

    stages.run_emulate(args.model, out=args.out, root=args.root, seed=args.seed, force=args.force)


def _rtl(args) -> None:
    from pipeline import stages

    stages.run_rtl(args.model, out=args.out, root=args.root, seed=args.seed, force=args.force)


def _pnr(args) -> None:
    from pipeline import stages
    from pipeline.recipes import load_recipe

    # what the report needs first (each stage cached: a run already trained and built reruns nothing)
    recipe = load_recipe(args.model, seed=args.seed)
    stages.run_train(recipe, out=args.out)
    stages.run_hls(recipe, out=args.out, root=args.root)
    stages.run_csim(recipe, out=args.out, root=args.root)
    stages.run_emulate(recipe, out=args.out, root=args.root)
    stages.run_rtl(recipe, out=args.out, root=args.root)
    stages.run_pnr(recipe, out=args.out, root=args.root, force=args.force)
    stages.run_report(recipe, out=args.out, root=args.root)


def _report(args) -> None:
    from pipeline import stages

    stages.run_report(args.model, out=args.out, root=args.root, seed=args.seed)


def _demo(args) -> None:
    from pipeline import stages

    path = stages.run_demo(args.model, out=args.out, root=args.root, seed=args.seed, epochs=args.epochs,
                           limit=args.limit)
    print(path.read_text().split("\n")[2])


def _synth(args) -> None:
    from pipeline import synth

    synth.run(args.model, out=args.out, root=args.root, seed=args.seed)


def _results(args) -> None:
    from pipeline.results import main as results_main

    results_main(args.out, only_out=args.only_out, root=args.root)


def _bench(args) -> None:
    from pipeline.bench import main as bench_main

    bench_main(args.out, parts=args.parts)


# ------------------------------------------------------------------------------------------- the parser
def _add(sub, name: str, func, help_text: str, *, model=True, out="out", root=False, seed=True,
         force=False) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    if model:
        p.add_argument("--model", default="mnist_rows_demo", help="recipe name in models/ or a .toml path")
    p.add_argument("--out", default=out, help=f"artifact folder (default: {out})")
    if root:
        p.add_argument("--root", default="hls_project", help="generated projects folder (default: hls_project)")
    if seed:
        p.add_argument("--seed", type=_seed_int, default=None,
                       help="which of the recipe's seeds (default: its first)")
    if force:
        p.add_argument("--force", action="store_true", help="rerun even if up to date")
    p.add_argument("--debug", action="store_true", help="show tracebacks (and TensorFlow's start-up log lines)")
    return p


def _epochs_limit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_positive_int, default=None, help="override the recipe's epochs")
    p.add_argument("--limit", type=_positive_int, default=None, help="use at most this many training sequences")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skiplstm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True, metavar="stage")

    # train: --seed and --seeds exclusive (both add --seed, so build it by hand)
    train = _add(sub, "train", _train, "train the recipe's model (one seed, or a sweep of seeds)", seed=False,
                 force=True)
    which = train.add_mutually_exclusive_group()
    which.add_argument("--seed", type=_seed_int, default=None, help="which of the recipe's seeds (default: its first)")
    which.add_argument("--seeds", type=_seeds_arg, default=None, metavar="SPEC",
                       help=f"train several seeds: {SEEDS_FORM}")
    train.add_argument("--jobs", type=_positive_int, default=None,
                       help="run this many trainings at once (a sweep; default 1)")
    _epochs_limit(train)

    _add(sub, "hls", _hls, "generate the HLS project", root=True, force=True)
    _add(sub, "csim", _csim, "C-simulate the HLS project, verified against the emulator", root=True, force=True)
    _add(sub, "emulate", _emulate, "run the test split on the emulator of the HLS project's saved IR", root=True,
         force=True)
    _add(sub, "rtl", _rtl, "generate, simulate and check the Verilog", root=True, force=True)
    _add(sub, "pnr", _pnr, "place and route each layer on an ECP5 (Yosys, nextpnr, ecppack): Fmax, latency in "
         "microseconds, bitstreams (runs the stages before it that are not up to date, and the report)", root=True,
         force=True)
    _add(sub, "report", _report, "write report.md and its plots", root=True)
    demo = _add(sub, "demo", _demo, "train -> hls -> csim -> emulate -> rtl -> report", root=True)
    _epochs_limit(demo)
    _add(sub, "synth", _synth, "run Vitis HLS synthesis (needs vitis_hls on PATH)", root=True)
    results = _add(sub, "results", _results, "the results tables and plots from the records of every trained run",
                   model=False, root=True, seed=False)
    results.add_argument("--only-out", action="store_true",
                         help="use only the runs under --out, not the committed ledger")
    bench = _add(sub, "bench", _bench, "the benchmarks", model=False, out="bench", seed=False)
    bench.add_argument("--parts", default=None,
                       help="only these parts, comma-separated (e.g. trained,training), replaced in the existing "
                            "results.json (default: every part, a new results.json)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None and not args.debug:  # the command line (not a caller's main([...])), before TensorFlow loads
        from pipeline.console import filter_stderr

        filter_stderr()
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("skiplstm: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one clear line unless --debug
        if args.debug:
            raise
        print(f"skiplstm {args.stage}: error: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
