"""The trainer: one arch per process, the run directory as its only output.

    fer-tui train --config configs/scratch.toml --arch resnet18 --runs-dir runs
    python -m fer_tui.train ...                           (same arguments; what torchrun runs)
    torchrun --nproc_per_node 2 -m fer_tui.train ...      (DistributedDataParallel)

Shape of a run (see `fer_tui.runs` for the files and the event schema):
- the uint8 dataset goes to the device once; each step gathers a batch of indices, augments it
  there (`fer_tui.augment`) and standardises it the way eval and live do; no DataLoader;
- every epoch's shuffle and augmentation come from generators seeded by (seed, epoch, rank), and
  their state is saved in `last.pt`, so `--resume` draws exactly what an uninterrupted run would;
- SIGTERM/SIGINT finish the current step, then `last.pt` is saved *mid-epoch* (the epoch counter
  stays at the last completed epoch, plus the step reached and the epoch's running sums), so a
  resume continues that epoch at the next step: no work is lost and no epoch is repeated or
  skipped. After a `kill -9` the resume restarts the interrupted epoch from its start;
- `--arch all` (or several archs in the config) creates every run dir up front, then trains each
  arch in its own child process: together on a GPU, one after another on a CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_tui.augment import BatchAugment
from fer_tui.commands.train import add_arguments
from fer_tui.config import ARCHS, RunConfig, load_config, to_toml
from fer_tui.errors import FerError, RunError
from fer_tui.files import atomic_write_text
from fer_tui.models import build_model, model_meta, read_checkpoint, resolve_device, save_checkpoint
from fer_tui.precision import resolve_precision
from fer_tui.preprocess import to_input
from fer_tui.progress import ProgressBar
from fer_tui.runs import (
    BEST,
    CONFIG,
    EMA,
    LAST,
    EventWriter,
    RunLock,
    new_run_dir,
    read_events,
)

# --- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m fer_tui.train` (the CLI's flags plus --data/--runs-dir)."""
    parser = argparse.ArgumentParser(
        prog="python -m fer_tui.train", description="train ResNets from a TOML config"
    )
    parser.add_argument("--data", default=None, help="FER-2013 folder, archive or CSV")
    parser.add_argument("--runs-dir", default=None, help="where run dirs are created")
    add_arguments(parser)  # the same flags as `fer-tui train`
    return parser


def _cli_changes(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Config fields set by flags; they are written into the run's config.toml."""
    changes: dict[str, dict[str, Any]] = {"data": {}, "train": {}}
    if args.epochs is not None:
        if args.epochs < 1:
            raise FerError("--epochs must be at least 1")
        changes["train"]["epochs"] = args.epochs
    if args.limit is not None:
        if args.limit < 1:
            raise FerError("--limit must be a positive number of images")
        changes["data"]["limit"] = args.limit
    if args.device is not None:
        changes["train"]["device"] = args.device
    data = getattr(args, "data", None)
    if data:
        # absolute, so a resume from another working directory finds the same data
        changes["data"]["path"] = str(Path(data).expanduser().absolute())
    return {k: v for k, v in changes.items() if v}


def _config_path(args: argparse.Namespace) -> Path:
    from fer_tui.paths import configs_dir

    return Path(args.config) if args.config else configs_dir() / "scratch.toml"


def run(args: argparse.Namespace) -> int:
    """`fer-tui train`: train one arch here, or several archs in child processes."""
    changes = _cli_changes(args)
    if args.resume:
        if args.run_dir:
            raise FerError("--resume RUN_DIR already names the run dir: drop --run-dir")
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG).is_file():
            raise RunError(
                f"{run_dir} is not a run directory (no {CONFIG}): pass the folder "
                f"of the run to resume, e.g. runs/20250101-120000-resnet18"
            )
        cfg = load_config(run_dir / CONFIG)
        if args.arch not in (None, cfg.archs[0]):
            raise FerError(f"{run_dir} trains {cfg.archs[0]}, not {args.arch}")
        cfg = cfg.replace(**changes)
        resolve_device(cfg.train.device)  # no GPU: say so without marking the run failed
        return _report([fit_cli(cfg, run_dir, resume=True)], args.json)
    cfg = load_config(_config_path(args))
    archs = list(ARCHS) if args.arch == "all" else [args.arch] if args.arch else cfg.archs
    cfgs = [cfg.for_arch(a).replace(**changes) for a in archs]
    resolve_device(cfgs[0].train.device)  # `--device cuda` without a GPU: fail before any dir
    if len(cfgs) > 1:
        if Dist.from_env().enabled:
            raise FerError(
                "under torchrun, train one arch at a time: pass --arch resnet18 "
                "(or resnet34, resnet50)"
            )
        if args.run_dir:
            raise FerError("--run-dir names one run: pick one --arch, or drop --run-dir")
        return train_many(cfgs, getattr(args, "runs_dir", None), as_json=args.json)
    dist = Dist.from_env()
    if args.run_dir:
        run_dir = Path(args.run_dir)
        if (run_dir / LAST).exists():
            raise RunError(
                f"{run_dir} already holds a trained run: continue it with "
                f"--resume {run_dir}, or train a new one without --run-dir"
            )
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
    elif dist.is_main:
        from fer_tui.paths import runs_dir

        run_dir = new_run_dir(runs_dir(getattr(args, "runs_dir", None)), cfgs[0].archs[0])
    else:
        run_dir = Path(os.devnull)  # other ranks never write into the run dir
    return _report([fit_cli(cfgs[0], run_dir, resume=False, dist=dist)], args.json)


def _report(summaries: list[dict[str, Any]], as_json: bool) -> int:
    if as_json and Dist.from_env().is_main:
        print(json.dumps({"runs": summaries}, indent=2))
    stopped = any(s.get("status") == "stopped" and s.get("signal") == "SIGINT" for s in summaries)
    failed = any(s.get("status") not in ("finished", "stopped") for s in summaries)
    return 1 if failed else 130 if stopped else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m fer_tui.train` (and torchrun): the CLI's `train` without the dispatcher."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except FerError as exc:
        print(f"fer-tui: error: {exc}", file=sys.stderr)
        return exc.exit_code


# --- several archs: one child process each ---------------------------------------------------

#: How a child trainer is started (before its arguments); tests point it at a stand-in.
CHILD: list[str] = [sys.executable, "-m", "fer_tui", "train"]


def train_many(cfgs: list[RunConfig], runs_dir_arg: str | None, *, as_json: bool = False) -> int:
    """Create every run dir now (watchers see them as pending), then train each in a child."""
    from fer_tui.paths import runs_dir

    root = runs_dir(runs_dir_arg)
    dirs = []
    for cfg in cfgs:
        d = new_run_dir(root, cfg.archs[0])
        atomic_write_text(d / CONFIG, to_toml(cfg))
        dirs.append(d)
    # one GPU runs the three side by side (small 48x48 models leave it mostly idle one at a
    # time); two CPU cores gain nothing from that, so there they go one after another
    together = resolve_device(cfgs[0].train.device).type == "cuda"
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    codes: dict[Path, int | None] = {d: None for d in dirs}
    try:
        for d in dirs:
            if stopping:
                break
            argv = [*CHILD, "--run-dir", str(d), "--config", str(d / CONFIG)]
            if together:
                with open(d / "stdout.log", "ab") as log:
                    procs.append(
                        subprocess.Popen(
                            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                        )
                    )
                print(
                    f"training {d.name} (pid {procs[-1].pid}, log {d / 'stdout.log'})",
                    file=sys.stderr,
                )
            else:
                print(f"training {d.name}", file=sys.stderr)
                procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))
                codes[d] = _wait(procs[-1])
        for d, p in zip(dirs, procs, strict=False):
            codes[d] = _wait(p)
            if together:
                print(f"{d.name}: exit {codes[d]}", file=sys.stderr)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    summaries = [summarize(d) for d in dirs]
    if as_json:
        print(json.dumps({"runs": summaries}, indent=2))
    # a child still importing when the stop came dies of the signal itself: stopped, not failed;
    # so is one the user stopped on its own (the Training screen's `x`), which says so in its events
    stopped_early = {-signal.SIGTERM, -signal.SIGINT} if stopping else set()
    failed = [
        d.name
        for (d, c), summary in zip(codes.items(), summaries, strict=True)
        if c not in (None, 0, *stopped_early) and summary.get("status") != "stopped"
    ]
    if failed:
        print(
            f"fer-tui: error: training failed for {', '.join(failed)} "
            f"(see their events.jsonl / stdout.log)",
            file=sys.stderr,
        )
        return 1
    return 0


def _wait(p: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return p.wait()
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for safety
            continue


def summarize(run_dir: Path) -> dict[str, Any]:
    """The --json summary of a run, from its events."""
    events = read_events(run_dir)
    epochs = [e for e in events if e.get("type") == "epoch"]
    last = epochs[-1] if epochs else {}
    kinds = [e.get("type") for e in events if e.get("type") in ("end", "stopped", "error")]
    status = {"end": "finished", "stopped": "stopped", "error": "failed"}.get(
        kinds[-1] if kinds else "", "pending" if not events else "crashed"
    )
    arch = next((e.get("arch") for e in events if e.get("type") == "start"), None)
    if arch is None and (run_dir / CONFIG).is_file():  # pending: never started
        arch = load_config(run_dir / CONFIG).archs[0]
    out = {
        "run_dir": str(run_dir),
        "arch": arch,
        "status": status,
        "best_metric": last.get("best_metric"),
        "best_epoch": last.get("best_epoch"),
        "epochs": last.get("epoch", 0),
        "seconds": sum(e.get("seconds") or 0.0 for e in epochs),
        "val_acc": last.get("val_acc"),
    }
    stopped = [e for e in events if e.get("type") == "stopped"]
    if status == "stopped" and stopped:
        out["signal"] = stopped[-1].get("reason")
    return out


# --- distributed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> Dist:
        return cls(
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )


def _init_distributed(dist: Dist, device: torch.device) -> torch.device:
    if not dist.enabled:
        return device
    import torch.distributed as td

    if device.type == "cuda":
        count = torch.cuda.device_count()
        if dist.local_rank >= count:
            raise FerError(
                f"torchrun started {dist.local_rank + 1}+ processes on this machine "
                f"but it has {count} GPU(s): pass --nproc_per_node {count} (at most "
                f"one process per GPU)"
            )
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if not td.is_initialized():
        # device_id binds the process group to this rank's GPU up front (no guessing later)
        extra = {"device_id": device} if device.type == "cuda" else {}
        td.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            rank=dist.rank,
            world_size=dist.world,
            **extra,
        )
    return device


def _close_distributed(dist: Dist) -> None:
    if not dist.enabled:
        return
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


def _all_sum(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    if dist.enabled:
        import torch.distributed as td

        td.all_reduce(t)
    return t


# --- data -------------------------------------------------------------------------------------


@dataclass
class Arrays:
    """The images a run uses, as uint8 (N, H, W) + int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    val_name: str
    """"test" or "holdout"."""
    fingerprint: str | None = None


def _first_n(n_total: int, limit: int | None) -> np.ndarray:
    # a fixed shuffle (not the run's seed) so every seed and arch sees the same subset
    idx = np.random.default_rng(12345).permutation(n_total)
    return np.sort(idx[:limit]) if limit is not None else np.arange(n_total)


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, holdout) index arrays: `fraction` of each class held out."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1), len(idx) - 1) if len(idx) > 1 else 0
        held.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def prepare_arrays(cfg: RunConfig, data: Any | None = None) -> Arrays:
    """Load the dataset named by the config (or use `data`, a FerData) and cut it as asked."""
    if data is None:
        from fer_tui.data.load import load_dataset

        data = load_dataset(cfg.data.path)
    train, test = data.splits["train"], data.splits.get("test")
    ti = _first_n(len(train.labels), cfg.data.limit)
    tx, ty = train.images[ti], train.labels[ti]
    if cfg.data.val == "holdout":
        keep, held = holdout_split(ty, cfg.data.holdout_fraction, seed=0)
        return Arrays(tx[keep], ty[keep], tx[held], ty[held], "holdout", data.fingerprint)
    if test is None or len(test.labels) == 0:
        raise FerError(
            "the dataset has no test split to validate on: set data.val = "
            '"holdout" in the config to validate on a slice of train'
        )
    vi = _first_n(len(test.labels), cfg.data.limit)
    return Arrays(tx, ty, test.images[vi], test.labels[vi], "test", data.fingerprint)


# --- small helpers ----------------------------------------------------------------------------


def _seed(seed: int, epoch: int, rank: int = 0, stream: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, epoch, rank, stream)."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729 + stream * 15_485_863) % (2**62)


def lr_lambda(tcfg: Any, steps_per_epoch: int) -> Any:
    """Multiplier of the peak lr at optimizer step `i`: linear warmup, then the schedule."""
    total = max(1, tcfg.epochs * steps_per_epoch)
    warm = min(int(round(tcfg.warmup_epochs * steps_per_epoch)), total - 1)

    def f(i: int) -> float:
        if i < warm:
            return (i + 1) / warm
        if tcfg.schedule == "constant":
            return 1.0
        p = min(1.0, (i - warm) / max(1, total - warm))
        if tcfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        # "onecycle" after warmup: a linear anneal to zero (Smith & Topin's second phase)
        return 1.0 - p

    return f


def make_optimizer(model: nn.Module, tcfg: Any) -> torch.optim.Optimizer:
    """SGD(Nesterov) or AdamW over the trainable parameters; no weight decay on BN and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": tcfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=tcfg.lr, momentum=tcfg.momentum, nesterov=tcfg.nesterov and tcfg.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=tcfg.lr, betas=(tcfg.momentum, 0.999))


class WeightEMA:
    """An exponential moving average of a model's weights and BatchNorm statistics.

    The average lives in a copy of the model (`self.model`, always in eval mode), updated in
    place after every optimizer step with one fused lerp over all tensors: no host sync. The
    decay ramps up from ~0.1 over the first steps (as TensorFlow's ExponentialMovingAverage
    does with num_updates), so the early random weights fade out quickly.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        src, dst = model.state_dict(), self.model.state_dict()
        # state_dict tensors share storage with the modules: lerping them updates the copy
        keys = [k for k, v in src.items() if v.is_floating_point()]
        self._src = [src[k] for k in keys]
        self._dst = [dst[k] for k in keys]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._dst, self._src, 1.0 - decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.model.load_state_dict(state)
        self.updates = updates


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


# --- the trainer ------------------------------------------------------------------------------


def _snapshot(obj: Any) -> Any:
    """A CPU copy of nested state (tensors cloned, so training may go on changing them)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_snapshot(v) for v in obj)
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


class StopRequested(Exception):
    """Raised inside the epoch loop when SIGTERM/SIGINT asked the trainer to stop."""


class Trainer:
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
    ) -> None:
        self.cfg = cfg
        self.arch = cfg.archs[0]
        self.dist = dist or Dist()
        self.run_dir = run_dir if self.dist.is_main else None
        self.device = _init_distributed(self.dist, device or resolve_device(cfg.train.device))
        self.show_progress = progress and self.dist.is_main
        self.stop_signal: str | None = None
        t, m = cfg.train, cfg.model
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(_seed(t.seed, 0))  # the initial weights: same on every rank
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
        self.precision = resolve_precision(t.amp, self.device.type, cuda_bf16=cuda_bf16)
        """What autocast computes in: "bf16", "fp16" or "fp32" (weights stay fp32)."""
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.use_amp = self.amp_dtype is not None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)
        self.augment = BatchAugment(cfg.augment, m.image_size)
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

    # -- state ----------------------------------------------------------------------------

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
        weights = _snapshot(self.model.state_dict())
        state = _snapshot(self.state())
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

    # -- one epoch ------------------------------------------------------------------------

    def _start_epoch(self, epoch: int) -> torch.Tensor:
        """This epoch's permutation; (re)seeds the generators unless resuming mid-epoch."""
        t = self.cfg.train
        perm_gen = torch.Generator().manual_seed(_seed(t.seed, epoch, stream=1))
        perm = torch.randperm(len(self.train_y), generator=perm_gen).to(self.device)
        if self.step_in_epoch and self._resume_aug_state is not None:
            self.aug_gen.set_state(self._resume_aug_state)  # continue where the stop left off
        elif self.step_in_epoch:
            # resumed mid-epoch on another device type: same permutation and progress, but
            # the rest of this epoch's augmentation comes from a new (still seeded) stream
            self.aug_gen.manual_seed(
                _seed(t.seed, epoch, self.dist.rank, stream=2) + self.step_in_epoch
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
            self.aug_gen.manual_seed(_seed(t.seed, epoch, self.dist.rank, stream=2))
            torch.manual_seed(_seed(t.seed, epoch, self.dist.rank, stream=3))  # dropout
            self.sums.zero_()
            self.epoch_seconds = 0.0
        self._resume_aug_state = None
        return perm

    def _batch(self, perm: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        gb, world, rank = self.global_batch, self.dist.world, self.dist.rank
        if self.steps_per_epoch == 1 and len(perm) < gb:
            chunk = perm[: len(perm) - len(perm) % world]
        else:
            chunk = perm[i * gb : (i + 1) * gb]
        idx = chunk[rank::world]  # this rank's shard of the global batch
        x = self.augment(self.train_x[idx], self.aug_gen)
        if self.cfg.model.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous(memory_format=self.memory_format), self.train_y[idx]

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
        )
        window_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        window_steps, window_imgs, window_t0 = 0, 0, time.perf_counter()
        for i in range(self.step_in_epoch, steps):
            t0 = time.perf_counter()
            x, y = self._batch(perm, i)
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.use_amp
            ):
                out = self.net(x)
                loss = self.criterion(out, y)
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
                mean_loss = window_loss.item() / window_steps  # sync point, once per window
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
                        lr=self.optimizer.param_groups[0]["lr"],
                        img_per_s=ips,
                    )
                bar.update(i + 1, info=f"loss {mean_loss:.3f} {ips:,.0f} img/s")
            self.epoch_seconds += time.perf_counter() - t0
            if self._should_stop(sync=window_end):
                raise StopRequested
        bar.close(info=f"{self.epoch_seconds:.1f}s")

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
            flag = bool(_all_sum(t, self.dist).item() > 0)
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
                buf.copy_(_all_sum(buf.clone(), self.dist) / self.dist.world)

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
        m = self.cfg.model
        for s in range(0, len(y_all), batch):
            x = to_input(
                x_all[s : s + batch], image_size=m.image_size, in_channels=m.in_channels
            ).contiguous(memory_format=self.memory_format)
            y = y_all[s : s + batch]
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.use_amp
            ):
                out = net(x).float()
            sums += torch.stack(
                [
                    F.cross_entropy(out, y, reduction="sum").double(),
                    (out.argmax(1) == y).sum().double(),
                    sums.new_full((), float(len(y))),
                ]
            )
        loss, correct, n = _all_sum(sums, self.dist).tolist()
        return (loss / n, correct / n) if n else (math.nan, math.nan)

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
                loss_sum, correct, n = _all_sum(self.sums.clone(), self.dist).tolist()
                self.epoch, self.step_in_epoch = epoch, 0
                self.total_seconds += self.epoch_seconds
                session_epochs.append(self.epoch_seconds)
                improved = self.best_metric is None or val_acc > self.best_metric
                if improved:
                    self.best_metric, self.best_epoch = val_acc, epoch
                mean_s = sum(session_epochs) / len(session_epochs)
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
                        eta_seconds=mean_s * (t.epochs - epoch),
                        best_metric=self.best_metric,
                        best_epoch=self.best_epoch,
                        **ema_fields,
                    )
                    self.save_epoch_end(improved)
                if self.show_progress:
                    print(
                        f"{self.arch} epoch {epoch}/{t.epochs}: train loss {loss_sum / n:.4f} "
                        f"acc {correct / n:.4f} | {self.val_name} loss {val_loss:.4f} "
                        f"acc {val_acc:.4f} | {self.epoch_seconds:.1f}s",
                        file=sys.stderr,
                    )
        except StopRequested:
            self.save_last()
            if self.events is not None:
                self.events.write("stopped", epoch=self.epoch, reason=self.stop_signal)
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


def _plain_config(cfg: RunConfig) -> dict[str, Any]:
    from fer_tui.config import to_dict

    return to_dict(cfg)


def fit_cli(
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
            # the resolved config (flags applied), written under the lock: a resume with
            # --epochs keeps the new total for the next resume too
            atomic_write_text(run_dir / CONFIG, to_toml(cfg))
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
        arrays = prepare_arrays(cfg)
        trainer = Trainer(cfg, run_dir, arrays, dist=dist, progress=True)
        if stop_signal:
            trainer.stop_signal = stop_signal[-1]
        if resume and (run_dir / LAST).exists():
            trainer.load(run_dir / LAST)
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
        _close_distributed(dist)
        if lock is not None:
            lock.release()


def _error_event(run_dir: Path, dist: Dist, kind: str, **fields: Any) -> None:
    if not dist.is_main:
        return
    try:
        with EventWriter(run_dir) as events:
            if kind == "stopped":
                events.write("stopped", epoch=0, **fields)
            else:
                events.write(kind, **fields)
    except OSError:
        pass  # the run dir itself is the problem; the message still reaches stderr


if __name__ == "__main__":
    raise SystemExit(main())
