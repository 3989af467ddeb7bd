"""fer_tui.run_tracker: the views the Training screen shows, made by tailing every run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from fer_tui import runs
from fer_tui.run_tracker import RunTracker, RunView
from fer_tui.runs import EventWriter


def line(**event: object) -> bytes:
    return (json.dumps({"v": 1, "t": 1.0, **event}) + "\n").encode()


def test_tracker_reports_only_changes_and_stays_bounded(tmp_path: Path) -> None:
    """Polling thousands of events posts views only when something changed; memory is bounded."""
    run = tmp_path / "20260101-000000-resnet18"
    run.mkdir()
    (run / runs.CONFIG).write_text("")  # the trainer writes its config before any event
    tracker = RunTracker(tmp_path, rescan_interval=0.0)
    changed, removed = tracker.poll()
    assert changed and changed[0].status == "pending" and changed[0].arch == "resnet18"
    assert tracker.poll() == ([], [])  # nothing new: nothing to redraw
    # written in one go (EventWriter would fsync each epoch line: seconds for 3000)
    lines = [line(type="start", arch="resnet18", recipe="scratch", epochs=3000, steps_per_epoch=2)]
    for e in range(1, 3001):
        lines.append(line(type="step", epoch=e, step_in_epoch=1, steps_per_epoch=2, loss=1.0))
        lines.append(
            line(type="epoch", epoch=e, epochs=3000, train_loss=1.0 / e, val_acc=None, seconds=1.0)
        )
    lines.append(line(type="end", best_metric=0.7, best_epoch=2999))
    (run / runs.EVENTS).write_bytes(b"".join(lines))
    (view,), _ = tracker.poll()
    assert view.status == "finished" and view.epoch == 3000 and view.best_metric == 0.7
    assert len(view.train_loss) == 1000  # RunState.max_history
    assert view.val_acc[-1] is None  # a NaN written as null stays a gap, not a number
    assert len(tracker.watchers[run.name].state.recent_steps) == 200
    assert tracker.poll() == ([], [])
    shutil.rmtree(run)
    assert tracker.poll() == ([], [run.name])  # a deleted run dir is dropped, no error


def test_tracker_marks_a_dead_trainer_crashed(tmp_path: Path) -> None:
    """A run whose lock pid dies without an end event turns from running to crashed."""
    run = tmp_path / "20260101-000000-resnet34"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    (run / runs.LOCK).write_text(f"{proc.pid} host\n")
    with EventWriter(run) as w:
        w.write("start", arch="resnet34", epochs=5, eta_seconds=100.0)
    tracker = RunTracker(tmp_path, rescan_interval=0.0)
    (view,), _ = tracker.poll()
    assert view.status == "running" and view.pid == proc.pid
    proc.kill()
    proc.wait()
    (view,), _ = tracker.poll()
    assert view.status == "crashed" and view.resumable and view.pid is None


def test_tracker_shows_a_waiting_runs_config(tmp_path: Path) -> None:
    """A run dir with only its config (waiting its turn in a group) shows recipe and epochs."""
    run = tmp_path / "20260101-000000-resnet50"
    run.mkdir()
    (run / runs.CONFIG).write_text('name = "scratch"\n[train]\nepochs = 60\n')
    (view,), _ = RunTracker(tmp_path, rescan_interval=0.0).poll()
    assert (view.status, view.arch, view.recipe, view.epochs_text) == (
        "pending",
        "resnet50",
        "scratch",
        "0/60",
    )


def test_interrupted_runs_count_their_unfinished_epoch(tmp_path: Path) -> None:
    """A run stopped or crashed mid-epoch says how long it ran, that epoch included, and where
    it stopped; a run that died in its first epoch is not shown as having taken 0 s."""
    start = {"type": "start", "arch": "x", "epochs": 5, "steps_per_epoch": 10}
    timed = {
        "20260101-000000-resnet50": [  # crashed in epoch 1, its last step 600 s after the start
            (100.0, start),
            (300.0, {"type": "step", "step_in_epoch": 2, "steps_per_epoch": 10}),
            (700.0, {"type": "step", "step_in_epoch": 4, "steps_per_epoch": 10}),
        ],
        "20260101-000000-resnet18": [  # stopped 30 s into epoch 2
            (0.0, start),
            (50.0, {"type": "epoch", "epoch": 1, "epochs": 5, "seconds": 50.0}),
            (80.0, {"type": "stopped", "epoch": 1, "step_in_epoch": 7, "reason": "SIGTERM"}),
        ],
    }
    for name, events in timed.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / runs.EVENTS).write_bytes(b"".join(line(**e, t=t) for t, e in events))
    views = {v.run_id: v for v in RunTracker(tmp_path, rescan_interval=0.0).poll()[0]}
    died, halted = views["20260101-000000-resnet50"], views["20260101-000000-resnet18"]
    assert died.status == "crashed" and died.elapsed_seconds == 600.0 and died.epoch == 0
    assert halted.status == "stopped" and halted.elapsed_seconds == 80.0
    assert (halted.epoch, halted.step_in_epoch, halted.steps_per_epoch) == (1, 7, 10)


def test_a_run_in_its_first_epoch_has_an_eta_from_its_steps(tmp_path: Path) -> None:
    """Before any epoch ends (a fresh run, or a resumed one), the ETA comes from the pace of
    the steps since the latest start, not from steps of the session before it."""
    run = tmp_path / "20260101-000000-resnet50"
    run.mkdir()
    start = {"type": "start", "arch": "resnet50", "epochs": 2, "steps_per_epoch": 100}
    events = [
        (0.0, start),
        (100.0, {"type": "step", "epoch": 1, "step": 20, "step_in_epoch": 20}),
        (200.0, {"type": "step", "epoch": 1, "step": 40, "step_in_epoch": 40}),
    ]
    (run / runs.EVENTS).write_bytes(b"".join(line(**e, t=t) for t, e in events))
    view = RunView.from_state(runs.read_run(run), pid=1, now=250.0)
    # 160 steps left at 20 steps per 100 s: 800 s from the last step, 50 s of it gone
    assert view.status == "running" and view.eta_seconds == 750.0
    assert RunView.from_state(runs.read_run(run), pid=None, now=250.0).eta_seconds is None

    # stopped, then resumed: the steps before the stop (a slower pace) no longer count
    resumed = [
        (300.0, {"type": "stopped", "epoch": 0, "step_in_epoch": 40, "reason": "SIGTERM"}),
        (1000.0, {**start, "start_epoch": 1, "resumed": True}),
        (1010.0, {"type": "step", "epoch": 1, "step": 60, "step_in_epoch": 60}),
    ]
    with (run / runs.EVENTS).open("ab") as f:
        f.write(b"".join(line(**e, t=t) for t, e in resumed))
    assert RunView.from_state(runs.read_run(run), pid=1, now=1010.0).eta_seconds is None
    with (run / runs.EVENTS).open("ab") as f:
        f.write(line(type="step", epoch=1, step=80, step_in_epoch=80, t=1050.0))
    # 120 steps left at 20 per 40 s
    assert RunView.from_state(runs.read_run(run), pid=1, now=1050.0).eta_seconds == 240.0
