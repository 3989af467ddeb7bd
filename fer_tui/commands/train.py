"""`fer-tui train`: train ResNets from a TOML config into run directories.

The work lives in `fer_tui.train` (also `python -m fer_tui.train`, which torchrun runs, with
these same flags); this module keeps the flags torch-free so `fer-tui --help` stays fast.
"""

from __future__ import annotations

import argparse

ARCH_CHOICES = ("resnet18", "resnet34", "resnet50", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The trainer's flags (`--data` and `--runs-dir` come from fer_tui.cli)."""
    parser.add_argument(
        "--config", default=None, help="run config TOML (default: configs/scratch.toml)"
    )
    parser.add_argument(
        "--arch",
        choices=ARCH_CHOICES,
        default=None,
        help="which model(s) to train (default: the config's `archs`)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="override train.device (auto = cuda when available)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="use only N images per split (smoke tests)"
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue a stopped or crashed run from its last.pt",
    )
    parser.add_argument(
        "--run-dir",
        default=None,
        metavar="DIR",
        help="train into this (new or pending) run dir instead of a fresh one",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")


def run(args: argparse.Namespace) -> int:
    from fer_tui.train import run as train

    return train(args)
