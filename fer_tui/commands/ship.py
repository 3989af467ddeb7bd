"""`fer-tui ship`: a finished run's weights as an fp16 checkpoint, and its curves as a PNG."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR",
        help="a run directory (runs/<run>); several only with --png alone (their curves on "
        "one figure)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="ship the run as <checkpoints dir>/NAME.pt (without --name: curves only)",
    )
    parser.add_argument(
        "--weights",
        choices=("auto", "last", "ema"),
        default="auto",
        help="auto: the EMA when the run kept one and it beat the raw weights on a holdout "
        "from train, else the last epoch; last: last.pt; ema: ema.pt (default: auto)",
    )
    parser.add_argument(
        "--png",
        default=None,
        metavar="PATH",
        help="draw the runs' loss and accuracy curves into this PNG (needs matplotlib)",
    )
    parser.add_argument(
        "--replace", action="store_true", help="overwrite an existing NAME.pt (a better model)"
    )
    parser.add_argument(
        "--unfinished",
        action="store_true",
        help="ship a run that stopped before the end of its schedule (its last.pt, labelled so)",
    )
    parser.add_argument(
        "--adjust-logits",
        action="store_true",
        help="tune a logit adjustment for the rare classes (disgust, fear) on the run's holdout "
        "from train and fold it into the weights; kept only where it raises the holdout's "
        "macro F1 by 0.005 or more without lowering its accuracy (it reads the holdout from the "
        "dataset path in the run's config, or from --data when the dataset moved)",
    )
    parser.add_argument(
        "--checkpoints",
        default=None,
        metavar="DIR",
        help="where NAME.pt goes (default: ./checkpoints when it exists, else the project's)",
    )


def _say_waiting(pid: int | None) -> None:
    import sys

    who = f"pid {pid}" if pid else "another fer-tui"
    print(f"waiting for {who}, which is writing the same file...", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from fer_tui.errors import FerError
    from fer_tui.shipping import import_pyplot, plot_curves, ship_run

    if args.name is None and args.png is None:
        raise FerError("nothing to do: give --name NAME (ship the run) and/or --png PATH (curves)")
    if args.name is not None and len(args.runs) > 1:
        raise FerError(
            f"--name ships one run, not {len(args.runs)}: ship each with its own --name "
            f"(several runs go together only into --png)"
        )
    if args.name is None and args.adjust_logits:
        raise FerError("--adjust-logits shapes a shipped checkpoint: give --name NAME too")
    if args.png is not None:
        import_pyplot()  # a missing matplotlib fails before anything is written
    if args.name is not None:
        shipped = ship_run(
            args.runs[0],
            args.name,
            checkpoints_dir=args.checkpoints,
            weights=args.weights,
            replace=args.replace,
            unfinished=args.unfinished,
            adjust_logits=args.adjust_logits,
            data=args.data,
            on_wait=_say_waiting,
        )
        print(
            f"{shipped.path}: {shipped.arch}, {shipped.selection}, "
            f"{shipped.size_bytes / 2**20:.1f} MiB"
        )
    if args.png is not None:
        print(f"curves: {plot_curves(args.runs, args.png)}")
    return 0
