"""Where fer-tui looks for data, keeps its cache, writes runs and finds checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the dataset (a folder, .zip, .tar.gz or fer2013.csv).
DATA_ENV = "FER_TUI_DATA"
#: Environment variable overriding the cache directory (tests point it at a tmp dir).
CACHE_ENV = "FER_TUI_CACHE"
#: Environment variable overriding the runs directory.
RUNS_ENV = "FER_TUI_RUNS"


def cache_dir() -> Path:
    """The user cache dir (`~/.cache/fer-tui` on Linux), or `$FER_TUI_CACHE`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    try:
        from platformdirs import user_cache_dir  # deferred: only needed when a cache is touched
    except ImportError:  # e.g. a GPU box's own Python image, which runs the trainer as is
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "fer-tui"
    return Path(user_cache_dir("fer-tui"))


def data_candidates() -> list[Path]:
    """Places searched, in order, when neither --data nor $FER_TUI_DATA is given."""
    return [Path("data/fer2013"), cache_dir() / "fer2013"]


def runs_dir(arg: str | os.PathLike[str] | None = None) -> Path:
    """The runs directory: the argument, `$FER_TUI_RUNS`, or `./runs`."""
    if arg:
        return Path(arg)
    return Path(os.environ.get(RUNS_ENV) or "runs")


def project_root() -> Path:
    """The folder holding `checkpoints/` and `configs/` (the repo root for an editable install)."""
    return Path(__file__).resolve().parent.parent


def checkpoints_dir() -> Path:
    """Shipped checkpoints: `./checkpoints` when it exists, else the project's."""
    local = Path("checkpoints")
    return local if local.is_dir() else project_root() / "checkpoints"


def configs_dir() -> Path:
    """Run configs: `./configs` when it exists, else the project's."""
    local = Path("configs")
    return local if local.is_dir() else project_root() / "configs"
