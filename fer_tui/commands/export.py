"""`fer-tui export`: a checkpoint to ONNX (fp32 or int8) or TorchScript, checked against
PyTorch."""

from __future__ import annotations

import argparse
import json
import sys

from fer_tui.errors import FerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="fer-tui checkpoint (.pt)")
    parser.add_argument(
        "--format",
        choices=("onnx", "onnx-int8", "torchscript"),
        default="onnx",
        help="onnx (fp32, for onnxruntime), onnx-int8 (quantized, calibrated on "
        "real faces from --data; `fer-tui live --checkpoint FILE.onnx`) or "
        "torchscript (default: onnx)",
    )
    parser.add_argument("--output", required=True, help="file to write (.onnx / .pt)")
    parser.add_argument(
        "--faces", type=int, default=16, help="random faces used for the parity check (default: 16)"
    )
    parser.add_argument(
        "--calibration",
        type=int,
        default=512,
        help="onnx-int8: training faces that calibrate the activation ranges (default: 512)",
    )
    parser.add_argument(
        "--check",
        type=int,
        default=2000,
        help="onnx-int8: test faces on which int8 is compared with PyTorch "
        "(default: 2000; 0 = the whole test split)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from fer_tui.export import INT8_MAX_DROP, PARITY_TOL, export_checkpoint

    report = export_checkpoint(
        args.checkpoint,
        args.format,
        args.output,
        faces=args.faces,
        data=getattr(args, "data", None),
        calibration=args.calibration,
        check=args.check,
    )
    if report.int8 is not None:
        q = report.int8
        if args.json:
            print(
                json.dumps(
                    {
                        "path": str(report.path),
                        "format": report.format,
                        **q,
                        "max_drop": INT8_MAX_DROP,
                        "ok": report.ok,
                        "seconds": round(report.seconds, 2),
                    }
                )
            )
        else:
            print(
                f"exported {report.format} to {report.path} in {report.seconds:.1f}s "
                f"(calibrated on {q['calibration_faces']} training faces)"
            )
            print(
                f"on {q['test_faces']} test faces: top-1 agreement with PyTorch "
                f"{q['agreement']:.2%}, accuracy {q['accuracy_torch']:.2%} (PyTorch) vs "
                f"{q['accuracy_int8']:.2%} (int8), max |dp| {q['max_abs_diff']:.3f}: "
                f"{'ok' if report.ok else 'FAILED'}"
            )
        if not report.ok:
            print(
                f"fer-tui: error: int8 loses {q['accuracy_drop']:.2%} of accuracy "
                f"(> {INT8_MAX_DROP:.0%}): calibrate on more faces (--calibration) or use "
                f"--format onnx",
                file=sys.stderr,
            )
            return FerError.exit_code
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(report.path),
                    "format": report.format,
                    "max_abs_diff": report.max_abs_diff,
                    "faces": report.faces,
                    "tolerance": PARITY_TOL,
                    "ok": report.ok,
                    "seconds": round(report.seconds, 2),
                }
            )
        )
    else:
        print(f"exported {report.format} to {report.path} in {report.seconds:.1f}s")
        print(
            f"parity with PyTorch on {report.faces} random faces: max |dp| = "
            f"{report.max_abs_diff:.2e} (tolerance {PARITY_TOL:.0e}): "
            f"{'ok' if report.ok else 'FAILED'}"
        )
    if not report.ok:
        print(
            f"fer-tui: error: the exported model differs from PyTorch by "
            f"{report.max_abs_diff:.2e} > {PARITY_TOL:.0e}",
            file=sys.stderr,
        )
        return FerError.exit_code
    return 0
