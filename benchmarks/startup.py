"""Time from launching `fer-tui` to the first paint of the Dataset screen.

    python3 benchmarks/startup.py [--data ../shared/data/fer2013.tar.gz] [--runs 5]

Two measurements, each the median of `--runs` launches, interpreter start included:

- pty: `fer-tui --data X` in a 100x30 pseudo-terminal, timed until the Dataset screen's footer
  ("Train/test") has been written to the terminal. This is what a user waits for.
- headless: the App run headless in a fresh interpreter, timed until Textual's first-paint
  callback, which also reports whether torch was imported by then (it must not be).

Both run with a warm data cache and with an empty one (then the data decodes in the background
while the screen is already up). Baseline for the ratio: `python3 -c "import torch"`, measured
in the same run. Target: first paint under 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fer2013.tar.gz"
MARKER = b"Train/test"  # the Dataset screen's footer

HEADLESS = r"""
import sys, time
from fer_tui.tui.app import make_app
imported = time.time()
app = make_app(data=sys.argv[1], runs_dir=sys.argv[2])
async def first_paint(pilot):
    print("PAINTED", repr(time.time()), repr(imported), repr(time.process_time()),
          "torch" in sys.modules, type(app.screen).__name__, flush=True)
    await pilot.exit(0)
app.run(headless=True, size=(100, 30), auto_pilot=first_paint)
"""


def pty_first_paint(cmd: list[str], env: dict[str, str], timeout: float = 30.0) -> float:
    """Seconds from spawning `cmd` on a 100x30 pty until MARKER appears in its output."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    painted = None
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([master], [], [], 0.02)
            if ready:
                try:
                    seen += os.read(master, 1 << 16)
                except OSError:
                    break
                if MARKER in seen:
                    painted = time.perf_counter() - start
                    break
            if proc.poll() is not None:
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    if painted is None:
        tail = seen[-400:].decode(errors="replace")
        raise RuntimeError(f"no first paint within {timeout}s; output ended: {tail!r}")
    return painted


def headless_first_paint(
    data: str, runs: str, env: dict[str, str]
) -> tuple[float, float, float, bool]:
    """Seconds to first paint, to the App imported, CPU seconds by the paint, torch imported."""
    start = time.time()  # wall clock: the child reports its own time.time() at the paint
    out = subprocess.run(
        [sys.executable, "-c", HEADLESS, data, runs],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PAINTED")), None)
    if line is None:
        raise RuntimeError(f"headless run failed: {out.stderr[-800:]}")
    _, painted, imported, cpu, torch_loaded, screen = line.split()
    assert screen == "DatasetScreen", screen
    return float(painted) - start, float(imported) - start, float(cpu), torch_loaded == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n = args.runs
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; median of {n} launches",
        flush=True,
    )

    torch_import = statistics.median(
        _wall([sys.executable, "-c", "import torch"]) for _ in range(n)
    )
    print(f"baseline: python3 -c 'import torch'             {torch_import:6.3f} s", flush=True)
    torch_cpu = statistics.median(
        float(
            subprocess.run(
                [sys.executable, "-c", "import time, torch; print(time.process_time())"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for _ in range(n)
    )
    print(f"          import torch, CPU time                 {torch_cpu:6.3f} s", flush=True)
    bare = statistics.median(_wall([sys.executable, "-c", "pass"]) for _ in range(n))
    print(f"          python3 -c pass (interpreter only)     {bare:6.3f} s", flush=True)

    fer_tui = [sys.executable, "-m", "fer_tui", "--data", args.data]
    with tempfile.TemporaryDirectory(prefix="fer-bench-") as tmp:
        runs_dir = str(Path(tmp) / "runs")
        warm = dict(
            os.environ,
            FER_TUI_CACHE=str(Path(tmp) / "warm"),
            TERM="xterm-256color",
            COLORTERM="truecolor",
            FER_TUI_RUNS=runs_dir,
        )
        # fill the warm cache once (the first decode is data_load.py's business)
        subprocess.run(
            [sys.executable, "-m", "fer_tui", "stats", "--data", args.data],
            env=warm,
            capture_output=True,
            check=False,
        )
        results = {}
        for cache in ("warm", "cold"):
            times, headless, imports, cpus, torch_seen = [], [], [], [], False
            for i in range(n):
                env = dict(warm)
                if cache == "cold":
                    env["FER_TUI_CACHE"] = str(Path(tmp) / f"cold-{i}")
                times.append(pty_first_paint([*fer_tui, "--runs-dir", runs_dir], env))
                if cache == "cold":
                    env["FER_TUI_CACHE"] = str(Path(tmp) / f"cold-h{i}")
                seconds, imported, cpu, torch_loaded = headless_first_paint(
                    args.data, runs_dir, env
                )
                headless.append(seconds)
                imports.append(imported)
                cpus.append(cpu)
                torch_seen |= torch_loaded
            results[cache] = statistics.median(times)
            print(
                f"fer-tui first paint, {cache} cache, pty      {results[cache]:6.3f} s   "
                f"(min {min(times):.3f}, max {max(times):.3f})",
                flush=True,
            )
            print(
                f"fer-tui first paint, {cache} cache, headless {statistics.median(headless):6.3f}"
                f" s   (App imported at {statistics.median(imports):.3f} s; torch imported by "
                f"the paint: {torch_seen})",
                flush=True,
            )
            results[f"{cache}_cpu"] = statistics.median(cpus)
            print(
                f"fer-tui first paint, {cache} cache, CPU time {results[f'{cache}_cpu']:6.3f} s"
                f"   (the process's own CPU seconds: what the wait is on an idle machine)",
                flush=True,
            )
    print(f"ratio first paint (warm, pty) / import torch   {results['warm'] / torch_import:6.3f}")
    print(f"ratio first paint CPU / import torch CPU       {results['warm_cpu'] / torch_cpu:6.3f}")
    print(
        "target < 1 s (wall, pty):",
        "met"
        if max(results["warm"], results["cold"]) < 1.0
        else f"NOT met at load average {os.getloadavg()[0]:.1f}",
        "; CPU time:",
        "met" if max(results["warm_cpu"], results["cold_cpu"]) < 1.0 else "NOT met",
    )
    return 0


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
