"""A real terminal: start a tiny CPU run from the keyboard, quit the TUI, come back to it.

This is what a user does over SSH: start training, detach (here: the TUI is killed with its
tmux session), re-launch fer-tui later and find the run still going or finished, its curve
complete. Uses the real trainer (configs/smoke.toml, ResNet18, 2 epochs, 64 images).
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fer_tui.runs import list_runs, read_lock, read_run, running_pid
from tests.helpers import make_folder_dataset, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _trainer_is_stub() -> bool:
    import fer_tui.commands.train as train

    return "not implemented" in inspect.getsource(train)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(_trainer_is_stub(), reason="`fer-tui train` is still a stub"),
    pytest.mark.skipif(
        not (ROOT / "configs" / "smoke.toml").is_file(), reason="configs/smoke.toml is missing"
    ),
]


class Tmux:
    """One tmux server on its own socket, so the test never touches the user's sessions."""

    def __init__(self) -> None:
        self.socket = f"fer-e2e-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        # COLUMNS/LINES (pytest's, 80x24) would pin the TUI's size inside the pane
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20, env=env
        )
        return out.stdout

    def launch(self, command: str, cwd: Path) -> None:
        self(
            "new-session",
            "-d",
            "-s",
            "fer",
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            str(cwd),
            f"env -u COLUMNS -u LINES {command}",
        )

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "fer")

    def keys(self, *keys: str, pause: float = 0.5) -> None:
        # one key at a time: a burst can land while a Select overlay is still closing
        for key in keys:
            self("send-keys", "-t", "fer", key)
            time.sleep(pause)

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        """The screen's text once `predicate(text)` holds; on a timeout, the error shows it."""
        shown = ""

        def holds() -> bool:
            nonlocal shown
            shown = self.screen()
            return predicate(shown)

        try:
            wait_until(holds, timeout=timeout, interval=0.3, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen was:\n{shown}") from None
        return shown

    def kill(self) -> None:
        self("kill-server")


@pytest.fixture
def tmux():
    t = Tmux()
    yield t
    t.kill()


def run_row(screen: str, run_name: str) -> str:
    return next((line for line in screen.splitlines() if run_name in line), "")


def test_start_detach_and_come_back(tmp_path: Path, tmux: Tmux) -> None:
    """A run started from the keyboard survives the TUI dying and is found again, complete."""
    data = make_folder_dataset(tmp_path / "data", per_class={"train": 10, "test": 4})
    runs = tmp_path / "runs"
    bindir = Path(sys.executable).parent
    fer_tui = shutil.which("fer-tui", path=str(bindir)) or shutil.which("fer-tui")
    assert fer_tui, "the fer-tui script is not installed"
    command = f"{fer_tui} --data {data} --runs-dir {runs}"

    tmux.launch(command, cwd=ROOT)
    tmux.wait_for(lambda s: "Dataset" in s, 30, "the TUI to start")
    tmux.keys("2")
    tmux.wait_for(lambda s: "No runs in" in s, 15, "the empty Training screen")
    tmux.keys("s")
    tmux.wait_for(lambda s: "Start training" in s, 10, "the start dialog")
    # config: step down the list (open, down, pick) until smoke.toml is the one shown
    for _ in range(10):
        if "smoke.toml" in tmux.screen():
            break
        tmux.keys("Enter", "Down", "Enter")
    tmux.wait_for(lambda s: "smoke.toml" in s, 5, "smoke.toml chosen")
    tmux.keys("Tab", "Enter", "Down", "Enter")  # archs: resnet18
    tmux.wait_for(lambda s: "resnet18" in s, 5, "resnet18 chosen")
    # device as configured (cpu); 8 epochs, so that the run is still going when the TUI dies
    # and its "running" row is seen even on a loaded machine; limit 64
    tmux.keys("Tab", "Tab", "8", "Tab", "6", "4")
    screen = tmux.wait_for(lambda s: "64" in s, 5, "the limit typed")
    assert "smoke.toml" in screen and "all three" not in screen
    tmux.keys("Enter")

    def listed_as_running(screen: str) -> bool:
        found = list_runs(runs)
        return bool(found) and run_row(screen, found[0].name).lstrip().startswith("running")

    tmux.wait_for(listed_as_running, 60, "the run to be listed as running")
    (run_dir,) = list_runs(runs)
    screen = tmux.wait_for(
        lambda s: re.search(r"\b[1-8]/8\b", run_row(s, run_dir.name)) is not None,
        90,
        "the epoch counter to advance",
    )
    pid = read_lock(run_dir)

    tmux.kill()  # the TUI dies, as with a dropped SSH connection
    time.sleep(0.5)
    status = read_run(run_dir).status()
    assert status in ("running", "finished"), status
    if status == "running":
        assert pid is not None and running_pid(run_dir) == pid, "the trainer died with the TUI"

    tmux.launch(command, cwd=ROOT)
    tmux.wait_for(lambda s: "Dataset" in s, 30, "the TUI to start again")
    tmux.keys("2")
    try:
        screen = tmux.wait_for(
            lambda s: "finished" in run_row(s, run_dir.name), 90, "the run to finish"
        )
        assert "8/8" in run_row(screen, run_dir.name)
        assert "epoch 8/8" in screen  # its panel
    finally:
        pid = running_pid(run_dir)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)  # only the trainer this test started
    state = read_run(run_dir)
    assert [h["epoch"] for h in state.history] == list(range(1, 9))  # the curve is complete
    assert all(h.get("val_acc") is not None for h in state.history)
