"""Free space: what a run, a ship or an export will write, checked against the disk first.

The sizes are estimates from the weights of each arch (a fp32 state_dict), not measurements;
they err on the large side. A run writes, per epoch, last.pt (weights, the optimizer's state
and, with an EMA, its weights too), best.pt (weights) and ema.pt (weights), each through a temp
file beside it, so for a moment one file exists twice. Nothing here imports torch.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fer_tui.config import RunConfig
from fer_tui.errors import DiskError

#: bytes of a fp32 state_dict (weights and BatchNorm buffers) with the 7-class head; the
#: ImageNet stem, a little larger than the compact one
STATE_BYTES = {"resnet18": 44_733_884, "resnet34": 85_196_348, "resnet50": 94_277_316}
#: an arch not in STATE_BYTES is counted as the largest one
DEFAULT_STATE_BYTES = max(STATE_BYTES.values())
#: pickling overhead of a checkpoint file (names, metadata) on top of its tensors
OVERHEAD = 1 << 20
#: FER-2013's train split, for the number of step events of a run without data.limit
TRAIN_IMAGES = 28_709
#: one `step` or `epoch` line of events.jsonl, generously
EVENT_BYTES = 400
#: never let a write take the last of the disk: other programs need some too
RESERVE = 1 << 20


def state_bytes(arch: str) -> int:
    """Bytes of the fp32 weights of `arch`."""
    return STATE_BYTES.get(arch, DEFAULT_STATE_BYTES)


def checkpoint_bytes(cfg: RunConfig) -> dict[str, int]:
    """The files a run of `cfg` (one arch) keeps, and about how big each gets."""
    weights = state_bytes(cfg.archs[0]) + OVERHEAD
    t = cfg.train
    slots = 2 if t.optimizer == "adamw" else 1 if t.momentum > 0 else 0
    ema = t.ema_decay > 0
    files = {
        "last.pt": weights * (1 + slots + (1 if ema else 0)),
        "best.pt": weights,
    }
    if ema:
        files["ema.pt"] = weights
    return files


def events_bytes(cfg: RunConfig) -> int:
    """About how big a run's events.jsonl gets."""
    t = cfg.train
    images = min(cfg.data.limit or TRAIN_IMAGES, TRAIN_IMAGES)
    steps = max(1, images // max(1, t.batch_size))
    per_epoch = steps // max(1, t.log_every_steps) + 2
    return t.epochs * per_epoch * EVENT_BYTES + (64 << 10)


def run_bytes_needed(cfg: RunConfig, run_dir: str | os.PathLike[str] | None = None) -> int:
    """The free space a run of `cfg` needs to go to its end: every file it keeps, less what
    `run_dir` already holds of them (a resume), plus room for the largest one twice (its temp
    file beside the old one)."""
    files = checkpoint_bytes(cfg)
    have = 0
    if run_dir is not None:
        for name in (*files, "events.jsonl"):
            try:
                have += min(os.stat(Path(run_dir) / name).st_size, files.get(name, 1 << 62))
            except OSError:
                pass
    return max(0, sum(files.values()) + events_bytes(cfg) - have) + max(files.values())


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes (for this user) on the disk that holds `path`, or its nearest existing
    folder; None when that cannot be told."""
    p = Path(path).absolute()
    for candidate in (p, *p.parents):
        try:
            return shutil.disk_usage(candidate).free
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return None
    return None


def human_bytes(n: float) -> str:
    """1536 -> "1.5 KiB"; whole bytes below 1 KiB."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def check_free_space(folder: str | os.PathLike[str], needed: int, what: str) -> None:
    """Raise DiskError when `folder`'s disk has less than `needed` bytes (and a small reserve)
    free; `what` says what would be written ("the run", "model.pt")."""
    free = free_bytes(folder)
    if free is None or free >= needed + RESERVE:
        return
    raise DiskError(
        f"not enough space for {what} in {Path(folder).absolute()}: it needs about "
        f"{human_bytes(needed + RESERVE)}, the disk has {human_bytes(free)} free: free some "
        f"space (old runs, checkpoints, caches) or write to another disk"
    )


def check_run_space(cfgs: list[RunConfig], runs_dir: str | os.PathLike[str]) -> None:
    """Refuse runs of `cfgs` (one arch each) into `runs_dir` that cannot fit on its disk."""
    needed = sum(run_bytes_needed(cfg) for cfg in cfgs)
    archs = ", ".join(cfg.archs[0] for cfg in cfgs)
    what = f"{'runs' if len(cfgs) > 1 else 'a run'} of {archs}"
    check_free_space(runs_dir, needed, what)
