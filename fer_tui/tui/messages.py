"""Messages of the Training screen, named for what has already happened."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from fer_tui.run_tracker import RunView


class RunStateChanged(Message):
    """A run has new events (or its trainer died): here is its whole latest view."""

    def __init__(self, view: RunView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        # each message carries the full view, so a queued older one for the same run is stale
        return isinstance(message, RunStateChanged) and message.view.run_id == self.view.run_id


class RunRemoved(Message):
    """A run dir has disappeared from the runs dir."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class TrainerExited(Message):
    """A trainer process this TUI launched has exited (posted from its reaper thread)."""

    def __init__(self, pid: int, returncode: int, log_path: Path, log_tail: str) -> None:
        super().__init__()
        self.pid = pid
        self.returncode = returncode
        self.log_path = log_path
        self.log_tail = log_tail
