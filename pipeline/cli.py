"""Command line: ``python -m pipeline.cli <stage> --model <recipe> [--out out]``.

Stages: train, hls, csim, emulate, report, demo, synth, bench. Errors print one line and exit 1
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _synth(args) -> None:
    from pipeline import synth

    synth.run(args.model, out=args.out, root=args.root)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="skiplstm", description=__doc__)
    parser.add_argument("stage", choices=["train", "hls", "csim", "emulate", "rtl", "report", "demo", "synth", "bench", "results"])
    parser.add_argument("--model", default="mnist_rows_demo", help="recipe name in models/ or a .toml path")
    parser.add_argument("--out", default="out", help="artifact folder (default: out)")
    parser.add_argument("--root", default="hls_project", help="generated projects folder")
    parser.add_argument("--force", action="store_true", help="rerun even if up to date")
    parser.add_argument("--epochs", type=_positive_int, default=None, help="override the recipe's epochs")
    parser.add_argument("--limit", type=_positive_int, default=None, help="use at most this many training sequences")
    parser.add_argument("--only-out", action="store_true",
                        help="results: use only the runs under --out, not the committed ledger")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (and TensorFlow's start-up log lines)")
    args = parser.parse_args(argv)
    if argv is None and not args.debug:  # the command line (not a caller's main([...])), before TensorFlow loads
        from pipeline.console import filter_stderr

        filter_stderr()
    try:
        from pipeline import stages

        if args.stage == "train":
            stages.run_train(args.model, args.out, force=args.force, epochs=args.epochs, limit=args.limit)
        elif args.stage == "hls":
            stages.run_hls(args.model, args.out, args.root, force=args.force)
        elif args.stage == "csim":
            stages.run_csim(args.model, args.out, args.root, force=args.force)
        elif args.stage == "emulate":
            stages.run_emulate(args.model, args.out, force=args.force)
        elif args.stage == "rtl":
            stages.run_rtl(args.model, args.out, force=args.force)
        elif args.stage == "report":
            stages.run_report(args.model, args.out, args.root)
        elif args.stage == "demo":
            path = stages.run_demo(args.model, args.out, args.root, epochs=args.epochs, limit=args.limit)
            print(path.read_text().split("\n")[2])
        elif args.stage == "synth":
            _synth(args)
        elif args.stage == "results":
            from pipeline.results import main as results_main

            results_main(args.out, only_out=args.only_out)
        elif args.stage == "bench":
            from pipeline.bench import main as bench_main

            bench_main(args.out)
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
