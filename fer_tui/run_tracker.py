"""What the Training screen shows of a run: a frozen RunView, and the RunTracker making them.

The tracker lives in the screen's tail worker thread: it rescans the runs dir now and then,
tails each run's events incrementally (RunWatcher), and returns a fresh RunView only for runs
whose view changed. RunViews are frozen and hold tuples, so handing one from the worker thread
to the UI thread is safe. Core code: no textual here (the TUI imports it, not the reverse).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

from fer_tui.errors import FerError
from fer_tui.runs import RunState, RunWatcher, list_runs, read_config, running_pid
from fer_tui.shipping import final_weights

#: The per-epoch series a RunView carries (keys of the `epoch` events).
SERIES = ("train_loss", "val_loss", "train_acc", "val_acc", "val_acc_ema", "seconds")


@dataclass(frozen=True)
class RunView:
    """One run as the screen shows it."""

    run_id: str
    run_dir: Path
    arch: str
    recipe: str
    status: str
    epoch: int
    epochs: int
    step_in_epoch: int = 0
    steps_per_epoch: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    elapsed_seconds: float = 0.0
    eta_seconds: float | None = None
    img_per_s: float | None = None
    lr: float | None = None
    device: str | None = None
    precision: str | None = None
    pid: int | None = None
    error: str | None = None
    traceback: str | None = None
    train_loss: tuple[float | None, ...] = ()
    val_loss: tuple[float | None, ...] = ()
    train_acc: tuple[float | None, ...] = ()
    val_acc: tuple[float | None, ...] = ()
    val_acc_ema: tuple[float | None, ...] = ()
    seconds: tuple[float | None, ...] = ()

    @property
    def group(self) -> str:
        """The start stamp `YYYYmmdd-HHMMSS` shared by the runs of one `--arch all` launch."""
        return self.run_id[:15]

    @property
    def progress(self) -> float:
        """Completed epochs, counting the current one's fraction done."""
        part = self.step_in_epoch / self.steps_per_epoch if self.steps_per_epoch else 0.0
        return min(float(self.epochs or self.epoch), self.epoch + min(part, 1.0))

    @property
    def epochs_text(self) -> str:
        return f"{self.epoch}/{self.epochs}" if self.epochs else f"{self.epoch}/?"

    @property
    def resumable(self) -> bool:
        return self.status in ("stopped", "crashed", "failed")

    def final_checkpoint(self) -> Path | None:
        """The weights that stand for the run (reads its files): see shipping.final_weights;
        for a run that has not finished, its last.pt."""
        return final_weights(self.run_dir, unfinished=self.status != "finished")

    @classmethod
    def from_state(
        cls, state: RunState, pid: int | None, now: float, config: tuple[str, int] | None = None
    ) -> RunView:
        """Snapshot `state`; `pid` is the live trainer's (None when none is running).

        `config` (recipe name, epochs) from the run's config.toml stands in for them until
        the trainer's `start` event says so (a run of an `--arch all` group waiting its turn).
        """
        status = state.status(pid_is_alive=pid is not None)
        elapsed = state.elapsed_seconds
        eta = state.eta_seconds
        # time since the last completed epoch (or the latest start) is not in the history:
        # a running run's goes on until now, an interrupted one's until its last event
        last_epoch_t = state.history[-1].get("t") if state.history else None
        marks = [t for t in (last_epoch_t, state.resumed_t) if isinstance(t, (int, float))]
        if status == "running":
            since = max(0.0, now - max(marks)) if marks else 0.0
            elapsed += since
            if eta is not None:
                eta = max(0.0, eta - since)
            else:
                eta = _eta_from_steps(state, now)
        elif status != "finished":
            if marks and state.last_t is not None:
                elapsed += max(0.0, state.last_t - max(marks))
            eta = None
        lr = None
        if state.recent_steps:
            lr = state.recent_steps[-1].get("lr")
        elif state.history:
            lr = state.history[-1].get("lr")
        series = {key: tuple(_finite_or_none(h.get(key)) for h in state.history) for key in SERIES}
        return cls(
            run_id=state.run_dir.name,
            run_dir=state.run_dir,
            arch=state.arch if state.arch != "?" else _arch_from_name(state.run_dir.name),
            recipe=state.recipe if state.recipe != "?" or config is None else config[0],
            status=status,
            epoch=state.epoch,
            epochs=int(state.epochs or (config[1] if config else 0)),
            step_in_epoch=int(state.step_in_epoch or 0),
            steps_per_epoch=int(state.steps_per_epoch or 0),
            best_metric=state.best_metric,
            best_epoch=state.best_epoch,
            elapsed_seconds=elapsed,
            eta_seconds=eta,
            img_per_s=state.img_per_s,
            lr=lr,
            device=state.device,
            precision=state.precision,
            pid=pid,
            error=state.error,
            traceback=state.traceback,
            **series,
        )


def _eta_from_steps(state: RunState, now: float) -> float | None:
    """A running run's ETA before it has finished an epoch (since its latest start): the steps
    left at the pace of its latest five logged steps. Per-epoch evaluation is not counted; the
    trainer's own ETA, from whole epochs, takes over after the first one."""
    recent = [
        e
        for e in list(state.recent_steps)[-5:]
        if isinstance(e.get("t"), (int, float))
        and isinstance(e.get("step"), int)
        and (state.resumed_t is None or e["t"] >= state.resumed_t)
    ]
    if len(recent) < 2 or not state.epochs or not state.steps_per_epoch:
        return None
    first, last = recent[0], recent[-1]
    dt, steps = last["t"] - first["t"], last["step"] - first["step"]
    if dt <= 0 or steps <= 0:
        return None
    left = state.epochs * state.steps_per_epoch - last["step"]
    return max(0.0, left * dt / steps - max(0.0, now - last["t"]))


def _finite_or_none(value: object) -> float | None:
    # None, not nan, for a missing value: nan != nan would make every view look changed
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _config_summary(run_dir: Path) -> tuple[str, int] | None:
    """(recipe name, epochs) from a run's config.toml, or None if it cannot be read."""
    try:
        cfg = read_config(run_dir)
    except (FerError, OSError):
        return None
    return cfg.name, cfg.train.epochs


def _arch_from_name(name: str) -> str:
    # before the first event arrives, the dir name `<stamp>-<arch>[-n]` is all we know
    for part in name.split("-"):
        if part.startswith("resnet"):
            return part
    return "?"


class RunTracker:
    """Follows every run under a runs dir; `poll()` returns the views that changed.

    Not thread-safe: one tail worker at a time uses it (the screen guards that).
    """

    def __init__(self, runs_dir: Path, rescan_interval: float = 3.0) -> None:
        self.runs_dir = Path(runs_dir)
        self.rescan_interval = rescan_interval
        self.watchers: dict[str, RunWatcher] = {}
        self.views: dict[str, RunView] = {}
        self._configs: dict[str, tuple[str, int] | None] = {}
        self._last_scan = -math.inf

    def rescan_soon(self) -> None:
        """Make the next poll rescan the runs dir (after starting a run)."""
        self._last_scan = -math.inf

    def poll(self, now: float | None = None) -> tuple[list[RunView], list[str]]:
        """Read new events of every run: (changed views, ids of runs that disappeared)."""
        now = time.time() if now is None else now
        removed: list[str] = []
        if time.monotonic() - self._last_scan >= self.rescan_interval:
            self._last_scan = time.monotonic()
            found = {p.name: p for p in list_runs(self.runs_dir)}
            for run_id, path in found.items():
                if run_id not in self.watchers:
                    self.watchers[run_id] = RunWatcher(path)
            for run_id in list(self.watchers):
                if run_id not in found:
                    removed.append(run_id)
                    del self.watchers[run_id]
                    self.views.pop(run_id, None)
                    self._configs.pop(run_id, None)
        changed: list[RunView] = []
        for run_id, watcher in self.watchers.items():
            if not watcher.run_dir.is_dir():
                continue  # deleted under us: the next rescan drops it
            watcher.poll()
            state = watcher.state
            pid = running_pid(watcher.run_dir) if state.ended is None else None
            config = None
            if state.last_t is None:  # no event yet: the config is all there is to show
                if run_id not in self._configs:
                    self._configs[run_id] = _config_summary(watcher.run_dir)
                config = self._configs[run_id]
            view = RunView.from_state(state, pid, now, config)
            if view.status == "running":
                # elapsed/ETA tick every poll; only re-send them once a second
                old = self.views.get(run_id)
                if old is not None and _same_but_clock(old, view):
                    continue
            if self.views.get(run_id) != view:
                self.views[run_id] = view
                changed.append(view)
        return changed, removed


def _same_but_clock(old: RunView, new: RunView) -> bool:
    same = replace(new, elapsed_seconds=old.elapsed_seconds, eta_seconds=old.eta_seconds) == old
    return same and int(old.elapsed_seconds) == int(new.elapsed_seconds)
