"""Run directories: the API between the trainer process and everything that watches it.

A run is one model trained by one config. Its directory, `runs/<YYYYmmdd-HHMMSS>-<arch>/`, holds:

    config.toml    the resolved config (one arch), written once at start
    events.jsonl   append-only, one JSON object per line, flushed each line
    last.pt        checkpoint after the last completed epoch (atomic replace)
    best.pt        checkpoint with the best validation metric so far
    ema.pt         the moving average of the weights after the last epoch (train.ema_decay > 0)
    stdout.log     the trainer's stdout/stderr when started detached
    run.lock       the trainer's pid while it runs
    tensorboard/   TensorBoard scalars made from the events (fer_tui.tensorboard), when the
                   tensorboard package is installed

Every event line is `{"v": 1, "t": <unix seconds>, "type": <type>, ...}`; non-finite numbers are
written as null. Types and their keys:

    start    arch, recipe, epochs, start_epoch, steps_per_epoch, resumed, precision
             ("bf16", "fp16" or "fp32": what autocast computed in), precision_speeds (only
             where `auto` timed them on the CPU: {"bf16": img/s, "fp32": img/s}), config, env
    step     epoch, step, step_in_epoch, steps_per_epoch, loss, acc (training accuracy over
             the logging window; not in older runs), lr, img_per_s
    epoch    epoch (1-based, completed), epochs, train_loss, train_acc, val_loss, val_acc,
             lr, seconds (train + eval), train_seconds, eval_seconds, img_per_s (training
             images / train_seconds), eta_seconds, best_metric, best_epoch; with an EMA also
             val_loss_ema, val_acc_ema; with progressive resizing train_image_size
    end      epoch, best_metric, best_epoch, seconds
    stopped  epoch (completed), step_in_epoch (steps of the next one saved), reason
    error    message, traceback
    warning  message (the run goes on: e.g. a resume that cannot continue a random stream)

A resumed run appends a new `start` (resumed = true, start_epoch = last epoch + 1) to the same
file, so the curve continues. Nothing here imports torch or textual.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tui.config import RunConfig, load_config
from fer_tui.errors import RunError, disk_error
from fer_tui.files import pid_alive
from fer_tui.tensorboard import live_writer

EVENTS = "events.jsonl"
CONFIG = "config.toml"
LOCK = "run.lock"
LAST = "last.pt"
BEST = "best.pt"
EMA = "ema.pt"
STDOUT = "stdout.log"
SCHEMA_VERSION = 1

#: Run statuses as the TUI shows them.
STATUSES = ("running", "finished", "failed", "stopped", "crashed", "pending")


# --- run directory ------------------------------------------------------------------------


def ensure_runs_dir(runs_dir: str | os.PathLike[str]) -> Path:
    """Create `runs_dir` if needed and check it is writable; return it absolute."""
    path = Path(runs_dir).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(
            f"cannot create the runs directory {path} ({exc.strerror}): "
            f"pass --runs-dir to a folder you can write"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunError(
            f"the runs directory {path} is not writable: pass --runs-dir to a folder you can write"
        )
    return path


def new_run_dir(runs_dir: str | os.PathLike[str], arch: str, now: float | None = None) -> Path:
    """Create and return a fresh `<runs_dir>/<YYYYmmdd-HHMMSS>-<arch>` (suffixed if taken)."""
    runs_dir = ensure_runs_dir(runs_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for i in range(1000):
        name = f"{stamp}-{arch}" + (f"-{i}" if i else "")
        try:
            (runs_dir / name).mkdir()
            return runs_dir / name
        except FileExistsError:
            continue
    raise RunError(f"could not create a run directory under {runs_dir}")


def list_runs(runs_dir: str | os.PathLike[str]) -> list[Path]:
    """Run directories under `runs_dir` (those with a config or events file), oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [
        p
        for p in runs_dir.iterdir()
        if p.is_dir() and ((p / EVENTS).exists() or (p / CONFIG).exists())
    ]
    return sorted(found, key=lambda p: p.name)


# --- lock ---------------------------------------------------------------------------------


def read_lock(run_dir: str | os.PathLike[str]) -> int | None:
    """The pid in `run.lock`, or None when there is no readable lock."""
    try:
        return int(Path(run_dir, LOCK).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running_pid(run_dir: str | os.PathLike[str]) -> int | None:
    """The pid of the trainer training `run_dir` right now, or None: the one place that says
    whether a run's trainer is alive (its `run.lock` names a live process)."""
    pid = read_lock(run_dir)
    return pid if pid is not None and pid_alive(pid) else None


class RunLock:
    """`run.lock` holding the trainer's pid: one trainer per run dir.

    A lock whose pid is dead (the trainer was killed) is stale and is taken over.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK
        self.held = False

    def acquire(self) -> None:
        for _ in range(3):
            try:
                self._create()
                return
            except FileExistsError:
                pid = read_lock(self.path.parent)
                if pid is not None and pid != os.getpid() and pid_alive(pid):
                    raise RunError(
                        f"run {self.path.parent} is already being trained by pid {pid}: "
                        f"stop it first (fer-tui's Training screen, or kill {pid})"
                    ) from None
                try:
                    self.path.unlink(missing_ok=True)  # stale: its trainer is gone
                except OSError as exc:
                    raise disk_error(exc, self.path) from None
            except OSError as exc:  # a read-only copy of a run, a full disk, no permission
                raise disk_error(exc, self.path) from None
        raise RunError(f"could not take the lock {self.path}")

    def _create(self) -> None:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        self.held = True

    def release(self) -> None:
        if self.held and read_lock(self.path.parent) == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --- events -------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class EventWriter:
    """Appends events to `events.jsonl`: one line each, in one write; fsynced on epoch/end.

    A write that fails (a full disk) raises OSError naming the file and leaves at most a torn
    line, which readers skip and the next line starts after."""

    DURABLE = frozenset({"start", "epoch", "end", "stopped", "error"})

    def __init__(self, run_dir: str | os.PathLike[str], tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / EVENTS
        # each event's scalars also go to RUN/tensorboard/ when tensorboard is installed
        self.scalars = live_writer(run_dir) if tensorboard else None
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            # a trainer killed mid-line left a torn last line: end it, or the next event (a
            # resume's `start`) would be glued to it and lost to every reader
            with open(self.path, "rb") as f:
                self._torn = False
                if f.seek(0, os.SEEK_END) > 0:
                    f.seek(-1, os.SEEK_END)
                    self._torn = f.read(1) != b"\n"
        except OSError as exc:
            self.close()
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def write(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"v": SCHEMA_VERSION, "t": time.time(), "type": type, **fields}
        line = json.dumps(_finite(event), allow_nan=False, default=str) + "\n"
        data = ("\n" if self._torn else "") + line
        self._append(data.encode("utf-8"), durable=type in self.DURABLE)
        if self.scalars is not None:
            self.scalars.add(event)  # never raises
        return event

    def _append(self, data: bytes, *, durable: bool) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        try:
            view = memoryview(data)
            while view:
                self._torn = True  # until the whole line is in
                view = view[os.write(self._fd, view) :]
            self._torn = False
            if durable:
                os.fsync(self._fd)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)
        scalars, self.scalars = getattr(self, "scalars", None), None
        if scalars is not None:
            scalars.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventTail:
    """Reads only the new complete lines of an events file, however often it is polled.

    Survives a file that does not exist yet, a torn last line (kept until its newline
    arrives), a bad line (skipped), and the file or its run dir being deleted.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.offset = 0
        self._partial = b""
        self._inode: int | None = None

    def read_new(self, max_bytes: int = 8 << 20) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                replaced = self._inode is not None and st.st_ino != self._inode
                if replaced or st.st_size < self.offset:
                    self.offset, self._partial = 0, b""  # replaced or truncated: start over
                self._inode = st.st_ino
                f.seek(self.offset)
                chunk = f.read(max_bytes)
        except (FileNotFoundError, NotADirectoryError):
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events


def read_events(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All complete events of a run (a torn last line is ignored)."""
    # read in chunks: `f.read(n)` allocates n bytes up front, so one huge read fails
    tail, events = EventTail(Path(run_dir) / EVENTS), []
    while chunk := tail.read_new():
        events += chunk
    return events


# --- state --------------------------------------------------------------------------------


@dataclass
class RunState:
    """A small snapshot of a run, reduced from its events; memory stays bounded."""

    run_dir: Path
    arch: str = "?"
    recipe: str = "?"
    epochs: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    steps_per_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    recent_steps: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))
    best_metric: float | None = None
    best_epoch: int | None = None
    img_per_s: float | None = None
    eta_seconds: float | None = None
    started_t: float | None = None
    resumed_t: float | None = None
    """Time of the latest `start` event (the first one, or the last resume)."""
    last_t: float | None = None
    ended: str | None = None
    """"finished", "stopped" or "failed" once the trainer said so; None while it may run."""
    stop_reason: str | None = None
    """The signal that stopped the run ("SIGTERM", "SIGINT") when `ended` is "stopped"."""
    error: str | None = None
    traceback: str | None = None
    device: str | None = None
    precision: str | None = None
    """"bf16", "fp16" or "fp32" as the latest `start` said (None before any, or from old runs)."""
    max_history: int = 1000

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        t = event.get("t")
        self.last_t = t if isinstance(t, (int, float)) else self.last_t
        if kind == "start":
            self.arch = event.get("arch", self.arch)
            self.recipe = event.get("recipe", self.recipe)
            self.epochs = event.get("epochs") or self.epochs
            self.steps_per_epoch = event.get("steps_per_epoch") or self.steps_per_epoch
            self.device = (event.get("env") or {}).get("device", self.device)
            self.precision = event.get("precision", self.precision)
            if self.started_t is None:
                self.started_t = t
            self.resumed_t = t
            start_epoch = int(event.get("start_epoch") or 1)
            # a resume continues after the last completed epoch: drop anything newer
            self.history = [h for h in self.history if h.get("epoch", 0) < start_epoch]
            self.epoch = start_epoch - 1
            self.step_in_epoch = 0
            self.ended, self.error, self.traceback = None, None, None
            self.stop_reason = None
        elif kind == "step":
            self.step_in_epoch = event.get("step_in_epoch", self.step_in_epoch)
            self.steps_per_epoch = event.get("steps_per_epoch") or self.steps_per_epoch
            self.img_per_s = event.get("img_per_s", self.img_per_s)
            self.recent_steps.append(event)
        elif kind == "epoch":
            self.epoch = int(event.get("epoch", self.epoch + 1))
            self.epochs = event.get("epochs") or self.epochs
            self.step_in_epoch = 0
            self.history = [h for h in self.history if h.get("epoch", 0) < self.epoch]
            self.history.append({k: v for k, v in event.items() if k not in ("v", "type")})
            del self.history[: -self.max_history]
            self.best_metric = event.get("best_metric", self.best_metric)
            self.best_epoch = event.get("best_epoch", self.best_epoch)
            self.eta_seconds = event.get("eta_seconds")
            self.img_per_s = event.get("img_per_s", self.img_per_s)
        elif kind == "end":
            self.ended = "finished"
            self.best_metric = event.get("best_metric", self.best_metric)
            self.best_epoch = event.get("best_epoch", self.best_epoch)
            self.eta_seconds = 0.0
        elif kind == "stopped":
            self.ended = "stopped"
            self.step_in_epoch = event.get("step_in_epoch", self.step_in_epoch)
            self.stop_reason = event.get("reason")
            self.eta_seconds = None
        elif kind == "error":
            self.ended = "failed"
            self.error = event.get("message") or "the trainer failed without a message"
            self.traceback = event.get("traceback")
            self.eta_seconds = None

    def status(self, pid_is_alive: bool | None = None) -> str:
        """One of STATUSES: what the trainer said last, else running while its pid lives
        (`pid_is_alive`, or the lock checked now), else crashed after an event, else pending."""
        if self.ended:
            return self.ended
        alive = pid_is_alive if pid_is_alive is not None else running_pid(self.run_dir) is not None
        if alive:
            return "running"
        return "crashed" if self.last_t is not None else "pending"

    @property
    def elapsed_seconds(self) -> float:
        return float(sum(h.get("seconds") or 0.0 for h in self.history))

    def series(self, key: str) -> list[float]:
        """Per-epoch values of `key` (e.g. "val_acc"), missing values as nan."""
        return [float(h[key]) if h.get(key) is not None else math.nan for h in self.history]


class RunWatcher:
    """Keeps a RunState up to date by tailing one run's events file."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.state = RunState(self.run_dir)
        self._tail = EventTail(self.run_dir / EVENTS)

    def poll(self) -> bool:
        """Read new events; True if any arrived."""
        events = self._tail.read_new()
        for event in events:
            self.state.apply(event)
        return bool(events)


def read_run(run_dir: str | os.PathLike[str]) -> RunState:
    """The state of a run from all its events."""
    watcher = RunWatcher(run_dir)
    watcher.poll()
    return watcher.state


def iter_run_states(runs_dir: str | os.PathLike[str]) -> Iterator[RunState]:
    for run_dir in list_runs(runs_dir):
        yield read_run(run_dir)


def read_config(run_dir: str | os.PathLike[str]) -> RunConfig:
    """The run's resolved config (its config.toml); ConfigError when missing or unreadable."""
    return load_config(Path(run_dir) / CONFIG)


def summarize(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run in a few numbers, as `fer-tui train --json` prints it: run_dir, arch, status (one
    of STATUSES), best_metric, best_epoch, epochs (completed), seconds (of those epochs),
    val_acc (of the last one), and the signal when it was stopped."""
    run_dir = Path(run_dir)
    state = read_run(run_dir)
    last = state.history[-1] if state.history else {}
    arch: str | None = state.arch if state.arch != "?" else None
    if arch is None and (run_dir / CONFIG).is_file():  # pending: never started
        arch = read_config(run_dir).archs[0]
    status = state.status()
    out: dict[str, Any] = {
        "run_dir": str(run_dir),
        "arch": arch,
        "status": status,
        "best_metric": last.get("best_metric"),
        "best_epoch": last.get("best_epoch"),
        "epochs": last.get("epoch", 0),
        "seconds": state.elapsed_seconds,
        "val_acc": last.get("val_acc"),
    }
    if status == "stopped" and state.stop_reason is not None:
        out["signal"] = state.stop_reason
    return out
