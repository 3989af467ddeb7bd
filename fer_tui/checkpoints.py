"""Finding checkpoints: the shipped ones in `checkpoints/` and the final weights of trained runs
(what `fer-tui ship` would ship: ema.pt or last.pt, never the best.pt that a run validated on
the test split chose by it).

What a checkpoint holds and how it loads is `fer_tui.models`; this module only looks at files
and run dirs (no torch), so the screens can list checkpoints before anything heavy loads.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_tui.runs import iter_run_states
from fer_tui.shipping import final_weights

#: What `fer-tui live` and the Live screen run by default, first found first. The live-size
#: models lead: resnet18-distilled-cpu.pt (the small stem, distilled from the CPU models:
#: above resnet18-cpu.pt on the holdout and the test split at the same cost) and
#: resnet18-cpu.pt keep 30 FPS on two CPU cores with room to spare, while resnet18.pt (the
#: "cifar" stem) costs about 1.8 GFLOP per face and sits at the edge of 30 FPS there. Pass
#: --checkpoint for another.
DEFAULT_CHECKPOINTS = ("resnet18-distilled-cpu.pt", "resnet18-cpu.pt", "resnet18.pt")


def shipped_checkpoints(checkpoints_dir: str | os.PathLike[str]) -> list[Path]:
    """Every *.pt in the checkpoints dir, by name."""
    return sorted(Path(checkpoints_dir).glob("*.pt"))


#: The name ending of the shipped models trained for two CPU cores (the compact stem).
CPU_SUFFIX = "-cpu.pt"


def default_picks(shipped: list[Path], gpu: bool) -> list[Path]:
    """The shipped checkpoints to evaluate side by side by default: all of them where a GPU is
    seen; without one, the CPU-sized ones (`*-cpu.pt`) when there are any. On two CPU cores
    the four of those take about 5.5 minutes on the test split, while the GPU recipe's models
    (4x the work per face) take 3.4 minutes for ResNet18 alone (docs/benchmarks.md)."""
    if gpu:
        return list(shipped)
    return [p for p in shipped if p.name.endswith(CPU_SUFFIX)] or list(shipped)


def finished_run_checkpoints(runs_dir: str | os.PathLike[str]) -> list[Path]:
    """The final weights (`shipping.final_weights`) of every run whose trainer said `end`,
    oldest first."""
    out = []
    for state in iter_run_states(runs_dir):
        weights = final_weights(state.run_dir, state) if state.ended == "finished" else None
        if weights is not None:
            out.append(weights)
    return out


def find_checkpoint(
    checkpoints_dir: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """The first shipped checkpoint of DEFAULT_CHECKPOINTS, else the final weights of the newest
    finished run, else None."""
    checkpoints_dir = Path(checkpoints_dir)
    for name in DEFAULT_CHECKPOINTS:
        if (checkpoints_dir / name).is_file():
            return checkpoints_dir / name
    if runs_dir is not None:
        finished = finished_run_checkpoints(runs_dir)
        if finished:
            return finished[-1]
    return None
