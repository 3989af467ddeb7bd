"""The CLI's one progress bar: label, bar, percent, count, rate, elapsed and ETA on stderr."""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import TextIO


def duration(seconds: float | None) -> str:
    """`12s`, `4m05s`, `2h03m`; `-` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class ProgressBar:
    """One line, redrawn at most 10 times a second on a terminal.

    Where the stream is not a terminal (a log file), it writes a plain line every `log_every`
    seconds, or nothing when `log_every` is None. `total=None` (or 0) means an unknown total:
    the line shows the count and rate without a bar or ETA. `start` is the count already done
    before this bar began (a resumed epoch): the rate and ETA count only what it saw done. Safe
    to update from any thread; callable as `bar(done, total)`, the shape of the data layer's
    `progress` callback.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        unit: str = "",
        width: int = 30,
        log_every: float | None = None,
        count: bool = True,
        enabled: bool = True,
        start: int = 0,
    ) -> None:
        self.label, self.total, self.unit, self.width = label, total, unit, width
        self.start = start
        self.count = count  # off where done/total are bytes, not things a user counts
        self.stream = stream or sys.stderr
        # disabled (e.g. DDP ranks other than 0): no tty, no log lines, nothing written
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every = log_every if enabled else None
        self.t0 = time.monotonic()
        self.done = start
        self._shown = -math.inf
        self._drawn = False
        self._lock = threading.Lock()

    def update(self, done: int, total: int | None = None, info: str = "") -> None:
        if total is not None:
            self.total = total
        self.done = done
        interval = 0.1 if self.tty else self.log_every
        if interval is None:
            return
        finished = bool(self.total) and done >= self.total
        now = time.monotonic()
        with self._lock:
            if now - self._shown < interval and not finished:
                return
            if finished and not self.tty:
                return  # a log gets the caller's own summary line instead
            self._shown = now
            text = self.line(done, info, now)
            self.stream.write(f"\r{text}\x1b[K" if self.tty else f"{text}\n")
            self.stream.flush()
            self._drawn = True

    __call__ = update

    def line(self, done: int, info: str = "", now: float | None = None) -> str:
        elapsed = (now if now is not None else time.monotonic()) - self.t0
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(max(done / self.total, 0.0), 1.0)
            filled = int(frac * self.width)
            parts = [f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {frac:4.0%}"]
            if self.count:
                parts.append(f"{done}/{self.total}")
        else:
            parts = [f"{self.label} {done}"]
        if self.unit:
            parts.append(f"{rate:6.1f} {self.unit}")
        parts.append(f"{duration(elapsed):>6}")
        if self.total and done < self.total:
            eta = (self.total - done) / rate if rate > 0 else math.nan
            parts.append(f"ETA {duration(eta) if math.isfinite(eta) else '?':>6}")
        if info:
            parts.append(info)
        return " ".join(parts)

    def close(self, *, keep: bool = True, info: str = "") -> None:
        """On a terminal, leave the last line in place (`keep`) or erase it."""
        if not (self.tty and self._drawn):
            return
        if keep:
            self.stream.write(f"\r{self.line(self.done, info)}\x1b[K\n")
        else:
            self.stream.write("\r\x1b[2K")
        self.stream.flush()
