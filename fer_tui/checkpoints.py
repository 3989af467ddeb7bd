"""Finding checkpoints: the shipped ones in `checkpoints/` and the best.pt of trained runs.

What a checkpoint holds and how it loads is `fer_tui.models`; this module only looks at files
and run dirs (no torch), so the screens can list checkpoints before anything heavy loads.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_tui.runs import BEST, iter_run_states

#: What `fer-tui live` and the Live screen run by default, first found first: the GPU-trained
#: ResNet18 (scratch recipe) when shipped, else the CPU-trained one (cpu recipe).
DEFAULT_CHECKPOINTS = ("resnet18.pt", "resnet18-cpu.pt")


def shipped_checkpoints(checkpoints_dir: str | os.PathLike[str]) -> list[Path]:
    """Every *.pt in the checkpoints dir, by name."""
    return sorted(Path(checkpoints_dir).glob("*.pt"))


def finished_run_checkpoints(runs_dir: str | os.PathLike[str]) -> list[Path]:
    """best.pt of every run whose trainer said `end`, oldest first."""
    out = []
    for state in iter_run_states(runs_dir):
        best = state.run_dir / BEST
        if state.ended == "finished" and best.is_file():
            out.append(best)
    return out


def find_checkpoint(
    checkpoints_dir: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """The first shipped checkpoint of DEFAULT_CHECKPOINTS, else the newest runs/*/best.pt,
    else None."""
    checkpoints_dir = Path(checkpoints_dir)
    for name in DEFAULT_CHECKPOINTS:
        if (checkpoints_dir / name).is_file():
            return checkpoints_dir / name
    if runs_dir is not None and Path(runs_dir).is_dir():
        best = sorted(Path(runs_dir).glob(f"*/{BEST}"), key=lambda p: p.stat().st_mtime)
        if best:
            return best[-1]
    return None
