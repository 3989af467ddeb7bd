"""`fer-tui serve`: the dashboard in a web browser, through textual-serve.

Each browser tab that opens the page starts its own `fer-tui` (the same dashboard, with the same
--data and --runs-dir) and talks to it over a websocket. textual-serve has no authentication:
whoever reaches the port drives the dashboard (starts and stops training, writes files), so it
binds to 127.0.0.1 by default; forward the port over SSH (`ssh -L 8000:localhost:8000 HOST`).
"""

from __future__ import annotations

import argparse
import sys

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: only this machine, and whoever "
        "forwards the port over SSH); anything else lets the network in, with no password",
    )
    parser.add_argument("--port", type=int, default=8000, help="the port (default 8000)")
    parser.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="the address the browser opens, when it differs from http://HOST:PORT (e.g. "
        "http://localhost:9000 for `ssh -L 9000:localhost:8000`): the page connects back to it",
    )


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def app_command(args: argparse.Namespace) -> str:
    """The shell command each browser session runs: this Python, the dashboard, same options."""
    import shlex

    argv = [sys.executable, "-m", "fer_tui"]
    # each session starts in this folder, so relative paths mean the same to it
    for flag, key in (("--data", "data"), ("--runs-dir", "runs_dir")):
        value = getattr(args, key, None)
        if value:
            argv += [flag, str(value)]
    return shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    from fer_tui.errors import FerError

    try:
        from textual_serve.server import Server
    except ImportError:
        raise FerError("fer-tui serve needs textual-serve: pip install 'fer-tui[serve]'") from None
    if not 0 < args.port < 65536:
        raise FerError(f"--port must be 1-65535 (got {args.port})")
    if not is_loopback(args.host):
        print(
            f"fer-tui: warning: listening on {args.host}, not on 127.0.0.1: textual-serve has no "
            f"authentication, so anyone who can reach port {args.port} of this machine drives "
            f"the dashboard (starts and stops training, writes files). Prefer the default and "
            f"`ssh -L {args.port}:localhost:{args.port} THIS_HOST`.",
            file=sys.stderr,
        )
    public_url = args.public_url
    if public_url is None:
        shown = args.host if ":" not in args.host else f"[{args.host}]"
        public_url = f"http://{shown}:{args.port}"
    server = Server(
        app_command(args), host=args.host, port=args.port, title="fer-tui", public_url=public_url
    )
    try:
        server.serve()
    except OSError as exc:
        raise FerError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
