"""The trainer: one arch, one config, one run dir; `Trainer.fit` runs the epochs (the steps of
one epoch are in `fer_tui.training.epoch`).

The uint8 dataset goes to the device once; each step gathers a batch of indices, augments it
there (`fer_tui.augment`) and standardises it the way eval and live do; there is no DataLoader.
Every epoch's shuffle and augmentation come from generators seeded by (seed, epoch, rank).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_tui.augment import BatchAugment
from fer_tui.config import RunConfig
from fer_tui.data.index import CLASSES
from fer_tui.errors import ConfigError, FerError, RunError
from fer_tui.models import build_model, load_checkpoint, resolve_device
from fer_tui.paths import shipped_checkpoint
from fer_tui.precision import layer4_input_side, resolve_precision
from fer_tui.progress import duration
from fer_tui.runs import EventWriter
from fer_tui.training.arrays import Arrays
from fer_tui.training.checkpoints import BackgroundWriter, CheckpointState
from fer_tui.training.distributed import Dist, all_sum, broadcast, init_distributed
from fer_tui.training.epoch import EpochLoop, StopRequested, seed_for
from fer_tui.training.optim import WeightEMA, lr_lambda, make_optimizer
from fer_tui.training.speed_probe import cpu_precision_speeds, faster


def _env(device: torch.device, dist: Dist) -> dict[str, Any]:
    name = str(device)
    if device.type == "cuda":
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    return {
        "device": name,
        "torch": str(torch.__version__),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "world_size": dist.world,
        "threads": torch.get_num_threads(),
    }


class Trainer(EpochLoop, CheckpointState):
    """Trains one arch with one config into one run dir (rank 0 writes; others only compute)."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path | None,
        arrays: Arrays,
        *,
        device: torch.device | None = None,
        dist: Dist | None = None,
        progress: bool = False,
        soft_targets: np.ndarray | None = None,
    ) -> None:
        """`soft_targets`: the teachers' (N, 7) probabilities for arrays.train_x, row by row
        (`training.distill.teacher_probs`); None trains on the labels alone."""
        self.cfg = cfg
        self.arch = cfg.archs[0]
        self.dist = dist or Dist()
        self.run_dir = run_dir if self.dist.is_main else None
        self.device = init_distributed(self.dist, device or resolve_device(cfg.train.device))
        self.show_progress = progress and self.dist.is_main
        self.stop_signal: str | None = None
        t, m = cfg.train, cfg.model
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(seed_for(t.seed, 0))  # the initial weights: same on every rank
        model = build_model(
            self.arch,
            stem=m.stem,
            in_channels=m.in_channels,
            weights=m.weights,
            trainable=m.trainable,
            dropout=m.dropout,
        )
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer = make_optimizer(self.model, t)
        self.fingerprint = arrays.fingerprint
        # the data lives on the device for the whole run: ~66 MB of uint8 for FER-2013
        self.train_x = torch.from_numpy(np.ascontiguousarray(arrays.train_x)).to(self.device)
        self.train_y = torch.from_numpy(arrays.train_y.astype(np.int64)).to(self.device)
        self.val_x = torch.from_numpy(np.ascontiguousarray(arrays.val_x)).to(self.device)
        self.val_y = torch.from_numpy(arrays.val_y.astype(np.int64)).to(self.device)
        self.val_name = arrays.val_name
        self.teacher_logp: torch.Tensor | None = None
        """log of the teachers' probabilities per training face (distillation), on the device."""
        if soft_targets is not None:
            if len(soft_targets) != len(self.train_y):
                raise FerError(
                    f"{len(soft_targets)} teacher predictions for {len(self.train_y)} faces"
                )
            p = torch.from_numpy(np.ascontiguousarray(soft_targets, dtype=np.float32))
            self.teacher_logp = p.clamp_min(1e-8).log().to(self.device)
        n, world = len(self.train_y), self.dist.world
        if n < world:
            raise FerError(f"{n} training images cannot be shared by {world} processes")
        self.global_batch = t.batch_size * world
        # drop the last partial batch (a batch of 1 breaks BatchNorm) unless it is all there is
        self.steps_per_epoch = max(1, n // self.global_batch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(t, self.steps_per_epoch)
        )
        cuda_bf16 = self.device.type != "cuda" or torch.cuda.is_bf16_supported()
        smallest = min(m.image_size, t.low_res_size or m.image_size)
        self.precision = resolve_precision(
            t.amp,
            self.device.type,
            cuda_bf16=cuda_bf16,
            smallest_map=layer4_input_side(m.stem, smallest),
        )
        """What autocast computes in: "bf16", "fp16" or "fp32" (weights stay fp32)."""
        self.precision_speeds: dict[str, float] | None = None
        """Images/s of bf16 and fp32 timed on this CPU when `auto` had both to choose from."""
        if t.amp == "auto" and self.device.type == "cpu" and self.precision == "bf16":
            self._time_cpu_precisions()
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.use_amp = self.amp_dtype is not None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)
        self.augment = BatchAugment(cfg.augment, m.image_size)
        self.train_size = m.image_size
        """Side of the training inputs in the epoch in progress (see train_size_for)."""
        self.aug_gen = torch.Generator(device=self.device)
        self.net: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        # eval bypasses DDP (no collectives on uneven shards) but keeps the compiled graph
        self.eval_net: nn.Module = self.model
        if t.compile:
            self.net = torch.compile(self.net)
            self.eval_net = self.net if not self.dist.enabled else self.model
        self.ema = WeightEMA(self.model, t.ema_decay) if t.ema_decay > 0 else None
        self._resume_aug_state: torch.Tensor | None = None
        # progress of the run; a resume overwrites these from last.pt
        self.epoch = 0
        self.step_in_epoch = 0
        self.sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        """(loss sum, correct, images) of the epoch in progress, on this rank."""
        self.epoch_seconds = 0.0
        self.total_seconds = 0.0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.events: EventWriter | None = None
        self.writer = BackgroundWriter()

    def start_from(self, path: str | os.PathLike[str]) -> None:
        """Start from the weights of the fer-tui checkpoint at `path` (model.init_from): the
        model and its EMA; the optimizer and schedule start afresh."""
        m = self.cfg.model
        found = shipped_checkpoint(path)
        if not found.is_file():
            raise ConfigError(
                f"model.init_from: no checkpoint at {path}: train and ship that model first "
                f"(fer-tui ship RUN --name NAME), or point init_from at a checkpoint"
            )
        start, meta = load_checkpoint(found)
        ours = {"arch": self.arch, "stem": m.stem, "in_channels": m.in_channels}
        theirs = {k: meta.get(k) for k in ours}
        if theirs != ours:
            raise ConfigError(
                f"model.init_from: {path} is a {_model_text(theirs)}, this run trains a "
                f"{_model_text(ours)}: start from a checkpoint of the same model"
            )
        try:
            self.model.load_state_dict(start.state_dict())
        except RuntimeError as exc:  # e.g. a head with dropout against one without
            first = str(exc).splitlines()[1:2] or [str(exc)]
            raise ConfigError(
                f"model.init_from: {path} does not fit this run's model ({first[0].strip()}): "
                f"use the checkpoint's model settings (model.dropout)"
            ) from None
        if self.ema is not None:
            self.ema.load_state_dict(self.model.state_dict(), 0)

    def _time_cpu_precisions(self) -> None:
        """Native bf16 in the CPU flags does not always make bf16 faster than fp32: time both
        on this model and keep the faster (rank 0 decides for every rank)."""
        t, m = self.cfg.train, self.cfg.model
        if self.show_progress:
            print("timing bf16 against fp32 on this CPU...", file=sys.stderr)
        speeds = cpu_precision_speeds(
            self.model,
            batch=t.batch_size,
            side=m.image_size,
            channels=m.in_channels,
            classes=len(CLASSES),
            memory_format=self.memory_format,
        )
        choice = torch.tensor([speeds["bf16"], speeds["fp32"]], dtype=torch.float64)
        broadcast(choice, self.dist)
        self.precision_speeds = {"bf16": choice[0].item(), "fp32": choice[1].item()}
        self.precision = faster(self.precision_speeds)
        if self.show_progress:
            print(
                f"precision: {self.precision} (bf16 {self.precision_speeds['bf16']:,.0f} img/s, "
                f"fp32 {self.precision_speeds['fp32']:,.0f} img/s on this CPU)",
                file=sys.stderr,
            )

    # -- the run --------------------------------------------------------------------------

    def fit(self, *, resume: bool = False) -> dict[str, Any]:
        """Train from the current epoch to `train.epochs`; the summary of the run."""
        t = self.cfg.train
        start_epoch = self.epoch + 1
        if self.epoch >= t.epochs:
            raise RunError(
                f"the run already completed its {t.epochs} epochs: pass --epochs N "
                f"(more than {t.epochs}) to train it further"
            )
        if self.run_dir is not None:
            self.events = EventWriter(self.run_dir)
            self.events.write(
                "start",
                arch=self.arch,
                recipe=self.cfg.name,
                epochs=t.epochs,
                start_epoch=start_epoch,
                steps_per_epoch=self.steps_per_epoch,
                resumed=resume,
                precision=self.precision,
                **({"precision_speeds": self.precision_speeds} if self.precision_speeds else {}),
                config=_plain_config(self.cfg),
                env=_env(self.device, self.dist),
            )
        session_epochs: list[float] = []
        try:
            for epoch in range(start_epoch, t.epochs + 1):
                if self._should_stop():
                    raise StopRequested
                self.train_one_epoch(epoch)
                self._sync_buffers()
                train_seconds = self.epoch_seconds
                t0 = time.perf_counter()
                val_loss, val_acc = self.evaluate_epoch(self.val_x, self.val_y)
                ema_fields = {}
                if self.ema is not None:
                    ema_loss, ema_acc = self.evaluate_epoch(self.val_x, self.val_y, self.ema.model)
                    ema_fields = {"val_loss_ema": ema_loss, "val_acc_ema": ema_acc}
                eval_seconds = time.perf_counter() - t0
                self.epoch_seconds += eval_seconds
                loss_sum, correct, n = all_sum(self.sums.clone(), self.dist).tolist()
                self.epoch, self.step_in_epoch = epoch, 0
                self.total_seconds += self.epoch_seconds
                session_epochs.append(self.epoch_seconds)
                improved = self.best_metric is None or val_acc > self.best_metric
                if improved:
                    self.best_metric, self.best_epoch = val_acc, epoch
                mean_s = sum(session_epochs) / len(session_epochs)
                eta = mean_s * (t.epochs - epoch)
                if self.events is not None:
                    # the event goes first: a kill between it and last.pt repeats the epoch
                    # (readers drop the repeat on the resume's start), never leaves a gap
                    self.events.write(
                        "epoch",
                        epoch=epoch,
                        epochs=t.epochs,
                        train_loss=loss_sum / n,
                        train_acc=correct / n,
                        val_loss=val_loss,
                        val_acc=val_acc,
                        lr=self.optimizer.param_groups[0]["lr"],
                        seconds=self.epoch_seconds,
                        train_seconds=train_seconds,
                        eval_seconds=eval_seconds,
                        # training images over training time: evaluation is not in it
                        img_per_s=n / max(train_seconds, 1e-9),
                        eta_seconds=eta,
                        best_metric=self.best_metric,
                        best_epoch=self.best_epoch,
                        **ema_fields,
                        **({"train_image_size": self.train_size} if t.low_res_size else {}),
                    )
                    self.save_epoch_end(improved)
                if self.show_progress:
                    print(
                        f"{self.arch} epoch {epoch}/{t.epochs}: train loss {loss_sum / n:.4f} "
                        f"acc {correct / n:.4f} | {self.val_name} loss {val_loss:.4f} "
                        f"acc {val_acc:.4f} | {self.epoch_seconds:.1f}s"
                        + (f" | run ETA {duration(eta)}" if epoch < t.epochs else ""),
                        file=sys.stderr,
                    )
        except StopRequested:
            self.save_last()
            if self.events is not None:
                self.events.write(
                    "stopped",
                    epoch=self.epoch,
                    step_in_epoch=self.step_in_epoch,
                    reason=self.stop_signal,
                )
            if self.show_progress:
                print(
                    f"\nstopped after epoch {self.epoch} + {self.step_in_epoch} steps; "
                    f"resume with --resume {self.run_dir}",
                    file=sys.stderr,
                )
            return self._summary("stopped")
        self.writer.wait()  # `end` promises that last.pt, best.pt (and ema.pt) are on disk
        if self.events is not None:
            self.events.write(
                "end",
                epoch=self.epoch,
                best_metric=self.best_metric,
                best_epoch=self.best_epoch,
                seconds=self.total_seconds,
            )
        return self._summary("finished")

    def _summary(self, status: str) -> dict[str, Any]:
        out = {
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "arch": self.arch,
            "status": status,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "epochs": self.epoch,
            "seconds": self.total_seconds,
        }
        if self.stop_signal:
            out["signal"] = self.stop_signal
        return out

    def close(self) -> None:
        """Finish pending checkpoint writes and close the events file."""
        try:
            self.writer.wait()
        finally:
            self._close_events()

    def _close_events(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None


def _model_text(model: dict[str, Any]) -> str:
    return f"{model['arch']} with the {model['stem']} stem and {model['in_channels']} channel(s)"


def _plain_config(cfg: RunConfig) -> dict[str, Any]:
    from fer_tui.config import to_dict

    return to_dict(cfg)
