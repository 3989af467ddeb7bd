"""fer_tui.launch: detached trainers started, stopped and resumed, and refused with a reason."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from fer_tui import launch
from fer_tui.errors import ConfigError, DataError, RunError
from fer_tui.runs import list_runs, read_lock, read_run, running_pid
from tests.helpers import wait_until

FAKE = Path(__file__).resolve().parents[1] / "data" / "runs" / "fake_trainer.py"
CONFIG = 'name = "smoke"\narchs = ["resnet18"]\n[train]\nepochs = 3\ndevice = "{device}"\n'


@pytest.fixture
def fake_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Launch the fake trainer instead of the real one; 4 steps of 50 ms per epoch."""
    monkeypatch.setattr(launch, "TRAINER", [sys.executable, str(FAKE)])
    monkeypatch.setenv("FAKE_STEP_S", "0.05")


def write_config(tmp_path: Path, device: str = "cpu", text: str | None = None) -> Path:
    path = tmp_path / "smoke.toml"
    path.write_text(text if text is not None else CONFIG.format(device=device))
    return path


def test_bad_config_is_refused_before_spawning(tmp_path: Path, fake_trainer: None) -> None:
    """A config error names the key and no trainer (nor its log) is started."""
    config = write_config(tmp_path, text="[train]\nepochz = 3\n")
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError, match="epochz.*did you mean 'epochs'"):
        launch.start_training(config, "resnet18", runs_dir=runs, device="cpu")
    assert not runs.exists()


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist says so instead of spawning a doomed trainer."""
    with pytest.raises(ConfigError, match="does not exist"):
        launch.start_training(tmp_path / "nope.toml", "all", runs_dir=tmp_path, device="cpu")


def test_unwritable_runs_dir_is_a_run_error(tmp_path: Path, fake_trainer: None) -> None:
    """A runs dir that cannot be created (a file is in the way) is named in the error."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match="runs directory .*file/runs"):
        launch.start_training(write_config(tmp_path), "resnet18", runs_dir=blocker / "runs")


def test_cuda_without_gpu_says_use_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda asked for (by flag, or by the config when no device is given) points to the CPU."""
    monkeypatch.setattr(launch, "gpu_available", lambda: False)
    with pytest.raises(launch.NoGpuError, match="no GPU found.*device cpu"):
        launch.start_training(write_config(tmp_path), "resnet18", runs_dir=tmp_path, device="cuda")
    config = write_config(tmp_path, device="cuda")
    with pytest.raises(launch.NoGpuError, match="config asks for cuda"):
        launch.start_training(config, "resnet18", runs_dir=tmp_path)
    monkeypatch.setattr(launch, "_spawn", lambda argv, log, on_exit: 7)
    # an explicit auto (or cpu) overrides the config's cuda: that is the way out
    assert launch.start_training(config, "resnet18", runs_dir=tmp_path, device="auto") == 7
    assert launch.start_training(config, "resnet18", runs_dir=tmp_path, device="cpu") == 7


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"limit": -5}, "limit must be a positive"),
        ({"device": "tpu"}, "device 'tpu' is not one of"),
    ],
)
def test_bad_numbers_are_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    """Epochs, limit and device are checked before anything starts."""
    with pytest.raises(ConfigError, match=match):
        launch.start_training(write_config(tmp_path), "resnet18", runs_dir=tmp_path, **kwargs)


def test_unknown_arch_and_missing_data(tmp_path: Path) -> None:
    """An arch torchvision does not have, or a --data path that is not there, is refused."""
    config = write_config(tmp_path)
    with pytest.raises(ConfigError, match="unknown arch 'resnet101'"):
        launch.start_training(config, "resnet101", runs_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        launch.start_training(config, "resnet18", runs_dir=tmp_path, data=tmp_path / "nodata")


def test_start_spawns_a_detached_trainer(tmp_path: Path, fake_trainer: None) -> None:
    """The trainer runs in its own session, writes its run dir, and is reaped when done."""
    runs = tmp_path / "runs"
    exited = threading.Event()
    codes: list[int] = []

    def on_exit(pid: int, returncode: int, log: Path) -> None:
        codes.append(returncode)
        exited.set()

    pid = launch.start_training(
        write_config(tmp_path),
        "resnet18",
        runs_dir=runs,
        device="cpu",
        epochs=2,
        limit=10,
        on_exit=on_exit,
    )
    try:
        assert os.getsid(pid) != os.getsid(0)  # survives the TUI's terminal going away
    except ProcessLookupError:
        pass  # already finished: its session cannot be read any more
    assert exited.wait(20)
    assert codes == [0]
    (run_dir,) = list_runs(runs)
    state = read_run(run_dir)
    assert state.status() == "finished"
    assert [h["epoch"] for h in state.history] == [1, 2]
    assert read_lock(run_dir) is None
    assert "--limit 10" in next(runs.glob("launch-*.log")).read_text()


def test_early_trainer_failure_is_reported(tmp_path: Path, monkeypatch) -> None:
    """A trainer that dies before writing a run reports its exit code and last words."""
    code = "import sys; print('fer-tui: error: no dataset found'); sys.exit(2)"
    monkeypatch.setattr(launch, "TRAINER", [sys.executable, "-c", code, "--"])
    got: list[tuple[int, str]] = []
    done = threading.Event()

    def on_exit(pid: int, returncode: int, log: Path) -> None:
        got.append((returncode, launch.log_tail(log)))
        done.set()

    launch.start_training(write_config(tmp_path), "all", runs_dir=tmp_path, on_exit=on_exit)
    assert done.wait(20)
    assert got == [(2, "fer-tui: error: no dataset found")]


@pytest.mark.slow
def test_stop_then_resume_continues_the_curve(tmp_path: Path, fake_trainer, monkeypatch) -> None:
    """SIGTERM stops a run with a `stopped` event; resume finishes it without repeating epochs."""
    monkeypatch.setenv("FAKE_STEP_S", "0.2")  # 0.8 s an epoch: seconds to stop it in, under load
    runs = tmp_path / "runs"
    launch.start_training(write_config(tmp_path), "resnet18", runs_dir=runs, epochs=6)
    wait_until(lambda: list_runs(runs) and read_run(list_runs(runs)[0]).epoch >= 1, timeout=15)
    (run_dir,) = list_runs(runs)
    wait_until(lambda: running_pid(run_dir) is not None, timeout=15)

    with pytest.raises(RunError, match="already running .*second trainer"):
        launch.resume_run(run_dir)
    pid = launch.stop_run(run_dir)
    assert pid > 0
    wait_until(lambda: read_run(run_dir).status() == "stopped", timeout=15)
    with pytest.raises(RunError, match="already stopped|not running"):
        launch.stop_run(run_dir)  # its trainer may still be exiting: stopped all the same
    wait_until(lambda: running_pid(run_dir) is None, timeout=15)
    with pytest.raises(RunError, match="not running"):
        launch.stop_run(run_dir)

    launch.resume_run(run_dir, device="cpu")
    wait_until(lambda: read_run(run_dir).status() == "finished", timeout=30)
    assert [h["epoch"] for h in read_run(run_dir).history] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(RunError, match="has finished"):
        launch.resume_run(run_dir)


def test_a_stopped_run_still_exiting_is_not_stopped_again(tmp_path: Path) -> None:
    """Between its `stopped` event and its exit, a trainer is neither stopped nor resumed."""
    run = tmp_path / "20260101-000000-resnet18"
    run.mkdir()
    (run / "config.toml").write_text(CONFIG.format(device="cpu"))
    (run / "events.jsonl").write_text(
        '{"v": 1, "t": 1, "type": "start"}\n{"v": 1, "t": 2, "type": "stopped", "epoch": 0}\n'
    )
    (run / "run.lock").write_text(f"{os.getpid()} host\n")  # a live pid: still exiting
    with pytest.raises(RunError, match="has already stopped"):
        launch.stop_run(run)
    with pytest.raises(RunError, match="still exiting: try again"):
        launch.resume_run(run)


def test_resume_of_a_non_run_is_refused(tmp_path: Path) -> None:
    """Resuming a folder that is not a run dir names it instead of starting a trainer."""
    with pytest.raises(RunError, match="not a run directory"):
        launch.resume_run(tmp_path)


def test_log_tail_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    """A log that was never written gives an empty tail, not an exception."""
    assert launch.log_tail(tmp_path / "gone.log") == ""


def test_device_flag_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No device chosen keeps the config's (no --device flag, which the trainer would save)."""
    calls: list[list[str]] = []
    monkeypatch.setattr(launch, "_spawn", lambda argv, log, on_exit: calls.append(argv) or 1)
    config = write_config(tmp_path)
    launch.start_training(config, "all", runs_dir=tmp_path / "runs")
    launch.start_training(config, "resnet50", runs_dir=tmp_path / "runs", device="cpu")
    assert "--device" not in calls[0] and calls[0][calls[0].index("--arch") + 1] == "all"
    assert calls[1][calls[1].index("--device") + 1] == "cpu"
    run = tmp_path / "runs" / "20260101-000000-resnet18"
    run.mkdir()
    (run / "config.toml").write_text(CONFIG.format(device="cpu"))
    launch.resume_run(run)
    assert "--device" not in calls[2] and calls[2][calls[2].index("--resume") + 1] == str(run)


def test_launch_imports_neither_torch_nor_textual() -> None:
    """The launcher is core: the TUI and scripts use it without paying for torch or textual."""
    import subprocess

    code = "import sys, fer_tui.launch; print(' '.join(sys.modules))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "torch" not in loaded and "textual" not in loaded
