"""`fer-tui evaluate`: the paper's Table 1 and Table 2 for one or more checkpoints, and their
ensemble with `--ensemble`."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from fer_tui.progress import ProgressBar as Bar

JSON_HELP = (
    "write the report as JSON to OUT ('-' for stdout). One checkpoint: the report "
    '{"model", "data", "tta", "accuracy", "weighted_avg", "macro_avg", "auc_macro_ovr", '
    '"auc_weighted_ovr", "classes", "confusion_matrix", ..., "vs_paper": the paper\'s figures '
    'and ours minus them}. Several: {"models": [report, ...], "mean": per-class and Table 1 '
    'means}, and with --ensemble "ensemble": a report for the mean probabilities'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        metavar="PATH",
        help="a fer-tui checkpoint (checkpoints/*.pt or runs/<run>/best.pt); "
        "repeat for several models",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="the split to evaluate: test (default), public_test, private_test or train",
    )
    parser.add_argument(
        "--tta",
        default="none",
        choices=("none", "flip", "tencrop"),
        help="test-time augmentation: none (default), flip (the face and its "
        "mirror), tencrop (5 crops and their mirrors)",
    )
    parser.add_argument("--json", metavar="OUT", help=JSON_HELP)
    parser.add_argument(
        "--predictions",
        metavar="OUT.csv",
        help="one row per image: index, path, true, pred, p_<class> x7, tta "
        "(several checkpoints: OUT.1-<arch>.csv, OUT.2-<arch>.csv, ..., and with --ensemble "
        "OUT.<n+1>-ensemble.csv)",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="also report the ensemble of the checkpoints (two or more): the mean of their "
        "softmax probabilities, each model preprocessing the faces its own way",
    )
    parser.add_argument("--markdown", metavar="OUT.md", help="write both tables as Markdown")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument(
        "--engine",
        default="torch",
        choices=("torch", "onnxruntime"),
        help="torch (default), or onnxruntime: the checkpoint's ONNX export on "
        "the CPU, 2-3x faster there, probabilities within 1e-4",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch (256)")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute even if these files were evaluated before",
    )


class ProgressBar:
    """Progress of each stage (data, then one prediction per checkpoint) on stderr: a redrawn
    bar with img/s and ETA on a terminal, a line per stage otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.stage: str | None = None
        self.bar: Bar | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.finish()
            self.stage = stage
            self.bar = Bar(
                stage, total, stream=self.stream, unit="" if stage == "data" else "img/s"
            )
            if stage == "data":
                self.stream.write("loading the data...\n")
            elif not self.bar.tty:
                self.stream.write(f"{stage}: {total} images\n")
            self.stream.flush()
        if total > 0 and self.bar is not None:
            self.bar.update(done, total)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.stage, self.bar = None, None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_tui import evaluate as ev
    from fer_tui.errors import CheckpointError, FerError

    # every cheap check before the data is decoded and the models run
    if args.ensemble and len(args.checkpoint) < 2:
        raise FerError(
            f"--ensemble averages several models but got {len(args.checkpoint)} checkpoint: "
            "add another --checkpoint PATH, or drop --ensemble"
        )
    for path in args.checkpoint:
        if not Path(path).is_file():
            raise CheckpointError(
                f"no checkpoint at {path}: check the path (shipped ones are "
                f"in checkpoints/, trained ones in runs/<run>/best.pt)"
            )
    ev.check_split_name(args.split)
    ev.check_engine(args.engine, args.device)
    ev.check_output_path(args.json, "--json")
    ev.check_output_path(args.predictions, "--predictions")
    ev.check_output_path(args.markdown, "--markdown")

    bar = ProgressBar()
    try:
        results = ev.evaluate_checkpoints(
            args.checkpoint,
            data=getattr(args, "data", None),
            split=args.split,
            tta=args.tta,
            device=args.device,
            batch_size=args.batch_size,
            use_cache=not args.no_cache,
            progress=bar,
            engine=args.engine,
        )
    finally:
        bar.finish()
    reports = [r.report for r in results]
    for result in results:
        if result.cached:
            print(f"(cached) {ev.model_label(result.report)}", file=sys.stderr)
    # the members' probabilities (predicted or cached above) are averaged, not predicted again
    ensemble = ev.ensemble_evaluation(results) if args.ensemble else None
    ens_report = ensemble.report if ensemble is not None else None

    to_stdout = args.json == "-"
    text = ev.format_report(reports, ens_report)
    (sys.stderr if to_stdout else sys.stdout).write(text)
    if args.json:
        payload = ev.json_payload(reports, ens_report)
        if to_stdout:
            import json

            print(json.dumps(payload, indent=1, allow_nan=False))
        else:
            ev.write_json(args.json, payload)
            print(f"wrote {args.json}", file=sys.stderr)
    if args.markdown:
        ev.atomic_write_text(args.markdown, ev.to_markdown(reports, ens_report))
        print(f"wrote {args.markdown}", file=sys.stderr)
    if args.predictions:
        written = [*results, *([ensemble] if ensemble is not None else [])]
        for i, result in enumerate(written):
            out = ev.predictions_path(
                args.predictions, i, len(written), result.report["model"].get("arch") or "model"
            )
            ev.write_predictions(out, result)
            print(f"wrote {out}", file=sys.stderr)
    return 0
