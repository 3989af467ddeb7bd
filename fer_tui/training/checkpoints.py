"""What a run writes into last.pt, best.pt and ema.pt, and how `--resume` reads last.pt back.

The files are plain dicts of tensors and numbers (`fer_tui.models.save_checkpoint`), so
`torch.load(weights_only=True)` reads them: the model's state_dict, and in last.pt also
optimizer, scheduler, scaler, ema, ema_updates, rng, epoch, step_in_epoch, epoch_sums,
epoch_seconds, total_seconds, best_metric and best_epoch.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from fer_tui.errors import RunError
from fer_tui.models import model_meta, read_checkpoint, save_checkpoint
from fer_tui.runs import BEST, EMA, LAST


def snapshot(obj: Any) -> Any:
    """A CPU copy of nested state (tensors cloned, so training may go on changing them)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


class BackgroundWriter:
    """Writes checkpoints on one thread so the device keeps training while the disk works.

    A ResNet50 last.pt is ~190 MB (weights + momentum): pickling, writing and fsyncing it takes
    ~0.5 s, which is a sixth of an epoch on a fast GPU. Jobs run one at a time, in order; `wait`
    re-raises a failed write in the training thread. `submit` waits for the job before it, so an
    epoch's files (last.pt, best.pt, ema.pt) go in one job: the next epoch never waits on them.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.wait()

        def job() -> None:
            try:
                fn(*args, **kwargs)
            except BaseException as exc:  # handed to the training thread by wait()
                self._error = exc

        self._thread = threading.Thread(target=job, name="checkpoint-writer")
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class CheckpointState:
    """The checkpoint side of `Trainer` (mixed into it): these methods read and set the
    trainer's model, optimizer, scheduler, scaler, EMA, generators and progress."""

    def meta(self) -> dict[str, Any]:
        return model_meta(
            self.arch,
            self.cfg,
            epoch=self.epoch,
            best_metric=self.best_metric,
            data_fingerprint=self.fingerprint,
        )

    def state(self) -> dict[str, Any]:
        """Everything `--resume` needs, as plain tensors/numbers (weights_only-safe)."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "aug": self.aug_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            **({"ema": self.ema.state_dict(), "ema_updates": self.ema.updates} if self.ema else {}),
            "rng": rng,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "epoch_sums": self.sums.cpu().tolist(),
            "epoch_seconds": self.epoch_seconds,
            "total_seconds": self.total_seconds,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
        }

    def save_last(self) -> None:
        """Write last.pt now (rank 0). Mid-epoch, every rank's generators and BatchNorm running
        stats (each rank's own until the epoch-end average) are gathered into it, so that each
        rank resumes exactly where it was; all ranks must call this then."""
        ranks = None
        if self.dist.enabled and self.step_in_epoch:
            import torch.distributed as td

            ranks = [None] * self.dist.world
            mine = {
                "aug": self.aug_gen.get_state(),
                "torch": torch.get_rng_state(),
                "buffers": {k: v.detach().cpu() for k, v in self.model.named_buffers()},
                "sums": self.sums.cpu().tolist(),
            }
            if self.device.type == "cuda":
                mine["cuda"] = torch.cuda.get_rng_state(self.device)
            td.all_gather_object(ranks, mine)
        if self.run_dir is not None:
            state = self.state()
            if ranks is not None:
                state["rng"]["ranks"] = ranks
            self.writer.wait()  # never let an older write land after this one
            save_checkpoint(self.run_dir / LAST, self.model, self.meta(), **state)

    def save_epoch_end(self, improved: bool) -> None:
        """Write last.pt, and best.pt when validation improved, and ema.pt, in the background:
        CPU snapshots are taken now, so training goes on while the disk works."""
        run_dir = self.run_dir
        if run_dir is None:
            return
        weights = snapshot(self.model.state_dict())
        state = snapshot(self.state())
        meta = self.meta()

        def write() -> None:
            save_checkpoint(run_dir / LAST, weights, meta, **state)
            if improved:
                save_checkpoint(run_dir / BEST, weights, meta)
            if "ema" in state:
                save_checkpoint(run_dir / EMA, state["ema"], {**meta, "weights": "ema"})

        self.writer.submit(write)

    def load(self, path: Path) -> None:
        """Restore model, optimizer, scheduler, scaler, RNG and progress from a last.pt."""
        ckpt = read_checkpoint(path)
        meta = ckpt["meta"]
        if meta.get("arch") != self.arch or "optimizer" not in ckpt:
            raise RunError(
                f"{path} is not a training checkpoint of {self.arch}: it cannot be "
                f"resumed (start a new run instead)"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") and self.scaler.is_enabled():
            # a run saved without a scaler (bf16, fp32, a CPU) starts a fresh one in fp16
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            if "ema" in ckpt:
                self.ema.load_state_dict(ckpt["ema"], int(ckpt.get("ema_updates") or 0))
            else:  # EMA switched on for the rest of a run: start it from today's weights
                self.ema.load_state_dict(self.model.state_dict(), 0)
        self.epoch = int(ckpt["epoch"])
        self.step_in_epoch = int(ckpt.get("step_in_epoch") or 0)
        self.sums = torch.tensor(
            ckpt.get("epoch_sums") or [0.0, 0.0, 0.0], dtype=torch.float64, device=self.device
        )
        self.epoch_seconds = float(ckpt.get("epoch_seconds") or 0.0)
        self.total_seconds = float(ckpt.get("total_seconds") or 0.0)
        self.best_metric = ckpt.get("best_metric")
        self.best_epoch = ckpt.get("best_epoch")
        rng = ckpt["rng"]
        ranks = rng.get("ranks") or []
        if self.dist.enabled and len(ranks) == self.dist.world:
            rng = {**rng, **ranks[self.dist.rank]}
            own = rng["buffers"]
            self.sums.copy_(torch.tensor(rng["sums"], dtype=torch.float64))
            with torch.no_grad():
                for k, v in self.model.named_buffers():
                    v.copy_(own[k])
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        # a CUDA generator's state (seed + offset) does not fit a CPU one (mt19937) or back:
        # after a move to another device type the augmentation stream restarts (_start_epoch)
        aug = rng.get("aug")
        fits = aug is not None and aug.numel() == self.aug_gen.get_state().numel()
        self._resume_aug_state = aug if fits else None
