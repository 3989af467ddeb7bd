"""A stand-in for `python -m fer_tui train`: same flags, same run dirs and events, no torch.

It makes the launch and Training-screen tests fast and deterministic. Each epoch is
`FAKE_STEPS` steps of `FAKE_STEP_S` seconds; SIGTERM finishes the step, writes `stopped` and
exits, as the real trainer does. `FAKE_FAIL=1` writes an `error` event after the first epoch.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from fer_tui.config import ARCHS, load_config
from fer_tui.runs import CONFIG, EventWriter, RunLock, new_run_dir, read_run

stop_requested = False


def _on_term(signum: int, frame: object) -> None:
    global stop_requested
    stop_requested = True


def train_one(run_dir: Path, arch: str, epochs: int, start_epoch: int) -> int:
    steps = int(os.environ.get("FAKE_STEPS", "4"))
    step_s = float(os.environ.get("FAKE_STEP_S", "0.05"))
    with RunLock(run_dir), EventWriter(run_dir) as events:
        events.write(
            "start",
            arch=arch,
            recipe="fake",
            epochs=epochs,
            start_epoch=start_epoch,
            steps_per_epoch=steps,
            resumed=start_epoch > 1,
            config={},
            env={"device": "cpu"},
        )
        for epoch in range(start_epoch, epochs + 1):
            t0 = time.time()
            for i in range(1, steps + 1):
                time.sleep(step_s)
                events.write(
                    "step",
                    epoch=epoch,
                    step=(epoch - 1) * steps + i,
                    step_in_epoch=i,
                    steps_per_epoch=steps,
                    loss=2.0 / (epoch + i / steps),
                    lr=0.1,
                    img_per_s=1000.0,
                )
                if stop_requested:
                    events.write("stopped", epoch=epoch - 1, reason="SIGTERM")
                    return 0
            seconds = time.time() - t0
            val_acc = 0.3 + 0.4 * (1 - math.exp(-epoch / 3))
            events.write(
                "epoch",
                epoch=epoch,
                epochs=epochs,
                train_loss=2.0 / epoch,
                train_acc=val_acc + 0.05,
                val_loss=2.1 / epoch,
                val_acc=val_acc,
                lr=0.1 / epoch,
                seconds=seconds,
                img_per_s=1000.0,
                eta_seconds=seconds * (epochs - epoch),
                best_metric=val_acc,
                best_epoch=epoch,
            )
            if os.environ.get("FAKE_FAIL") == "1":
                events.write(
                    "error",
                    message="CUDA out of memory (fake)",
                    traceback="Traceback ...\nRuntimeError: CUDA out of memory (fake)",
                )
                return 1
        events.write(
            "end", epoch=epochs, best_metric=val_acc, best_epoch=epochs, seconds=seconds * epochs
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--arch", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--resume", default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_term)
    cfg = load_config(args.config)
    if args.resume:
        state = read_run(args.resume)
        return train_one(Path(args.resume), state.arch, state.epochs, state.epoch + 1)
    archs = list(ARCHS) if args.arch == "all" else [args.arch or cfg.archs[0]]
    epochs = args.epochs or cfg.train.epochs
    run_dirs = []
    for arch in archs:
        run_dir = new_run_dir(args.runs_dir, arch)
        shutil.copy(args.config, run_dir / CONFIG)
        run_dirs.append((run_dir, arch))
    for run_dir, arch in run_dirs:
        rc = train_one(run_dir, arch, epochs, 1)
        if rc or stop_requested:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
