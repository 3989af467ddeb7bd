"""How long FER-2013 takes to load: first decode (tar.gz, folder) vs. the decoded cache.

    python3 benchmarks/data_load.py [--tar ../shared/data/fer2013.tar.gz] [--folder /tmp/fer]

Prints one line per measurement and the ratios cached/decode. The cache goes to a temporary
folder (FER_TUI_CACHE), so the user's cache is neither used nor touched. Target: a cached load
of all 35,887 images in well under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAR = ROOT.parent / "shared" / "data" / "fer2013.tar.gz"


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Median wall seconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def cpu_timed(fn, repeat: int = 5) -> float:
    """Median CPU seconds of this process (all threads) per call: what other processes on a
    busy machine do not inflate, so comparable across runs."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def fresh_process_load(source: Path) -> float:
    """Wall seconds of a new interpreter that imports fer_tui and loads from the cache."""
    code = (
        "from fer_tui.data.load import load_dataset; import sys; "
        "d = load_dataset(sys.argv[1]); assert d.from_cache"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(source)], check=True, env=os.environ)
    return time.perf_counter() - t


def bench(label: str, source: Path, workers: bool) -> dict[str, float]:
    from fer_tui.data.load import load_dataset
    from fer_tui.data.stats import dataset_stats

    out: dict[str, float] = {}
    if workers:
        out["decode_1_thread"], _ = timed(lambda: load_dataset(source, cache=False, workers=1))
        print(f"{label:7s} decode, 1 thread          {out['decode_1_thread']:7.2f} s", flush=True)
    out["decode"], data = timed(lambda: load_dataset(source))  # writes the cache
    n = sum(len(data.splits[s]) for s in ("train", "test"))
    print(
        f"{label:7s} first decode + cache write {out['decode']:7.2f} s  ({n:,} images, "
        f"{n / out['decode']:,.0f} img/s)",
        flush=True,
    )
    out["cached"], data = timed(lambda: load_dataset(source), repeat=5)
    assert data.from_cache
    print(f"{label:7s} cached load (median of 5)  {out['cached']:7.3f} s", flush=True)
    out["cached_cpu"] = cpu_timed(lambda: load_dataset(source))
    print(f"{label:7s} cached load, CPU time      {out['cached_cpu']:7.3f} s", flush=True)
    out["stats"], _ = timed(lambda: dataset_stats(data), repeat=5)
    print(f"{label:7s} dataset_stats (cached)     {out['stats']:7.3f} s", flush=True)
    out["process"] = statistics.median(fresh_process_load(source) for _ in range(3))
    print(
        f"{label:7s} new process, cached load   {out['process']:7.3f} s  (interpreter, "
        f"imports, load)",
        flush=True,
    )
    print(
        f"{label:7s} ratio cached / decode       {out['cached'] / out['decode']:7.3f}  "
        f"({out['decode'] / out['cached']:.0f}x faster)",
        flush=True,
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tar", type=Path, default=DEFAULT_TAR)
    parser.add_argument(
        "--folder",
        type=Path,
        default=Path("/tmp/fer"),
        help="the tar.gz unpacked (skipped when absent)",
    )
    parser.add_argument(
        "--no-single-thread", action="store_true", help="skip the 1-thread decode baseline"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fer-bench-cache-") as cache:
        os.environ["FER_TUI_CACHE"] = cache
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
        ran = False
        for label, source in (("tar.gz", args.tar), ("folder", args.folder)):
            if source.exists():
                bench(label, source, workers=not args.no_single_thread)
                ran = True
            else:
                print(f"{label}: {source} not found, skipped")
        return 0 if ran else 1


if __name__ == "__main__":
    raise SystemExit(main())
