"""One epoch of a run: the batches, the loss, the optimizer steps and the validation pass.

`EpochLoop` holds these steps of `Trainer` (fer_tui.training.trainer), which sets up the state
they use: the model and its wrappers, the optimizer, the data on the device, the generators.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fer_tui.config import RunConfig
from fer_tui.preprocess import to_input
from fer_tui.progress import ProgressBar
from fer_tui.training.distributed import Dist, all_sum


def seed_for(seed: int, epoch: int, rank: int = 0, stream: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, epoch, rank, stream)."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729 + stream * 15_485_863) % (2**62)


class StopRequested(Exception):
    """Raised inside the epoch loop when SIGTERM/SIGINT asked the trainer to stop."""


class EpochLoop:
    """The epoch's steps; the attributes below are set up by `Trainer.__init__`."""

    cfg: RunConfig
    arch: str
    dist: Dist
    device: torch.device
    model: nn.Module
    net: nn.Module
    eval_net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    criterion: nn.Module
    augment: Any
    aug_gen: torch.Generator
    ema: Any
    events: Any
    memory_format: torch.memory_format
    amp_dtype: torch.dtype | None
    use_amp: bool
    train_x: torch.Tensor
    train_y: torch.Tensor
    teacher_logp: torch.Tensor | None
    global_batch: int
    steps_per_epoch: int
    train_size: int
    step_in_epoch: int
    sums: torch.Tensor
    epoch_seconds: float
    show_progress: bool
    stop_signal: str | None
    _resume_aug_state: torch.Tensor | None

    def train_size_for(self, epoch: int) -> int:
        """The input side of `epoch`: train.low_res_size for the first low_res_fraction of the
        epochs (progressive resizing), model.image_size after."""
        t = self.cfg.train
        if t.low_res_size and epoch <= round(t.epochs * t.low_res_fraction):
            return t.low_res_size
        return self.cfg.model.image_size

    def _start_epoch(self, epoch: int) -> torch.Tensor:
        """This epoch's permutation; (re)seeds the generators unless resuming mid-epoch."""
        t = self.cfg.train
        self.train_size = self.train_size_for(epoch)
        perm_gen = torch.Generator().manual_seed(seed_for(t.seed, epoch, stream=1))
        perm = torch.randperm(len(self.train_y), generator=perm_gen).to(self.device)
        if self.step_in_epoch and self._resume_aug_state is not None:
            self.aug_gen.set_state(self._resume_aug_state)  # continue where the stop left off
        elif self.step_in_epoch:
            # resumed mid-epoch on another device type: same permutation and progress, but
            # the rest of this epoch's augmentation comes from a new (still seeded) stream
            self.aug_gen.manual_seed(
                seed_for(t.seed, epoch, self.dist.rank, stream=2) + self.step_in_epoch
            )
            if self.events is not None:
                self.events.write(
                    "warning",
                    message=(
                        f"resumed mid-epoch {epoch} on {self.device.type} from a checkpoint saved "
                        f"on another device type: the augmentation's random stream restarts here, "
                        f"so the run is no longer identical to an uninterrupted one"
                    ),
                )
        else:
            self.aug_gen.manual_seed(seed_for(t.seed, epoch, self.dist.rank, stream=2))
            torch.manual_seed(seed_for(t.seed, epoch, self.dist.rank, stream=3))  # dropout
            self.sums.zero_()
            self.epoch_seconds = 0.0
        self._resume_aug_state = None
        return perm

    def _batch(self, perm: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gb, world, rank = self.global_batch, self.dist.world, self.dist.rank
        if self.steps_per_epoch == 1 and len(perm) < gb:
            chunk = perm[: len(perm) - len(perm) % world]
        else:
            chunk = perm[i * gb : (i + 1) * gb]
        idx = chunk[rank::world]  # this rank's shard of the global batch
        x = self.augment(self.train_x[idx], self.aug_gen, self.train_size)
        if self.cfg.model.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous(memory_format=self.memory_format), self.train_y[idx], idx

    def _loss(self, out: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the labels; with teachers, mixed with the temperature-scaled KL
        divergence from the teachers' softened probabilities (Hinton et al., 2015)."""
        hard = self.criterion(out, y)
        if self.teacher_logp is None:
            return hard
        k = self.cfg.distill
        temp = k.temperature
        target = F.softmax(self.teacher_logp[idx] / temp, dim=1)
        student = F.log_softmax(out.float() / temp, dim=1)
        soft = F.kl_div(student, target, reduction="batchmean") * temp * temp
        return (1.0 - k.weight) * hard + k.weight * soft

    def train_one_epoch(self, epoch: int) -> None:
        """Train the steps of `epoch` left to do; raises StopRequested after a signal."""
        perm = self._start_epoch(epoch)
        self.net.train()
        t, steps = self.cfg.train, self.steps_per_epoch
        # a terminal redraws the bar; a log file gets a line every 30 s (the epoch line follows)
        bar = ProgressBar(
            f"{self.arch} epoch {epoch}/{t.epochs}",
            steps,
            width=24,
            log_every=30.0,
            enabled=self.show_progress,
            start=self.step_in_epoch,  # a resumed epoch: its rate counts only these steps
        )
        window_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        window_sums = self.sums.clone()  # the window's accuracy: the epoch's sums since then
        window_steps, window_imgs, window_t0 = 0, 0, time.perf_counter()
        for i in range(self.step_in_epoch, steps):
            t0 = time.perf_counter()
            x, y, idx = self._batch(perm, i)
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.use_amp
            ):
                out = self.net(x)
                loss = self._loss(out, y, idx)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update()
            # sums stay on the device: no CPU-GPU sync in the step
            d = loss.detach().double() * len(y)
            correct = (out.detach().argmax(1) == y).sum().double()
            # new_full fills on the device; new_tensor would copy from the host and sync
            self.sums += torch.stack([d, correct, d.new_full((), float(len(y)))])
            self.step_in_epoch = i + 1
            window_loss += loss.detach().double()
            window_steps += 1
            window_imgs += len(y) * self.dist.world
            window_end = (i + 1) % t.log_every_steps == 0 or i + 1 == steps
            if window_end:
                # the one host sync of the window: its loss and its accuracy together
                loss_sum, _, window_correct, window_n = torch.cat(
                    [window_loss.reshape(1), self.sums - window_sums]
                ).tolist()
                mean_loss = loss_sum / window_steps
                window_sums = self.sums.clone()
                now = time.perf_counter()
                ips = window_imgs / max(now - window_t0, 1e-9)
                window_loss.zero_()
                window_steps, window_imgs, window_t0 = 0, 0, now
                if self.events is not None:
                    self.events.write(
                        "step",
                        epoch=epoch,
                        step=(epoch - 1) * steps + i + 1,
                        step_in_epoch=i + 1,
                        steps_per_epoch=steps,
                        loss=mean_loss,
                        acc=window_correct / max(window_n, 1.0),
                        lr=self.optimizer.param_groups[0]["lr"],
                        img_per_s=ips,
                    )
                bar.update(i + 1, info=f"loss {mean_loss:.3f} {ips:,.0f} img/s")
            self.epoch_seconds += time.perf_counter() - t0
            if self._should_stop(sync=window_end):
                raise StopRequested
        bar.close()

    def _should_stop(self, sync: bool = True) -> bool:
        """Whether a signal asked to stop. Under DDP every rank must agree (else the next
        all-reduce hangs), which costs a collective and a host sync: `sync=False` skips the
        check there, so the step loop asks once per logging window."""
        flag = self.stop_signal is not None
        if self.dist.enabled and not sync:
            return False
        if self.dist.enabled:
            # every rank must stop after the same step, or the next all-reduce hangs
            t = torch.tensor([1.0 if flag else 0.0], device=self.device)
            flag = bool(all_sum(t, self.dist).item() > 0)
            if flag and self.stop_signal is None:
                self.stop_signal = "SIGTERM"
        return flag

    @torch.no_grad()
    def _sync_buffers(self) -> None:
        """Average BatchNorm running stats over ranks: DDP syncs them only at a forward's start,
        so after the last step each replica holds its own shard's statistics."""
        if not self.dist.enabled:
            return
        models = [self.model] + ([self.ema.model] if self.ema is not None else [])
        for buf in (b for m in models for b in m.buffers()):
            if buf.is_floating_point():
                buf.copy_(all_sum(buf.clone(), self.dist) / self.dist.world)

    @torch.inference_mode()
    def evaluate_epoch(
        self, x_all: torch.Tensor, y_all: torch.Tensor, net: nn.Module | None = None
    ) -> tuple[float, float]:
        """(mean loss, accuracy) of `net` (default: the trained model) on uint8 images,
        sharded across ranks and all-reduced."""
        net = net or self.eval_net
        net.eval()
        rank, world = self.dist.rank, self.dist.world
        x_all, y_all = x_all[rank::world], y_all[rank::world]
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        batch = 1024 if self.device.type == "cuda" else 256
        # a compiled graph is specialised to its batch size: a shorter last batch would compile
        # again (tens of seconds), so it is padded with blank faces whose outputs are dropped
        pad_to = batch if self.cfg.train.compile else 0
        m = self.cfg.model
        for s in range(0, len(y_all), batch):
            xb, y = x_all[s : s + batch], y_all[s : s + batch]
            if len(xb) < pad_to:
                xb = torch.cat([xb, xb.new_zeros((pad_to - len(xb), *xb.shape[1:]))])
            x = to_input(xb, image_size=m.image_size, in_channels=m.in_channels).contiguous(
                memory_format=self.memory_format
            )
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.use_amp
            ):
                out = net(x).float()[: len(y)]
            sums += torch.stack(
                [
                    F.cross_entropy(out, y, reduction="sum").double(),
                    (out.argmax(1) == y).sum().double(),
                    sums.new_full((), float(len(y))),
                ]
            )
        loss, correct, n = all_sum(sums, self.dist).tolist()
        return (loss / n, correct / n) if n else (math.nan, math.nan)
