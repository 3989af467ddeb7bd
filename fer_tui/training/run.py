"""One run in this process: the lock, the signals, and every failure as an `error` event."""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from fer_tui.config import RunConfig, to_toml
from fer_tui.errors import FerError, disk_error
from fer_tui.files import atomic_write_text, sweep_temp_files
from fer_tui.runs import BEST, CONFIG, EMA, LAST, EventWriter, RunLock, summarize
from fer_tui.training.arrays import prepare_arrays
from fer_tui.training.distributed import Dist, close_distributed
from fer_tui.training.trainer import Trainer


def fit_run(
    cfg: RunConfig, run_dir: Path, *, resume: bool, dist: Dist | None = None
) -> dict[str, Any]:
    """Lock the run dir, train, and turn every failure into an `error` event.

    The order matters for watchers: the lock (pid) comes first, so the run shows as running
    while the dataset loads; any error after that is an `error` event with its traceback.
    """
    dist = dist or Dist.from_env()
    lock = RunLock(run_dir) if dist.is_main else None
    if lock is not None:
        lock.acquire()
        try:
            # what a killed trainer of this run was writing; the lock says none runs now
            sweep_temp_files(run_dir, [LAST, BEST, EMA, CONFIG])
            # the resolved config (flags applied), written under the lock: a resume with
            # --epochs keeps the new total for the next resume too
            atomic_write_text(run_dir / CONFIG, to_toml(cfg))
        except OSError as exc:
            lock.release()
            raise disk_error(exc, run_dir / CONFIG) from None
        except BaseException:
            lock.release()
            raise
    trainer: Trainer | None = None
    stop_signal: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        stop_signal.append(name)
        if trainer is not None:
            trainer.stop_signal = name
        else:
            # still loading: nothing to save yet, so stop right away
            raise KeyboardInterrupt

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        from fer_tui.data.load import load_dataset

        data = load_dataset(cfg.data.path)
        arrays = prepare_arrays(cfg, data)
        soft = _teacher_targets(cfg, data, arrays, show=dist.is_main)
        trainer = Trainer(cfg, run_dir, arrays, dist=dist, progress=True, soft_targets=soft)
        if stop_signal:
            trainer.stop_signal = stop_signal[-1]
        if resume and (run_dir / LAST).exists():
            trainer.load(run_dir / LAST)
        else:
            if resume:
                _no_checkpoint_yet(run_dir, dist)
            if cfg.model.init_from:
                trainer.start_from(cfg.model.init_from)
        summary = trainer.fit(resume=resume)
        summary["val_acc"] = summarize(run_dir)["val_acc"] if dist.is_main else None
        return summary
    except KeyboardInterrupt:
        _error_event(run_dir, dist, "stopped", reason=stop_signal[-1] if stop_signal else "SIGINT")
        return {
            "run_dir": str(run_dir),
            "arch": cfg.archs[0],
            "status": "stopped",
            "signal": stop_signal[-1] if stop_signal else "SIGINT",
        }
    except FerError as exc:
        _error_event(run_dir, dist, "error", message=str(exc), traceback=traceback.format_exc())
        raise
    except OSError as exc:  # a full disk, a folder gone read-only: the cause, in one line
        error = disk_error(exc)
        _error_event(run_dir, dist, "error", message=str(error), traceback=traceback.format_exc())
        raise error from None
    except BaseException as exc:
        _error_event(
            run_dir,
            dist,
            "error",
            message=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        raise
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if trainer is not None:
            trainer.close()
        close_distributed(dist)
        if lock is not None:
            lock.release()


def _teacher_targets(cfg: RunConfig, data: Any, arrays: Any, *, show: bool) -> Any:
    """The teachers' probabilities for the faces the run trains on, or None without teachers.
    The first run with a set of teachers predicts the train split once (a bar on stderr)."""
    if not cfg.distill.teachers:
        return None
    import sys

    from fer_tui.progress import ProgressBar
    from fer_tui.training.distill import teacher_probs

    bars: dict[str, ProgressBar] = {}  # one per teacher; the newest is the one drawn

    def progress(stage: str, done: int, total: int) -> None:
        if not show or not stage.startswith("predict ") or not total:
            return
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            name = f"teacher {stage.removeprefix('predict ')}"
            bars.clear()
            bars[stage] = ProgressBar(name, total, width=24, log_every=30.0)
        bars[stage].update(done)

    if show:
        print(f"teachers: {', '.join(cfg.distill.teachers)}", file=sys.stderr)
    probs = teacher_probs(cfg, data, arrays.train_rows, progress=progress)
    for bar in bars.values():
        bar.close()
    return probs


NO_CHECKPOINT_YET = "no checkpoint was written yet: starting from epoch 1"


def _no_checkpoint_yet(run_dir: Path, dist: Dist) -> None:
    """Say that a resume starts over: the run never saved an epoch (or its last.pt is gone)."""
    if not dist.is_main:
        return
    print(f"{run_dir}: {NO_CHECKPOINT_YET}", file=sys.stderr)
    _error_event(run_dir, dist, "warning", message=f"resumed, but {NO_CHECKPOINT_YET}")


def _error_event(run_dir: Path, dist: Dist, kind: str, **fields: Any) -> None:
    if not dist.is_main:
        return
    try:
        with EventWriter(run_dir) as events:
            if kind == "stopped":
                events.write("stopped", epoch=0, step_in_epoch=0, **fields)
            else:
                events.write(kind, **fields)
    except OSError:
        pass  # the run dir itself is the problem; the message still reaches stderr
