"""tools/gpu_train_all.py, the one-command GPU run: its parts that decide what a user reads in
results.json, checked on a CPU (the run itself needs a GPU)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_train_all", ROOT / "tools" / "gpu_train_all.py")
gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu)


def test_a_model_stopped_at_the_deadline_is_never_called_its_last_epoch() -> None:
    """Weights saved mid-epoch by the deadline's SIGTERM say so; a finished run says last."""
    mid = gpu.selection({"epoch": 12, "step_in_epoch": 40}, stopped_at_deadline=True)
    assert "deadline" in mid and "epoch 13" in mid and "last epoch" not in mid
    assert gpu.selection({"epoch": 41, "step_in_epoch": 0}, stopped_at_deadline=False) == (
        "last epoch (41)"
    )


def test_the_deadline_stops_the_trainers_with_sigterm(tmp_path: Path) -> None:
    """At the deadline every trainer gets SIGTERM (so it saves last.pt), and the caller hears
    that the deadline, not the schedule, ended training."""
    marker = tmp_path / "got-sigterm"
    code = (
        "import signal, sys, time, pathlib\n"
        f"def stop(*a):\n    pathlib.Path({str(marker)!r}).write_text('x'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)  # let it install its handler
    t0 = time.monotonic()
    assert gpu.run_until([proc], deadline=gpu.elapsed() + 0.5) is True
    assert time.monotonic() - t0 < 30 and proc.returncode == 0 and marker.exists()
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    assert gpu.run_until([quick], deadline=gpu.elapsed() + 30) is False


@pytest.fixture
def probe() -> tuple[Path, list[str], dict]:
    config = ROOT / "configs" / "scratch.toml"
    calibrate = ROOT / "configs" / "cpu.toml"
    jobs = [f"{config}:{a}" for a in ("resnet18", "resnet34", "resnet50")]
    jobs.append(f"{calibrate}:resnet18")
    rates = [20_000, 14_000, 7_000, 10_000]
    return config, jobs, {"jobs": {j: {"img_per_s": r} for j, r in zip(jobs, rates, strict=True)}}


def test_epochs_are_scaled_down_to_the_time_left_and_never_up(probe, tmp_path: Path) -> None:
    """The recipe's epochs shrink in proportion so the three fit the budget; a budget larger
    than needed leaves them as written; an extra job that would eat over a quarter goes."""
    config, jobs, rates = probe
    results = gpu.Results(tmp_path / "results.json")
    fitted, extra = gpu.fit_epochs(config, rates, jobs, 300.0, 28709, 7178, tmp_path, results)
    used = results.data["budget"]["epochs_used"]
    assert all(used[a] < planned for a, planned in results.data["budget"]["epochs_planned"].items())
    assert extra == []  # the calibration job would take over a quarter of 300 s
    assert "epochs = " in fitted.read_text()
    _, extra = gpu.fit_epochs(config, rates, jobs, 10_000.0, 28709, 7178, tmp_path, results)
    assert results.data["budget"]["epochs_used"] == {"resnet18": 60, "resnet34": 50, "resnet50": 50}
    assert extra == [jobs[-1]]
    assert (tmp_path / "results.json").is_file()  # written as soon as the step ends
