"""TensorBoard scalars of a run, made from its events: `tensorboard --logdir runs` then compares
fer-tui's runs with each other and with other tools' runs.

`events.jsonl` stays the one source of truth: the scalars are a view of it, written under
`RUN/tensorboard/` as the trainer writes its events (when the `tensorboard` package is installed:
`pip install 'fer-tui[tensorboard]'`), or afterwards from the events of a run made before
(`fer-tui tensorboard RUN`, `convert_run`). Scalars and their steps:

    train/loss, train/acc, train/lr, train/img_per_s
        each logging window of `step` events; step = the optimizer step since the run began
    epoch/train_loss, epoch/train_acc, epoch/val_loss, epoch/val_acc (the holdout or the test
    split, as the config's data.val says), epoch/val_loss_ema, epoch/val_acc_ema (a run with a
    moving average of its weights), epoch/lr, epoch/img_per_s, epoch/seconds,
    epoch/train_image_size (progressive resizing)
        each `epoch` event; step = the epoch (1-based)

Accuracies are fractions (0-1), as in the events. A failure to write scalars (a full disk, a
broken install) never stops training: the live writer warns once and falls silent. Nothing here
imports torch or textual; the tensorboard package is imported only when scalars are written.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fer_tui.errors import FerError

#: The folder of a run that holds its TensorBoard event files.
LOGDIR = "tensorboard"
#: Set to 0 to keep a trainer from writing scalars as it goes.
ENV_SWITCH = "FER_TUI_TENSORBOARD"
#: TensorBoard's own prefix for event files: what `convert_run` replaces.
FILE_PREFIX = "events.out.tfevents."

#: event key -> tag, for each logging window (`step` events) and each epoch (`epoch` events).
STEP_TAGS: dict[str, str] = {
    "loss": "train/loss",
    "acc": "train/acc",
    "lr": "train/lr",
    "img_per_s": "train/img_per_s",
}
EPOCH_TAGS: dict[str, str] = {
    "train_loss": "epoch/train_loss",
    "train_acc": "epoch/train_acc",
    "val_loss": "epoch/val_loss",
    "val_acc": "epoch/val_acc",
    "val_loss_ema": "epoch/val_loss_ema",
    "val_acc_ema": "epoch/val_acc_ema",
    "lr": "epoch/lr",
    "img_per_s": "epoch/img_per_s",
    "seconds": "epoch/seconds",
    "train_image_size": "epoch/train_image_size",
}

INSTALL_HINT = "pip install 'fer-tui[tensorboard]'"


def available() -> bool:
    """True when the tensorboard package is installed (nothing is imported)."""
    return importlib.util.find_spec("tensorboard") is not None


def scalars(event: dict[str, Any]) -> list[tuple[str, float, int]]:
    """The (tag, value, step) scalars of one event; none for events that carry no curve."""
    kind = event.get("type")
    if kind == "step":
        tags, step = STEP_TAGS, event.get("step")
    elif kind == "epoch":
        tags, step = EPOCH_TAGS, event.get("epoch")
    else:
        return []
    if not isinstance(step, int) or isinstance(step, bool):
        return []
    out = []
    for key, tag in tags.items():
        value = event.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((tag, float(value), step))
    return out


def replay(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events whose curves a reader sees, in order: a resume (a `start` with start_epoch k)
    drops what the run logged for epoch k and later before it stopped, as RunState does."""
    kept: list[dict[str, Any]] = []
    for event in events:
        if event.get("type") == "start":
            start_epoch = int(event.get("start_epoch") or 1)
            kept = [e for e in kept if int(e.get("epoch") or 0) < start_epoch]
        elif scalars(event):
            kept.append(event)
    return kept


class ScalarWriter:
    """One TensorBoard event file in `RUN/tensorboard/`, fed one fer-tui event at a time.

    `strict` (for `convert_run`): errors propagate. Otherwise (the trainer's) the first error is
    reported once on stderr and every later call does nothing: scalars never stop a run.
    """

    def __init__(
        self, run_dir: str | os.PathLike[str], *, flush_secs: float = 10.0, strict: bool = False
    ) -> None:
        self.logdir = Path(run_dir) / LOGDIR
        self.flush_secs = flush_secs
        self.strict = strict
        self.failed = False
        self.written = 0
        self._writer: Any = None
        """tensorboard's EventFileWriter, opened with the first scalar (no empty files)."""

    def _open(self) -> Any:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.logdir.mkdir(parents=True, exist_ok=True)
        return EventFileWriter(str(self.logdir), max_queue_size=100, flush_secs=self.flush_secs)

    def _fail(self, exc: BaseException) -> None:
        if self.strict:
            raise exc
        if not self.failed:
            print(
                f"fer-tui: TensorBoard scalars stop here ({type(exc).__name__}: {exc}); the "
                f"run goes on, and `fer-tui tensorboard {self.logdir.parent}` writes them later "
                f"from its events",
                file=sys.stderr,
            )
        self.failed = True
        self._writer = None

    def add(self, event: dict[str, Any]) -> None:
        """Write the scalars of `event` (flushed at once for an epoch's end)."""
        if self.failed:
            return
        try:
            values = scalars(event)
            if not values:
                return
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary

            if self._writer is None:
                self._writer = self._open()
            wall = event.get("t")
            wall = float(wall) if isinstance(wall, (int, float)) else time.time()
            for tag, value, step in values:
                summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
                self._writer.add_event(Event(wall_time=wall, step=step, summary=summary))
                self.written += 1
            if event.get("type") == "epoch":
                self._writer.flush()
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as exc:
            self._fail(exc)


def live_writer(run_dir: str | os.PathLike[str]) -> ScalarWriter | None:
    """The scalar writer a trainer feeds its events to, or None: tensorboard is not installed,
    or FER_TUI_TENSORBOARD=0."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    return ScalarWriter(run_dir) if available() else None


def require() -> None:
    """A FerError naming the install when the tensorboard package is missing."""
    if not available():
        raise FerError(f"TensorBoard scalars need the tensorboard package: {INSTALL_HINT}")


def convert_run(run_dir: str | os.PathLike[str]) -> tuple[Path, int]:
    """Write the scalars of a run's events anew into `RUN/tensorboard/` (replacing the event
    files there); (that folder, how many scalars)."""
    from fer_tui.runs import EVENTS, read_events

    require()
    run_dir = Path(run_dir)
    if not (run_dir / EVENTS).is_file():
        raise FerError(f"{run_dir} is not a run directory: it has no {EVENTS}")
    logdir = run_dir / LOGDIR
    if logdir.is_dir():
        for old in logdir.iterdir():
            if old.name.startswith(FILE_PREFIX) and old.is_file():
                old.unlink()
    writer = ScalarWriter(run_dir, flush_secs=3600.0, strict=True)
    try:
        for event in replay(read_events(run_dir)):
            writer.add(event)
    finally:
        writer.close()
    if writer.written == 0 and logdir.is_dir() and not any(logdir.iterdir()):
        shutil.rmtree(logdir, ignore_errors=True)
    return logdir, writer.written
