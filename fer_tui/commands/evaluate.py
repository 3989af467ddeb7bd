"""`fer-tui evaluate`: the paper's Table 1 and Table 2 for one or more checkpoints, and their
ensemble with `--ensemble`."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from fer_tui.backends import CHOICES
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
        help="the split to evaluate: test (default), public_test, private_test, train, or "
        "holdout (the part of train the checkpoints' runs kept out to choose their weights)",
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
        "--backend",
        default="auto",
        choices=CHOICES,
        help="auto (default): onnxruntime on the CPU when the [onnx] extra is installed "
        "(the checkpoint's ONNX export, faster there, probabilities within 1e-4), else torch; "
        "torch on a GPU",
    )
    # the flag's older name, still accepted
    parser.add_argument("--engine", dest="backend", choices=CHOICES, help=argparse.SUPPRESS)
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

    from fer_tui.backends import check_backend
    from fer_tui.errors import CheckpointError, FerError
    from fer_tui.evaluation.ensemble import ensemble_evaluation
    from fer_tui.evaluation.formatting import format_report, to_markdown
    from fer_tui.evaluation.outputs import (
        check_output_path,
        json_payload,
        predictions_path,
        write_json,
        write_predictions,
    )
    from fer_tui.evaluation.runner import check_split_name, evaluate_checkpoints
    from fer_tui.evaluation.tables import model_label
    from fer_tui.files import atomic_write_text

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
    check_split_name(args.split)
    check_backend(args.backend, args.device)
    check_output_path(args.json, "--json")
    check_output_path(args.predictions, "--predictions", exact=len(args.checkpoint) == 1)
    check_output_path(args.markdown, "--markdown")

    bar = ProgressBar()
    try:
        results = evaluate_checkpoints(
            args.checkpoint,
            data=getattr(args, "data", None),
            split=args.split,
            tta=args.tta,
            device=args.device,
            batch_size=args.batch_size,
            use_cache=not args.no_cache,
            progress=bar,
            backend=args.backend,
        )
    finally:
        bar.finish()
    reports = [r.report for r in results]
    for result in results:
        if result.cached:
            print(f"(cached) {model_label(result.report)}", file=sys.stderr)
    # the members' probabilities (predicted or cached above) are averaged, not predicted again
    ensemble = ensemble_evaluation(results) if args.ensemble else None
    ens_report = ensemble.report if ensemble is not None else None

    to_stdout = args.json == "-"
    text = format_report(reports, ens_report)
    (sys.stderr if to_stdout else sys.stdout).write(text)
    if args.json:
        payload = json_payload(reports, ens_report)
        if to_stdout:
            import json

            print(json.dumps(payload, indent=1, allow_nan=False))
        else:
            write_json(args.json, payload)
            print(f"wrote {args.json}", file=sys.stderr)
    if args.markdown:
        atomic_write_text(args.markdown, to_markdown(reports, ens_report))
        print(f"wrote {args.markdown}", file=sys.stderr)
    if args.predictions:
        written = [*results, *([ensemble] if ensemble is not None else [])]
        for i, result in enumerate(written):
            out = predictions_path(
                args.predictions, i, len(written), result.report["model"].get("arch") or "model"
            )
            write_predictions(out, result)
            print(f"wrote {out}", file=sys.stderr)
    return 0
