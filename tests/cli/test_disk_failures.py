"""Commands on a full, read-only or forbidden disk, and commands killed in the middle of a write,
as a user meets them: one `fer-tui: error:` line naming the file, what happened and the fix,
exit code 2, no traceback, no temp file left, and what was written before still whole.

Faults are injected (an OSError where the bytes go to disk) everywhere; where the machine lets
the tests mount (root), the same is checked on a real small tmpfs and a read-only bind mount.
The runs are tiny: a ResNet18 at 16x16 trained for two epochs on a few synthetic faces.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fer_tui import files
from fer_tui.cli import main
from fer_tui.models import read_checkpoint
from fer_tui.runs import BEST, EVENTS, LAST, read_events, read_run
from tests.cli.test_ship import TINY, copy_run
from tests.helpers import make_tiny_checkpoint
from tests.mounts import fill, read_only, small_tmpfs

ROOT = Path(__file__).resolve().parents[2]
FAULTS = [
    (errno.ENOSPC, "no space left on the device"),
    (errno.EROFS, "read-only"),
    (errno.EACCES, "permission denied"),
]


def error_line(err: str) -> str:
    """The one line a failed command printed last on stderr; there is no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("fer-tui: error: ")
    return lines[-1]


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".lock")))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def fail_fsync(monkeypatch: pytest.MonkeyPatch):
    """Make every fsync (the last step of each atomic write) fail with `code`."""

    def install(code: int) -> None:
        def fsync(fd: int) -> None:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "fsync", fsync)

    return install


def train(config: Path, data: Path, runs: Path, *extra: str) -> int:
    argv = ["train", "--config", str(config), "--data", str(data), "--runs-dir", str(runs)]
    return main([*argv, "--limit", "24", *extra])


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY.format(val="holdout"))
    return path


@pytest.fixture(scope="module")
def finished(config: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run with last.pt, best.pt and ema.pt."""
    runs = tmp_path_factory.mktemp("runs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert train(config, tiny_data, runs) == 0
    finally:
        torch.set_num_threads(before)
    (run,) = runs.iterdir()
    return run


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- ship ---------------------------------------------------------------------------------


def ship(run: Path, out: Path, *extra: str) -> int:
    return main(["ship", str(run), "--name", "model", "--checkpoints", str(out), *extra])


@pytest.mark.parametrize(("code", "said"), FAULTS)
def test_ship_on_a_failing_disk_is_one_line_and_leaves_nothing(
    finished: Path, tmp_path: Path, fail_fsync, capsys, code: int, said: str
) -> None:
    out = tmp_path / "ckpts"
    fail_fsync(code)
    assert ship(finished, out) == 2
    line = error_line(capsys.readouterr().err)
    assert said in line.lower() and str(out / "model.pt") in line
    assert list(out.iterdir()) == []


def test_ship_to_a_really_full_disk_is_refused_before_writing(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """On a 2 MiB tmpfs: refused by the free-space check, both sizes named; and with the check
    out of the way, the real ENOSPC is the same one line, and the disk is left empty."""
    with small_tmpfs(tmp_path / "small", "2m") as small:
        assert ship(finished, small) == 2
        line = error_line(capsys.readouterr().err)
        assert f"not enough space for {small / 'model.pt'}" in line and "MiB free" in line
        monkeypatch.setattr("fer_tui.shipping.check_free_space", lambda *a: None)
        assert ship(finished, small) == 2
        line = error_line(capsys.readouterr().err)
        assert f"cannot write {small / 'model.pt'}: no space left on the device" in line
        assert list(small.iterdir()) == []


def test_ship_into_a_read_only_folder(finished: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ckpts"
    out.mkdir()
    with read_only(out):
        assert ship(finished, out) == 2
    line = error_line(capsys.readouterr().err)
    assert "read-only" in line and str(out) in line
    assert list(out.iterdir()) == []


SLOW_SHIP = textwrap.dedent(
    """
    import os, sys, time
    real_fsync = os.fsync

    def slow_fsync(fd):
        print("writing", flush=True)
        time.sleep(float(sys.argv[1]))
        real_fsync(fd)

    os.fsync = slow_fsync
    from fer_tui.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def slow_ship(run: Path, out: Path, pause: float, *extra: str) -> subprocess.Popen[str]:
    """`fer-tui ship` in a child that stops for `pause` seconds with its temp file written;
    returns once it got there."""
    argv = ["ship", str(run), "--name", "model", "--checkpoints", str(out), *extra]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SHIP, str(pause), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def test_a_killed_ship_leaves_a_temp_file_that_the_next_ship_removes(
    finished: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ckpts"
    proc = slow_ship(finished, out, 60)
    proc.kill()
    proc.wait()
    left = [p.name for p in out.iterdir() if p.suffix == ".tmp"]
    assert len(left) == 1 and f".model.pt.{proc.pid}-" in left[0]
    assert not (out / "model.pt").exists()
    assert ship(finished, out) == 0
    assert [p.name for p in out.iterdir()] == ["model.pt"]
    assert read_checkpoint(out / "model.pt")["meta"]["source_run"] == finished.name


def test_a_terminated_ship_removes_its_temp_file(finished: Path, tmp_path: Path) -> None:
    """SIGTERM (what `kill` sends) unwinds the ship: it says so, and leaves nothing behind."""
    out = tmp_path / "ckpts"
    proc = slow_ship(finished, out, 60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "fer-tui: terminated"
    assert list(out.iterdir()) == []


def test_two_ships_to_one_name_never_mix(finished: Path, tmp_path: Path, capsys) -> None:
    """The second ship waits for the first; then it refuses (the name is taken), or with
    --replace writes its own file whole."""
    out = tmp_path / "ckpts"
    first = slow_ship(finished, out, 2)
    assert ship(finished, out) == 2
    err = capsys.readouterr().err
    assert f"waiting for pid {first.pid}" in err
    assert "model.pt exists (another ship wrote it just now): pass --replace" in error_line(err)
    assert first.wait(timeout=60) == 0

    first = slow_ship(finished, out, 2, "--replace", "--weights", "ema")
    assert ship(finished, out, "--replace", "--weights", "last") == 0
    assert first.wait(timeout=60) == 0
    assert read_checkpoint(out / "model.pt")["meta"].get("weights") != "ema"  # ours, last
    assert [p.name for p in out.iterdir()] == ["model.pt"]


# --- train --------------------------------------------------------------------------------


def test_a_disk_that_fills_during_training_ends_the_run_with_its_cause(
    config: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Epoch 2's checkpoints cannot be written: the trainer ends with one error line and exit
    2, its last event is an `error` naming the file, epoch 1's checkpoints are whole and no
    temp file is left. Once there is room, --resume continues from epoch 2 to the end."""
    from fer_tui.training import checkpoints

    real_save = checkpoints.save_checkpoint

    def save(path: Path, model: object, meta: dict, **state: object) -> None:
        if meta.get("epoch") == 2:

            def full(f: object) -> None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            files.atomic_write(path, full)
        real_save(path, model, meta, **state)

    monkeypatch.setattr(checkpoints, "save_checkpoint", save)
    runs = tmp_path / "runs"
    assert train(config, tiny_data, runs) == 2
    line = error_line(capsys.readouterr().err)
    (run,) = runs.iterdir()
    assert line == f"fer-tui: error: cannot write {run / LAST}: no space left on the device: " + (
        "free some space there (old runs, checkpoints, caches) or write to another disk, "
        "then try again"
    )
    last_event = read_events(run)[-1]
    assert last_event["type"] == "error" and last_event["message"] == line.split(": error: ")[1]
    state = read_run(run)
    assert state.status() == "failed" and "no space left" in (state.error or "")
    assert read_checkpoint(run / LAST)["epoch"] == 1
    assert read_checkpoint(run / BEST)["meta"]["epoch"] == 1
    assert temp_files(run) == []

    monkeypatch.setattr(checkpoints, "save_checkpoint", real_save)
    stale = run / f".{LAST}.{dead_pid()}-abcd1234.tmp"  # what a killed trainer would leave
    stale.write_bytes(b"half")
    assert main(["train", "--resume", str(run)]) == 0
    starts = [e for e in read_events(run) if e["type"] == "start"]
    assert starts[-1]["start_epoch"] == 2 and read_run(run).status() == "finished"
    assert read_checkpoint(run / LAST)["epoch"] == 2
    assert temp_files(run) == []


def test_a_really_full_disk_during_training(
    config: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The same on a real tmpfs that holds epoch 1's files but not epoch 2's last.pt beside
    them; grown afterwards (space freed), the run resumes and finishes."""
    monkeypatch.setattr("fer_tui.space.check_run_space", lambda *a: None)
    monkeypatch.setattr("fer_tui.space.check_free_space", lambda *a: None)
    with small_tmpfs(tmp_path / "disk", "300m") as disk:
        assert train(config, tiny_data, disk / "runs") == 2
        line = error_line(capsys.readouterr().err)
        (run,) = (disk / "runs").iterdir()
        assert "no space left on the device" in line and str(run) in line
        assert read_events(run)[-1]["type"] == "error"
        assert read_checkpoint(run / LAST)["epoch"] == 1
        assert temp_files(run) == []
        subprocess.run(["mount", "-o", "remount,size=700m", str(disk)], check=True)
        assert main(["train", "--resume", str(run)]) == 0
        assert read_run(run).status() == "finished"


def test_resume_on_a_read_only_run(finished: Path, tmp_path: Path, capsys) -> None:
    run = copy_run(finished, tmp_path / "runs")
    with read_only(run):
        assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"cannot write {run / 'run.lock'}: the file system is read-only" in line


def test_resume_on_a_read_only_run_injected(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from fer_tui.runs import RunLock

    def read_only_create(self: RunLock) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.path))

    monkeypatch.setattr(RunLock, "_create", read_only_create)
    run = copy_run(finished, tmp_path / "runs")
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    assert "read-only" in error_line(capsys.readouterr().err)


def test_resume_before_any_checkpoint_says_it_starts_over(
    finished: Path, tmp_path: Path, capsys
) -> None:
    """A run killed before its first last.pt: --resume says so and starts from epoch 1."""
    run = tmp_path / "runs" / finished.name
    run.mkdir(parents=True)
    shutil.copy2(finished / "config.toml", run / "config.toml")
    first_start = next(e for e in read_events(finished) if e["type"] == "start")
    (run / EVENTS).write_text(json.dumps(first_start) + "\n")
    assert main(["train", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"{run}: no checkpoint was written yet: starting from epoch 1" in err
    starts = [e for e in read_events(run) if e["type"] == "start"]
    assert starts[-1]["start_epoch"] == 1 and read_run(run).status() == "finished"
    warning = next(e for e in read_events(run) if e["type"] == "warning")
    assert "no checkpoint was written yet" in warning["message"]


def test_a_run_that_cannot_fit_is_refused_before_its_dir_is_made(
    config: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr("fer_tui.space.free_bytes", lambda path: 50 << 20)
    runs = tmp_path / "runs"
    assert train(config, tiny_data, runs) == 2
    line = error_line(capsys.readouterr().err)
    assert f"not enough space for a run of resnet18 in {runs.absolute()}" in line
    assert "50.0 MiB free" in line
    assert not runs.exists() or list(runs.iterdir()) == []


# --- evaluate and export ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "best.pt")


@pytest.mark.parametrize("flag", ["--json", "--markdown", "--predictions"])
@pytest.mark.parametrize(("code", "said"), FAULTS)
def test_evaluate_outputs_on_a_failing_disk(
    ckpt: Path, tiny_data: Path, tmp_path: Path, fail_fsync, capsys, flag: str, code, said
) -> None:
    out = tmp_path / "out" / "report.txt"
    out.parent.mkdir()
    fail_fsync(code)
    argv = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data), flag, str(out)]
    assert main([*argv, "--no-cache"]) == 2
    line = error_line(capsys.readouterr().err)
    assert said in line.lower() and str(out) in line
    assert list(out.parent.iterdir()) == []


def test_evaluate_json_to_a_really_full_disk(
    ckpt: Path, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    with small_tmpfs(tmp_path / "small", "1m") as small:
        (small / f".report.json.{dead_pid()}-abcd1234.tmp").write_text("a killed one's")
        fill(small)
        out = small / "report.json"
        argv = ["evaluate", "--checkpoint", str(ckpt), "--data", str(tiny_data)]
        assert main([*argv, "--json", str(out)]) == 2
        line = error_line(capsys.readouterr().err)
        assert f"cannot write {out}: no space left on the device" in line
        assert sorted(p.name for p in small.iterdir()) == ["filler"]


@pytest.mark.parametrize(("code", "said"), FAULTS)
def test_export_on_a_failing_disk_leaves_no_temp_file(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, code, said
) -> None:
    pytest.importorskip("onnx")
    import fer_tui.export as export

    def attach(path: Path, meta: dict) -> None:
        assert path.exists()  # the exporter wrote its temp file; the disk fails after it
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(export, "_attach_meta", attach)
    out = tmp_path / "exports" / "model.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--output", str(out)]) == 2
    line = error_line(capsys.readouterr().err)
    assert said in line.lower() and str(out) in line
    assert list(out.parent.iterdir()) == []


def test_export_to_a_really_full_disk_is_refused_and_old_leftovers_go(
    ckpt: Path, tmp_path: Path, capsys
) -> None:
    """A 2 MiB tmpfs cannot take a 45 MB ONNX: refused up front; the `NAME.onnx.tmp` an older
    version's killed export left there is removed."""
    pytest.importorskip("onnx")
    with small_tmpfs(tmp_path / "small", "2m") as small:
        out = small / "model.onnx"
        legacy = small / "model.onnx.tmp"
        legacy.write_bytes(b"\0" * 1000)
        os.utime(legacy, (1, 1))
        assert main(["export", "--checkpoint", str(ckpt), "--output", str(out)]) == 2
        line = error_line(capsys.readouterr().err)
        assert f"not enough space for {out}" in line
        assert list(small.iterdir()) == []


@pytest.mark.parametrize(("fmt", "name"), [("onnx", "model.onnx"), ("torchscript", "model.pt")])
def test_export_that_fills_a_really_full_disk(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, fmt: str, name: str
) -> None:
    """With the free-space check out of the way, the disk fills in the middle of the export:
    one line (not a crash of torch's own writer), and nothing left on the disk."""
    if fmt == "onnx":
        pytest.importorskip("onnx")
    monkeypatch.setattr("fer_tui.space.check_free_space", lambda *a: None)
    with small_tmpfs(tmp_path / "small", "2m") as small:
        out = small / name
        argv = ["export", "--format", fmt, "--checkpoint", str(ckpt), "--output", str(out)]
        assert main(argv) == 2
        line = error_line(capsys.readouterr().err)
        assert f"cannot write {out}: no space left on the device" in line
        assert list(small.iterdir()) == []
