"""`fer-tui export`: a checkpoint to ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import sys

from fer_tui.errors import FerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="fer-tui checkpoint (.pt)")
    parser.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                        help="onnx (for onnxruntime, `live --backend onnxruntime`) or "
                        "torchscript (default: onnx)")
    parser.add_argument("--output", required=True, help="file to write (.onnx / .pt)")
    parser.add_argument("--faces", type=int, default=16,
                        help="random faces used for the parity check (default: 16)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from fer_tui.export import PARITY_TOL, export_checkpoint

    report = export_checkpoint(args.checkpoint, args.format, args.output, faces=args.faces)
    if args.json:
        print(json.dumps({"path": str(report.path), "format": report.format,
                          "max_abs_diff": report.max_abs_diff, "faces": report.faces,
                          "tolerance": PARITY_TOL, "ok": report.ok,
                          "seconds": round(report.seconds, 2)}))
    else:
        print(f"exported {report.format} to {report.path} in {report.seconds:.1f}s")
        print(f"parity with PyTorch on {report.faces} random faces: max |dp| = "
              f"{report.max_abs_diff:.2e} (tolerance {PARITY_TOL:.0e}): "
              f"{'ok' if report.ok else 'FAILED'}")
    if not report.ok:
        print(f"fer-tui: error: the exported model differs from PyTorch by "
              f"{report.max_abs_diff:.2e} > {PARITY_TOL:.0e}", file=sys.stderr)
        return FerError.exit_code
    return 0
