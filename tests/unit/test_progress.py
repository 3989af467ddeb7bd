"""fer_tui.progress: the CLI's progress line, the count and time left a user reads."""

from __future__ import annotations

import io

from fer_tui.progress import ProgressBar, duration


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert [duration(s) for s in (None, float("nan"), 7.4, 245, 7380, -3)] == [
        "-",
        "-",
        "7s",
        "4m05s",
        "2h03m",
        "0s",
    ]


def test_a_resumed_count_paces_the_eta_by_what_this_bar_saw_done() -> None:
    """An epoch resumed at step 100 of 200 that did 10 steps in 20 s has 90 steps, 180 s,
    left: not the 16 s that 110 steps in 20 s would promise."""
    bar = ProgressBar("resnet50 epoch 3/10", 200, stream=io.StringIO(), start=100)
    line = bar.line(110, now=bar.t0 + 20.0)
    assert "110/200" in line and "ETA  3m00s" in line and " 20s " in line
    fresh = ProgressBar("resnet50 epoch 1/10", 200, stream=io.StringIO())
    assert "ETA  4h57m" in fresh.line(2, now=fresh.t0 + 180.0)  # 198 steps at 90 s each
    assert "ETA      ?" in fresh.line(0, now=fresh.t0 + 5.0)
    assert "ETA" not in fresh.line(200, now=fresh.t0 + 600.0)  # done: the time it took, no ETA
