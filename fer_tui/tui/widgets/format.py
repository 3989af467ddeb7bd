"""Short human formats for accuracies and numbers (shared by the Training widgets); durations are
fer_tui.progress.duration."""

from __future__ import annotations

import math


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
