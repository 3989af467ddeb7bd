"""What the screens need to know, given once to the App (and by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fer_tui import paths


@dataclass(frozen=True)
class Settings:
    data: str | None = None
    """--data / $FER_TUI_DATA; None = the default places."""
    runs_dir: Path = field(default_factory=paths.runs_dir)
    """Where runs are started and found."""
    checkpoints_dir: Path = field(default_factory=paths.checkpoints_dir)
    """Shipped checkpoints."""
    configs_dir: Path = field(default_factory=paths.configs_dir)
    """TOML run configs offered on the Training screen."""
    poll_interval: float = 0.5
    """Seconds between polls of run event files."""
    rescan_interval: float = 3.0
    """Seconds between scans of the runs dir for new runs."""
