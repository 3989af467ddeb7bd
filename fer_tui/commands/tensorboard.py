"""`fer-tui tensorboard`: TensorBoard scalars of runs made before, written from their events."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_DIR",
        help="run directories (runs/<run>); none: every run under --runs-dir",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_tui import paths
    from fer_tui.errors import FerError
    from fer_tui.runs import list_runs, running_pid
    from fer_tui.tensorboard import LOGDIR, convert_run, require

    require()
    runs_dir = paths.runs_dir(getattr(args, "runs_dir", None))
    runs = [Path(r) for r in args.runs] or list_runs(runs_dir)
    if not runs:
        raise FerError(f"no runs under {runs_dir}: train one first, or name RUN_DIRs")
    written = 0
    for run_dir in runs:
        if running_pid(run_dir) is not None and (run_dir / LOGDIR).is_dir():
            print(
                f"{run_dir}: training now, and writing its scalars as it goes; skipped",
                file=sys.stderr,
            )
            continue
        logdir, n = convert_run(run_dir)
        written += 1
        print(f"{run_dir}: {n} scalars in {logdir}" if n else f"{run_dir}: no scalars yet")
    if written:
        where = runs_dir if not args.runs else " ".join(str(r) for r in runs)
        print(f"see them with: tensorboard --logdir {where}", file=sys.stderr)
    return 0
