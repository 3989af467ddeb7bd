"""`fer-tui`: the TUI with no subcommand, or one of stats|train|evaluate|live|export|ship|
tensorboard|serve.

Importing this module must stay cheap (no torch, no textual): subcommand modules are imported
only to add their arguments, and they defer their heavy imports into `run()`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from fer_tui import __version__
from fer_tui.errors import FerError, os_error_message

#: subcommand -> one-line help; each lives in fer_tui/commands/<name>.py with
#: `add_arguments(parser)` and `run(args) -> int`.
COMMANDS: dict[str, str] = {
    "stats": "per-split, per-class counts and problems found in the data",
    "train": "train ResNets from a TOML config (writes a run directory)",
    "evaluate": "the paper's Table 1 and Table 2 for one or more checkpoints",
    "live": "webcam/video face detection and expression recognition",
    "export": "export a checkpoint to ONNX (fp32 or int8) or TorchScript",
    "ship": "a finished run's weights as an fp16 checkpoint, and its curves as a PNG",
    "tensorboard": "TensorBoard scalars of runs made before, from their events",
    "serve": "the dashboard in a web browser (textual-serve), for a port forwarded over SSH",
}


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # on subcommands the default is SUPPRESS, so `fer-tui --data X stats` and
    # `fer-tui stats --data X` both work and neither overwrites the other with None
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--data",
        default=default,
        help="FER-2013 folder, .zip, .tar.gz or fer2013.csv (default: "
        "$FER_TUI_DATA, ./data/fer2013, the user cache dir)",
    )
    parser.add_argument(
        "--runs-dir",
        default=default,
        help="where training runs live (default: $FER_TUI_RUNS or ./runs)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-tui",
        description="Terminal dashboard for facial-expression recognition on FER-2013. "
        "With no command, opens the dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"fer-tui {__version__}")
    _add_common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"fer_tui.commands.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p, suppress=True)
        module.add_arguments(p)
    return parser


def _run_tui(args: argparse.Namespace) -> int:
    from fer_tui.tui.app import make_app

    app = make_app(data=args.data, runs_dir=args.runs_dir)
    app.run()
    return app.return_code or 0


#: commands that write files and keep no signal handlers of their own: a SIGTERM unwinds them
#: like Ctrl-C, so each write removes its temp file on the way out
UNWIND_ON_SIGTERM = ("stats", "evaluate", "export", "ship")


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM while a command of UNWIND_ON_SIGTERM runs."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    old_term = None
    try:
        if args.command is None:
            return _run_tui(args)
        if args.command in UNWIND_ON_SIGTERM:
            with contextlib.suppress(ValueError):  # only the main thread sets handlers
                old_term = signal.signal(signal.SIGTERM, _terminate)
        module = importlib.import_module(f"fer_tui.commands.{args.command}")
        return int(module.run(args) or 0)
    except FerError as exc:
        print(f"fer-tui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fer-tui: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("fer-tui: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # `fer-tui stats | head`: the reader went away; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # a full disk, a read-only folder, no permission, too many files
        print(f"fer-tui: error: {os_error_message(exc)}", file=sys.stderr)
        return FerError.exit_code
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


if __name__ == "__main__":
    raise SystemExit(main())
