"""Start, stop and resume trainers as detached background processes (no torch, no textual).

The TUI never owns a trainer: it spawns `python -m fer_tui train ...` (TRAINER) in its own
session (so closing the TUI or losing the SSH connection does not stop it), with stdin from
/dev/null and stdout/stderr to `<runs_dir>/launch-<stamp>.log`, and then only watches the run dirs.
Each trainer child writes its pid into its run's `run.lock`; stopping a run is SIGTERM to
that pid. Everything that can be checked before spawning is checked here, so a bad config,
an unwritable runs dir or `--device cuda` on a machine without a GPU is an error on screen,
not a silent dead child.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fer_tui.config import ARCHS, load_config
from fer_tui.errors import ConfigError, DataError, RunError
from fer_tui.runs import (
    CONFIG,
    EVENTS,
    ensure_runs_dir,
    read_config,
    read_run,
    running_pid,
)
from fer_tui.space import check_run_space


def fer_tui_command(subcommand: str) -> list[str]:
    """`python -m fer_tui <subcommand>` with this interpreter: how fer-tui starts itself in a
    child process (a trainer, the live pipeline), before the subcommand's arguments."""
    return [sys.executable, "-m", "fer_tui", subcommand]


#: The trainer command line, before its arguments: what the TUI starts, and what `--arch all`
#: starts once per arch. Tests point it at a fake trainer.
TRAINER: list[str] = fer_tui_command("train")

DEVICES = ("auto", "cpu", "cuda")

#: Called from a reaper thread when a launched process exits: (pid, returncode, log path).
ExitCallback = Callable[[int, int, Path], None]


class NoGpuError(ConfigError):
    """`cuda` was asked for on a machine without an NVIDIA GPU (the screen offers CPU)."""


def gpu_available() -> bool:
    """True if an NVIDIA driver is visible; cheap, and never imports torch."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def default_recipe(device: str | None = None) -> str:
    """The recipe (a file name in configs/) for where a run will train: the GPU one
    (scratch.toml) where an NVIDIA driver is visible and the device is not forced to the CPU,
    the 2-core one (cpu.toml) elsewhere."""
    on_gpu = device == "cuda" or (device != "cpu" and gpu_available())
    return "scratch.toml" if on_gpu else "cpu.toml"


def _check_device(device: str | None, config_device: str) -> None:
    if device is not None and device not in DEVICES:
        raise ConfigError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    wanted = device if device is not None else config_device
    if wanted == "cuda" and not gpu_available():
        where = "device cuda was asked for" if device == "cuda" else "the config asks for cuda"
        raise NoGpuError(f"no GPU found ({where}); use device cpu (or auto) to train on the CPU")


def _spawn(argv: Sequence[str], log_path: Path, on_exit: ExitCallback | None) -> int:
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: survives the TUI and a dropped SSH link
            close_fds=True,
        )

    def reap() -> None:
        # wait() here keeps a finished trainer from lingering as a zombie of the TUI
        returncode = proc.wait()
        if on_exit is not None:
            on_exit(proc.pid, returncode, log_path)

    threading.Thread(target=reap, name=f"reap-{proc.pid}", daemon=True).start()
    return proc.pid


def _log_path(runs_dir: Path, what: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return runs_dir / f"launch-{stamp}-{what}.log"


def _one_or_all(archs: Sequence[str] | str) -> str:
    # the trainer takes one arch or "all" (one child process per arch)
    chosen = [archs] if isinstance(archs, str) else list(archs)
    if chosen == ["all"] or sorted(chosen) == sorted(ARCHS):
        return "all"
    if len(chosen) != 1:
        raise ConfigError("choose one arch or all three (the trainer takes one arch or all)")
    if chosen[0] not in ARCHS:
        raise ConfigError(f"unknown arch '{chosen[0]}': choose from {', '.join(ARCHS)} or all")
    return chosen[0]


def start_training(
    config_path: str | os.PathLike[str],
    archs: Sequence[str] | str,
    *,
    runs_dir: str | os.PathLike[str],
    device: str | None = None,
    epochs: int | None = None,
    data: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    on_exit: ExitCallback | None = None,
) -> int:
    """Validate, then spawn a detached trainer for `archs` ("all" or one arch); return its pid.

    `device` None keeps the config's `train.device`; "auto", "cpu" or "cuda" overrides it.

    Raises ConfigError (bad config, arch, epochs or limit; NoGpuError for cuda without a
    GPU), RunError (runs dir not writable) or DataError (a --data path that does not exist).
    """
    cfg = load_config(config_path)
    arch = _one_or_all(archs)
    if epochs is not None and epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be a positive number of images, got {limit}")
    _check_device(device, cfg.train.device)
    if data is not None and not Path(data).exists():
        raise DataError(f"dataset {data} does not exist: pass --data to your FER-2013 copy")
    runs = ensure_runs_dir(runs_dir)
    check_run_space([cfg.for_arch(a) for a in (ARCHS if arch == "all" else [arch])], runs)

    argv = [*TRAINER, "--config", str(Path(config_path).absolute())]
    argv += ["--arch", arch]
    argv += ["--runs-dir", str(runs)]
    if device is not None:
        argv += ["--device", device]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    if limit is not None:
        argv += ["--limit", str(limit)]
    if data is not None:
        argv += ["--data", str(Path(data).absolute())]
    return _spawn(argv, _log_path(runs, arch), on_exit)


def stop_run(run_dir: str | os.PathLike[str]) -> int:
    """Ask the trainer of `run_dir` to stop (SIGTERM: it saves last.pt and says so); its pid."""
    run_dir = Path(run_dir)
    pid = running_pid(run_dir)
    if pid is None:
        raise RunError(f"run {run_dir.name} is not running: there is nothing to stop")
    ended = read_run(run_dir).ended
    if ended is not None:  # its last event is written; the process is only exiting
        raise RunError(f"run {run_dir.name} has already {ended}: there is nothing to stop")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise RunError(f"run {run_dir.name} has just exited: there is nothing to stop") from None
    except PermissionError:
        raise RunError(
            f"not allowed to signal pid {pid} training {run_dir.name}: it belongs to another user"
        ) from None
    return pid


def resume_run(
    run_dir: str | os.PathLike[str],
    *,
    device: str | None = None,
    data: str | os.PathLike[str] | None = None,
    on_exit: ExitCallback | None = None,
) -> int:
    """Spawn a detached trainer continuing a stopped, crashed or failed run; return its pid.

    Refused (RunError) while the run is being trained (a second start of the same run) and
    once it has finished. `device` None keeps the run's configured device.
    """
    run_dir = Path(run_dir).absolute()
    if not (run_dir / CONFIG).is_file() and not (run_dir / EVENTS).is_file():
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG} or {EVENTS})")
    pid = running_pid(run_dir)
    ended = read_run(run_dir).ended
    if pid is not None and ended is not None:
        raise RunError(
            f"run {run_dir.name} has {ended} and its trainer (pid {pid}) is still "
            f"exiting: try again in a moment"
        )
    if pid is not None:
        raise RunError(
            f"run {run_dir.name} is already running (pid {pid}): a second trainer on the "
            f"same run is refused; stop it first (x) or wait for it"
        )
    if ended == "finished":
        raise RunError(f"run {run_dir.name} has finished: start a new run instead (s)")
    cfg = read_config(run_dir)
    _check_device(device, cfg.train.device)
    if data is not None and not Path(data).exists():
        raise DataError(f"dataset {data} does not exist: pass --data to your FER-2013 copy")
    runs = ensure_runs_dir(run_dir.parent)
    argv = [*TRAINER, "--config", str(run_dir / CONFIG), "--resume", str(run_dir)]
    argv += ["--runs-dir", str(runs)]
    if device is not None:  # a flag is written into the run's config: only when asked
        argv += ["--device", device]
    if data is not None:
        argv += ["--data", str(Path(data).absolute())]
    return _spawn(argv, _log_path(runs, f"resume-{run_dir.name}"), on_exit)


def log_tail(path: str | os.PathLike[str], lines: int = 5) -> str:
    """The last few lines of a launch log (what a trainer said before it died early)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("$ ")]
    return "\n".join(kept[-lines:])
