"""fer_tui.runs: tailing events.jsonl, reducing events to a RunState, the lock."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_tui import runs
from fer_tui.errors import RunError
from fer_tui.files import atomic_write_bytes
from fer_tui.runs import EventTail, EventWriter, RunLock, RunState, RunWatcher
from tests.helpers import wait_until


def line(**event: object) -> bytes:
    return (json.dumps({"v": 1, "t": 1.0, **event}) + "\n").encode()


def epoch_event(epoch: int, epochs: int = 5, **extra: object) -> dict:
    return {
        "v": 1,
        "t": 100.0 + epoch,
        "type": "epoch",
        "epoch": epoch,
        "epochs": epochs,
        "train_loss": 1.0 / epoch,
        "val_acc": 0.1 * epoch,
        "seconds": 10.0,
        **extra,
    }


# --- EventTail ------------------------------------------------------------------------------


def test_torn_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    """A half-written last line is held back, then returned whole once it is completed."""
    path = tmp_path / "events.jsonl"
    whole = line(type="step", step=2)
    path.write_bytes(line(type="start") + whole[:10])
    tail = EventTail(path)
    assert [e["type"] for e in tail.read_new()] == ["start"]
    assert tail.read_new() == []
    with open(path, "ab") as f:
        f.write(whole[10:])
    assert tail.read_new() == [{"v": 1, "t": 1.0, "type": "step", "step": 2}]


def test_only_new_bytes_are_read(tmp_path: Path) -> None:
    """Each poll returns just the events appended since the last one."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(line(type="start"))
    tail = EventTail(path)
    assert len(tail.read_new()) == 1
    with open(path, "ab") as f:
        f.write(line(type="step", step=1) + line(type="step", step=2))
    assert [e["step"] for e in tail.read_new()] == [1, 2]
    assert tail.offset == path.stat().st_size


def test_missing_file_then_created(tmp_path: Path) -> None:
    """A file that does not exist yet reads as nothing, then its events arrive."""
    path = tmp_path / "run" / "events.jsonl"
    tail = EventTail(path)
    assert tail.read_new() == []
    path.parent.mkdir()
    path.write_bytes(line(type="start"))
    assert [e["type"] for e in tail.read_new()] == ["start"]


def test_deleted_run_dir_reads_as_nothing(tmp_path: Path) -> None:
    """Deleting the run dir under a tail does not raise."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.jsonl").write_bytes(line(type="start"))
    tail = EventTail(run / "events.jsonl")
    assert len(tail.read_new()) == 1
    shutil.rmtree(run)
    assert tail.read_new() == []


def test_replaced_or_truncated_file_is_read_from_the_start(tmp_path: Path) -> None:
    """A file replaced by another (new inode) or truncated is re-read from byte 0."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(line(type="start") + line(type="step", step=1))
    tail = EventTail(path)
    assert len(tail.read_new()) == 2
    atomic_write_bytes(path, line(type="start", arch="resnet34"))
    assert [e.get("arch") for e in tail.read_new()] == ["resnet34"]
    path.write_bytes(b"")
    path.write_bytes(line(type="end"))  # same inode, shorter than the offset
    assert [e["type"] for e in tail.read_new()] == ["end"]


def test_bad_lines_are_skipped(tmp_path: Path) -> None:
    """Garbage or non-object lines are skipped; the good lines around them survive."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(line(type="start") + b"{not json\n[1, 2]\n\n" + line(type="end"))
    assert [e["type"] for e in EventTail(path).read_new()] == ["start", "end"]


def test_writer_writes_non_finite_numbers_as_null(tmp_path: Path) -> None:
    """NaN/inf losses become null, so strict JSON readers can read the file."""
    with EventWriter(tmp_path) as w:
        w.write("step", loss=math.nan, lr=math.inf, nested={"x": [math.nan]})
    text = (tmp_path / "events.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    event = json.loads(text)
    assert event["loss"] is None and event["nested"] == {"x": [None]}


# --- RunState -------------------------------------------------------------------------------


def test_state_reduces_a_finished_run(tmp_path: Path) -> None:
    """start/epoch/end events give a finished run with its history, best metric and ETA 0."""
    s = RunState(tmp_path)
    s.apply(
        {
            "type": "start",
            "t": 50.0,
            "arch": "resnet18",
            "recipe": "scratch",
            "epochs": 2,
            "steps_per_epoch": 10,
            "env": {"device": "cpu"},
        }
    )
    s.apply(epoch_event(1, epochs=2, best_metric=0.1, best_epoch=1, eta_seconds=10.0))
    s.apply(epoch_event(2, epochs=2, best_metric=0.2, best_epoch=2))
    s.apply({"type": "end", "t": 200.0, "best_metric": 0.2, "best_epoch": 2})
    assert (s.arch, s.recipe, s.device, s.epoch, s.epochs) == ("resnet18", "scratch", "cpu", 2, 2)
    assert s.status() == "finished"
    assert s.series("val_acc") == pytest.approx([0.1, 0.2])
    assert s.best_metric == 0.2 and s.eta_seconds == 0.0
    assert s.elapsed_seconds == 20.0


def test_state_failed_run_keeps_the_error_message(tmp_path: Path) -> None:
    """An error event makes the run failed and keeps its message and traceback."""
    s = RunState(tmp_path)
    s.apply({"type": "start", "t": 1.0})
    s.apply({"type": "error", "t": 2.0, "message": "CUDA out of memory", "traceback": "Tb"})
    assert s.status() == "failed" and s.error == "CUDA out of memory" and s.traceback == "Tb"
    s2 = RunState(tmp_path)
    s2.apply({"type": "error", "t": 2.0})
    assert s2.error  # never blank, even when the trainer gave no message


def test_state_liveness(tmp_path: Path) -> None:
    """No end event: running while the lock pid lives, crashed once it is dead, else pending."""
    s = RunState(tmp_path)
    assert s.status() == "pending"
    s.apply({"type": "start", "t": 1.0})
    assert s.status() == "crashed"
    (tmp_path / runs.LOCK).write_text(f"{os.getpid()} host\n")
    assert s.status() == "running"
    s.apply({"type": "stopped", "t": 3.0, "epoch": 0})
    assert s.status() == "stopped"


def test_running_pid_names_a_live_trainer_only(tmp_path: Path) -> None:
    """running_pid: the lock's pid while that process lives; None without a lock or once the
    process is gone."""
    assert runs.running_pid(tmp_path) is None
    (tmp_path / runs.LOCK).write_text(f"{os.getpid()} host\n")
    assert runs.running_pid(tmp_path) == os.getpid()
    (tmp_path / runs.LOCK).write_text(f"{dead_pid()} host\n")
    assert runs.running_pid(tmp_path) is None


def write_events(run_dir: Path, *events: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / runs.EVENTS).write_bytes(b"".join(line(**e) for e in events))


def test_summary_speaks_the_status_vocabulary(tmp_path: Path) -> None:
    """summarize (what `fer-tui train --json` prints) gives the same statuses as RunState:
    finished, stopped with its signal, failed, crashed and pending (whose arch comes from the
    config)."""
    start = {"type": "start", "arch": "resnet18", "start_epoch": 1}
    write_events(
        tmp_path / "a", start, epoch_event(1, best_metric=0.5, best_epoch=1), {"type": "end"}
    )
    write_events(tmp_path / "b", start, {"type": "stopped", "epoch": 0, "reason": "SIGTERM"})
    write_events(tmp_path / "c", start, {"type": "error", "message": "boom"})
    write_events(tmp_path / "d", start, epoch_event(1))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / runs.CONFIG).write_text('archs = ["resnet50"]\n')
    summary = {p.name: runs.summarize(p) for p in sorted(tmp_path.iterdir())}
    assert {k: v["status"] for k, v in summary.items()} == {
        "a": "finished",
        "b": "stopped",
        "c": "failed",
        "d": "crashed",
        "e": "pending",
    }
    assert set(summary["a"]) >= {"run_dir", "arch", "best_epoch", "seconds", "val_acc"}
    assert summary["a"]["best_metric"] == 0.5 and summary["a"]["epochs"] == 1
    assert summary["b"]["signal"] == "SIGTERM" and "signal" not in summary["a"]
    assert summary["e"]["arch"] == "resnet50" and summary["e"]["epochs"] == 0
    assert all(v["status"] in runs.STATUSES for v in summary.values())


def test_summary_counts_a_redone_epoch_once(tmp_path: Path) -> None:
    """After a kill and a resume that redoes epoch 2, the summary's seconds and epochs are those
    of the curve (each epoch once), as the trainer's own summary counts them."""
    write_events(
        tmp_path,
        {"type": "start", "arch": "resnet18", "start_epoch": 1},
        epoch_event(1, seconds=10.0),
        epoch_event(2, seconds=10.0),
        {"type": "start", "arch": "resnet18", "start_epoch": 2, "resumed": True},
        epoch_event(2, seconds=12.0, val_acc=0.6),
        {"type": "end"},
    )
    summary = runs.summarize(tmp_path)
    assert summary["seconds"] == 22.0 and summary["epochs"] == 2 and summary["val_acc"] == 0.6


def test_resume_continues_the_curve(tmp_path: Path) -> None:
    """A resumed run drops the epoch it redoes, so the history has every epoch exactly once."""
    s = RunState(tmp_path)
    s.apply({"type": "start", "t": 1.0, "epochs": 5, "start_epoch": 1})
    for e in (1, 2, 3):
        s.apply(epoch_event(e))
    s.apply({"type": "error", "t": 9.0, "message": "killed"})
    s.apply({"type": "start", "t": 500.0, "epochs": 5, "start_epoch": 3, "resumed": True})
    assert s.status(pid_is_alive=True) == "running" and s.error is None
    assert s.started_t == 1.0 and s.resumed_t == 500.0
    for e in (3, 4, 5):
        s.apply(epoch_event(e))
    assert [h["epoch"] for h in s.history] == [1, 2, 3, 4, 5]


def test_memory_stays_bounded(tmp_path: Path) -> None:
    """Thousands of step and epoch events keep the history and step buffer bounded."""
    s = RunState(tmp_path, max_history=100)
    for i in range(5000):
        s.apply({"type": "step", "t": float(i), "step": i, "step_in_epoch": i % 50, "loss": 1.0})
    for e in range(1, 1001):
        s.apply(epoch_event(e, epochs=1000))
    assert len(s.recent_steps) == 200
    assert len(s.history) == 100 and s.history[-1]["epoch"] == 1000


def test_watcher_polls_incrementally(tmp_path: Path) -> None:
    """RunWatcher.poll says whether anything new arrived and updates its state."""
    w = RunWatcher(tmp_path)
    assert w.poll() is False
    with EventWriter(tmp_path) as ew:
        ew.write("start", arch="resnet50", epochs=3)
        assert w.poll() is True and w.state.arch == "resnet50"
        assert w.poll() is False
        ew.write("epoch", epoch=1, epochs=3, val_acc=0.4)
    assert w.poll() is True and w.state.epoch == 1


def test_list_runs_finds_only_run_dirs(tmp_path: Path) -> None:
    """Run dirs are those with a config or events file, oldest name first; logs are ignored."""
    for name in ("20260101-000002-resnet34", "20260101-000001-resnet18", "junk"):
        (tmp_path / name).mkdir()
    (tmp_path / "20260101-000002-resnet34" / "events.jsonl").write_text("")
    (tmp_path / "20260101-000001-resnet18" / "config.toml").write_text("")
    (tmp_path / "launch-x.log").write_text("")
    assert [p.name for p in runs.list_runs(tmp_path)] == [
        "20260101-000001-resnet18",
        "20260101-000002-resnet34",
    ]
    assert runs.list_runs(tmp_path / "missing") == []


# --- lock and files -------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_lock_is_taken_over(tmp_path: Path) -> None:
    """A lock left by a killed trainer (dead pid) is replaced by ours."""
    (tmp_path / runs.LOCK).write_text(f"{dead_pid()} host\n")
    with RunLock(tmp_path):
        assert runs.read_lock(tmp_path) == os.getpid()
    assert not (tmp_path / runs.LOCK).exists()


def test_live_lock_refuses_a_second_trainer(tmp_path: Path) -> None:
    """A lock held by a live process refuses a second trainer and names the pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / runs.LOCK).write_text(f"{proc.pid} host\n")
        with pytest.raises(RunError, match=f"already being trained by pid {proc.pid}"):
            RunLock(tmp_path).acquire()
        assert runs.read_lock(tmp_path) == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_zombie_counts_as_dead() -> None:
    """A finished child nobody reaped yet is not a live trainer."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])

    def zombie() -> bool:
        with open(f"/proc/{proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"

    wait_until(zombie, timeout=5, interval=0.01, what="the child to exit")
    assert runs.pid_alive(proc.pid) is False
    proc.wait()
