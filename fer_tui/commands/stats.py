"""`fer-tui stats` (not written yet)."""

from __future__ import annotations

import argparse

from fer_tui.errors import FerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    raise FerError("`fer-tui stats` is not implemented yet")
