"""Several archs from one config: every run dir created up front, one child trainer per arch.

The run dirs exist (with their resolved config.toml) before the first child starts, so a
watcher shows the later ones as pending. On a GPU the children train side by side (sharing it
by time-slicing); on a CPU one after another.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from fer_tui import launch
from fer_tui.config import RunConfig, to_toml
from fer_tui.files import atomic_write_text
from fer_tui.models import resolve_device
from fer_tui.runs import CONFIG, new_run_dir, summarize


def train_many(cfgs: list[RunConfig], runs_dir_arg: str | None, *, as_json: bool = False) -> int:
    """Create every run dir now (watchers see them as pending), then train each in a child."""
    from fer_tui.paths import runs_dir

    root = runs_dir(runs_dir_arg)
    dirs = []
    for cfg in cfgs:
        d = new_run_dir(root, cfg.archs[0])
        atomic_write_text(d / CONFIG, to_toml(cfg))
        dirs.append(d)
    # on one GPU the children start together: the GPU time-slices between processes (no
    # concurrency without MPS), so the total is about the sum of the three alone (372 s vs 384 s
    # on an H200), but one command trains all three and each fills the others' idle gaps;
    # two CPU cores gain nothing from sharing, so there they go one after another
    together = resolve_device(cfgs[0].train.device).type == "cuda"
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    codes: dict[Path, int | None] = {d: None for d in dirs}
    try:
        for d in dirs:
            if stopping:
                break
            argv = [*launch.TRAINER, "--run-dir", str(d), "--config", str(d / CONFIG)]
            if together:
                with open(d / "stdout.log", "ab") as log:
                    procs.append(
                        subprocess.Popen(
                            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                        )
                    )
                print(
                    f"training {d.name} (pid {procs[-1].pid}, log {d / 'stdout.log'})",
                    file=sys.stderr,
                )
            else:
                print(f"training {d.name}", file=sys.stderr)
                procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))
                codes[d] = _wait(procs[-1])
        for d, p in zip(dirs, procs, strict=False):
            codes[d] = _wait(p)
            if together:
                print(f"{d.name}: exit {codes[d]}", file=sys.stderr)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    summaries = [summarize(d) for d in dirs]
    if as_json:
        print(json.dumps({"runs": summaries}, indent=2))
    # a child still importing when the stop came dies of the signal itself: stopped, not failed;
    # so is one the user stopped on its own (the Training screen's `x`), which says so in its events
    stopped_early = {-signal.SIGTERM, -signal.SIGINT} if stopping else set()
    failed = [
        d.name
        for (d, c), summary in zip(codes.items(), summaries, strict=True)
        if c not in (None, 0, *stopped_early) and summary.get("status") != "stopped"
    ]
    if failed:
        print(
            f"fer-tui: error: training failed for {', '.join(failed)} "
            f"(see their events.jsonl / stdout.log)",
            file=sys.stderr,
        )
        return 1
    return 0


def _wait(p: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return p.wait()
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for safety
            continue
