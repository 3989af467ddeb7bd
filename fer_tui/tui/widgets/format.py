"""Short human formats for durations, accuracies and rates (shared by the Training widgets)."""

from __future__ import annotations

import math


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


def percent(value: float | None) -> str:
    """An accuracy in [0, 1] (or already in percent) as `72.4%`; `-` when unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * 100 if value <= 1.0 else value:.1f}%"


def number(value: float | None, digits: int = 3) -> str:
    """A loss or learning rate in a few significant digits; `-` when unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"
