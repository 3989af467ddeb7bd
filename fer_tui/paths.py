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
    """The folder holding `checkpoints/` and `configs/` in a checkout (or an editable install)."""
    return Path(__file__).resolve().parent.parent


#: Where a built package (wheel, `pip install .`, pipx) keeps the repository's `configs/` and
#: `checkpoints/`: setup.py maps these sub-packages of fer_tui onto those two folders.
PACKAGED = {"configs": "shipped_configs", "checkpoints": "shipped_checkpoints"}


def packaged_dir(folder: str) -> Path | None:
    """The installed package's copy of the repository's `folder` ("configs" or "checkpoints"),
    or None when fer_tui runs from a checkout or an editable install (which have none)."""
    from importlib.resources import files  # deferred: only needed when a folder is looked up

    found = files("fer_tui").joinpath(PACKAGED[folder])
    # a package on disk gives a pathlib.Path; anything else (a zip import) is not supported
    return found if isinstance(found, Path) and found.is_dir() else None


def _local_or_shipped(folder: str) -> Path:
    local = Path(folder)
    if local.is_dir():
        return local
    return packaged_dir(folder) or project_root() / folder


def checkpoints_dir() -> Path:
    """Shipped checkpoints: `./checkpoints` when it exists, else the installed package's, else
    the checkout's."""
    return _local_or_shipped("checkpoints")


def configs_dir() -> Path:
    """Run configs: `./configs` when it exists, else the installed package's, else the
    checkout's."""
    return _local_or_shipped("configs")


def ship_dir() -> Path:
    """Where `fer-tui ship` writes by default: checkpoints_dir(), except an installed package's
    own folder, which an upgrade would wipe (and may not be writable): `./checkpoints` then."""
    target = checkpoints_dir()
    return Path("checkpoints") if target == packaged_dir("checkpoints") else target


def shipped_checkpoint(path: str | os.PathLike[str]) -> Path:
    """`path` as given when it exists, is absolute or lies outside `checkpoints/`; else a relative
    `checkpoints/NAME.pt` that is not here is the shipped NAME.pt (the installed package's copy,
    or the checkout's), so recipes can name shipped weights from any directory."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists() or given.parts[:1] != ("checkpoints",):
        return given
    return (packaged_dir("checkpoints") or project_root() / "checkpoints").joinpath(
        *given.parts[1:]
    )
