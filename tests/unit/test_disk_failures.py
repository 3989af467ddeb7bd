"""Writes that fail: a full disk, a read-only or forbidden folder, a writer killed mid-file.

What must hold: the error names the file, what happened and the fix; no temp file survives a
failed write or, once the next writer in the folder starts, a killed one; the file written
before is intact; a second writer of one file waits for the first.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from fer_tui import files
from fer_tui.errors import DiskError, os_error_message
from fer_tui.runs import EVENTS, EventWriter, RunLock, read_events
from fer_tui.space import (
    check_free_space,
    free_bytes,
    human_bytes,
    run_bytes_needed,
)
from tests.mounts import fill, read_only, small_tmpfs

FAULTS = [
    (errno.ENOSPC, "no space left on the device"),
    (errno.EROFS, "read-only"),
    (errno.EACCES, "permission denied"),
]
ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(("code", "said"), FAULTS)
@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_a_failed_atomic_write_names_the_target_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, said: str, where: str
) -> None:
    """Whichever step fails, the old file is whole, no temp file is left, and the OSError names
    the file asked for (not the temp file), so its message says what to do."""
    path = tmp_path / "last.pt"
    files.atomic_write_text(path, "old")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    if where == "write":

        def write(f: object) -> None:
            fail()

        run = lambda: files.atomic_write(path, write)  # noqa: E731
    else:
        monkeypatch.setattr(files.os, where, fail)
        run = lambda: files.atomic_write_bytes(path, b"new")  # noqa: E731
    with pytest.raises(OSError) as caught:
        run()
    assert caught.value.errno == code and caught.value.filename == str(path)
    assert said in os_error_message(caught.value).lower()
    assert str(path) in os_error_message(caught.value)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_temp_files_carry_the_writers_pid(tmp_path: Path) -> None:
    """A temp file is `.<name>.<pid>-<random>.tmp`: the next writer can tell whose it is."""
    seen: list[str] = []

    def write(f: object) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())

    files.atomic_write(tmp_path / "best.pt", write)
    (name,) = seen
    match = files.TEMP_NAME.match(name)
    assert match is not None and match["name"] == "best.pt"
    assert int(match["pid"]) == os.getpid()
    assert files.TEMP_NAME.match(files.temp_path(tmp_path / "m.onnx").name)["name"] == "m.onnx"


def test_sweep_removes_only_what_dead_writers_left(tmp_path: Path) -> None:
    """A dead writer's temp file goes; a live writer's, another target's (when names are
    given), a fresh pid-less one and the user's own files stay."""
    dead, alive = dead_pid(), os.getpid()
    names = {
        "dead": f".model.pt.{dead}-abcd1234.tmp",
        "alive": f".model.pt.{alive}-abcd1234.tmp",
        "other": f".other.pt.{dead}-abcd1234.tmp",
        "legacy_old": ".model.pt.k2j4h5g6.tmp",
        "legacy_new": ".model.pt.a1b2c3d4.tmp",
        "export_old": "model.pt.tmp",
        "user": "notes.tmp",
        "target": "model.pt",
    }
    for name in names.values():
        (tmp_path / name).write_text("x")
    hour_ago = time.time() - 2 * files.LEGACY_TEMP_AGE
    for key in ("legacy_old", "export_old", "user"):
        os.utime(tmp_path / names[key], (hour_ago, hour_ago))

    removed = files.sweep_temp_files(tmp_path, ["model.pt"])
    assert sorted(p.name for p in removed) == sorted(
        [names["dead"], names["legacy_old"], names["export_old"]]
    )
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names[k] for k in ("alive", "other", "legacy_new", "user", "target")}
    # without names: every dead writer's pid-named temp file, nothing else
    assert [p.name for p in files.sweep_temp_files(tmp_path)] == [names["other"]]


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from fer_tui.files import atomic_write

    def write(f):
        f.write(b"half of a checkpoint")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)

    atomic_write(sys.argv[1], write)
    """
)


def test_a_writer_killed_mid_file_leaves_a_temp_file_the_next_writer_removes(
    tmp_path: Path,
) -> None:
    """SIGKILL in the middle of a write: the target is untouched, and the next writer in the
    folder removes the dead one's temp file before it writes."""
    target = tmp_path / "model.pt"
    files.atomic_write_text(target, "whole")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    (temp,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert str(proc.pid) in temp.name and target.read_text() == "whole"
    assert files.sweep_temp_files(tmp_path, [target.name]) == [temp]
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_second_writer_of_one_file_waits_for_the_first(tmp_path: Path) -> None:
    """lock_target: the second holder waits (told the first's pid) until the first lets go;
    with a short timeout it gives up with a message; no lock file is left."""
    target = tmp_path / "model.pt"
    order: list[str] = []
    waited: list[int | None] = []
    first_in = threading.Event()

    def first() -> None:
        with files.lock_target(target):
            first_in.set()
            time.sleep(0.5)
            order.append("first")

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(5)
    with pytest.raises(files.TargetBusy, match=r"being written by another fer-tui \(pid \d+\)"):
        with files.lock_target(target, timeout=0.1):
            pass
    with files.lock_target(target, on_wait=waited.append):
        order.append("second")
    t.join()
    assert order == ["first", "second"] and waited == [os.getpid()]
    assert list(tmp_path.iterdir()) == []


def test_a_killed_lock_holder_frees_the_file(tmp_path: Path) -> None:
    """The lock is an flock: a holder killed with SIGKILL does not block the next writer."""
    target = tmp_path / "model.pt"
    code = (
        "import sys, time\nfrom fer_tui.files import lock_target\n"
        "with lock_target(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    with files.lock_target(target, timeout=2):
        pass


@pytest.mark.parametrize(
    ("code", "said"),
    [
        *FAULTS,
        (errno.EPERM, "permission denied"),
        (errno.EMFILE, "too many open files"),
        (errno.ENAMETOOLONG, "too long"),
    ],
)
def test_each_os_error_says_the_file_what_happened_and_the_fix(code: int, said: str) -> None:
    message = os_error_message(OSError(code, os.strerror(code), "/runs/x/last.pt"))
    assert said in message.lower() and "/runs/x/last.pt" in message
    assert "\n" not in message and ": " in message.split(said, 1)[1]  # a fix follows


def test_an_event_line_cut_by_a_full_disk_does_not_swallow_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that stops halfway (ENOSPC after part of the line) raises, naming events.jsonl;
    once space is back the next event starts on a line of its own."""
    real_write = os.write
    calls = {"n": 0}

    def short_then_full(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with EventWriter(tmp_path) as events:
        events.write("start", arch="resnet18")
        monkeypatch.setattr(os, "write", short_then_full)
        with pytest.raises(OSError) as caught:
            events.write("epoch", epoch=1)
        assert caught.value.filename == str(tmp_path / EVENTS)
        monkeypatch.setattr(os, "write", real_write)
        events.write("error", message="disk full")
    assert [e["type"] for e in read_events(tmp_path)] == ["start", "error"]


def test_a_lock_on_a_read_only_run_is_a_disk_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only_open(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "open", read_only_open)
    with pytest.raises(DiskError, match=r"run\.lock: the file system is read-only"):
        RunLock(tmp_path).acquire()


def test_a_lock_on_a_really_read_only_run_is_a_disk_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with read_only(run), pytest.raises(DiskError, match="read-only"):
        RunLock(run).acquire()


def test_free_space_is_checked_against_what_will_be_written(tmp_path: Path) -> None:
    """A write that cannot fit is refused before it starts, with both sizes in the message."""
    with small_tmpfs(tmp_path / "small", "2m") as small:
        free = free_bytes(small)
        assert free is not None and free <= 2 << 20
        check_free_space(small, 1024, "a small file")  # fits, with the reserve
        with pytest.raises(DiskError, match=r"not enough space for model\.pt in .*small") as e:
            check_free_space(small, 40 << 20, "model.pt")
        assert human_bytes(free) in str(e.value)


def test_a_write_to_a_really_full_disk_keeps_the_old_file(tmp_path: Path) -> None:
    """On a real full tmpfs: ENOSPC names the file, the old file is whole, no temp file."""
    with small_tmpfs(tmp_path / "small", "1m") as small:
        target = small / "last.pt"
        files.atomic_write_bytes(target, b"old" * 1000)
        fill(small)
        with pytest.raises(OSError) as caught:
            files.atomic_write_bytes(target, b"x" * (2 << 20))
        assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
        assert target.read_bytes() == b"old" * 1000
        assert sorted(p.name for p in small.iterdir()) == ["filler", "last.pt"]


def test_a_resume_needs_only_what_the_run_does_not_hold_yet(tmp_path: Path) -> None:
    from fer_tui.config import RunConfig

    cfg = RunConfig().for_arch("resnet18")
    fresh = run_bytes_needed(cfg)
    (tmp_path / "last.pt").write_bytes(b"\0" * (10 << 20))
    assert run_bytes_needed(cfg, tmp_path) == fresh - (10 << 20)
    assert fresh > 3 * 44_000_000  # last.pt (weights + momentum), best.pt, a temp copy
