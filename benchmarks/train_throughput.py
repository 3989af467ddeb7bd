"""Training throughput: our pipeline vs the plain one, same models, same run.

    python benchmarks/train_throughput.py        # CPU: ResNet18, each stem x fp32/bf16, minutes
    python benchmarks/train_throughput.py --device cuda --steps 50 --compile

"ours"     fer_tui.training.trainer.Trainer.train_one_epoch: uint8 data already on the device,
           batched augmentation there (fer_tui.augment), channels_last, in the precision asked for
           (bf16 autocast, or fp32; `auto` is what train.amp = "auto" picks on this machine).
"baseline" the textbook pipeline: PIL images through torchvision transforms (crop with
           padding, flip, affine, colour jitter, erasing) in a DataLoader, fp32, NCHW.

Both train the same model (the stem and arch of the row) with the same optimizer and batch size;
the baseline is measured once per model in the same run, and every row gives ours / baseline. The
images are random 48x48 faces (throughput does not depend on their content), trained at 48 px:
a recipe's progressive resizing (train.low_res_size) is switched off, so every row times the
same work per face; `--side 32` times ours on faces resampled to 32 px instead. Images/s counts
training images through forward + backward + optimizer step, after warm-up steps (which include
cuDNN autotuning and, with --compile, the compilation, reported separately).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fer_tui.config import load_config
from fer_tui.models import build_model, resolve_device
from fer_tui.precision import cpu_has_native_bf16
from fer_tui.training.arrays import Arrays
from fer_tui.training.optim import make_optimizer
from fer_tui.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n)


def bench_ours(cfg, device: torch.device, steps: int, warmup: int) -> dict[str, float]:
    """Images/s of Trainer.train_one_epoch on `steps` batches, after a warm-up epoch."""
    b = cfg.train.batch_size
    x, y = faces(b * max(steps, warmup))
    trainer = Trainer(cfg, None, Arrays(x, y, x[:8], y[:8], "test"), device=device)
    # warm-up "epoch" of `warmup` steps (cuDNN autotuning, torch.compile), then the timed one
    trainer.steps_per_epoch = warmup
    t0 = time.perf_counter()
    trainer.train_one_epoch(1)
    _sync(device)
    warm_s = time.perf_counter() - t0
    trainer.steps_per_epoch, trainer.step_in_epoch = steps, 0
    t0 = time.perf_counter()
    trainer.train_one_epoch(2)
    _sync(device)
    seconds = time.perf_counter() - t0
    return {
        "img_per_s": b * steps / seconds,
        "warmup_seconds": warm_s,
        "precision": trainer.precision,
    }


def bench_baseline(
    cfg, device: torch.device, steps: int, warmup: int, workers: int
) -> dict[str, float]:
    """Images/s of the plain PIL + torchvision transforms + DataLoader + fp32 loop."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms as T

    a = cfg.augment
    tf = T.Compose(
        [
            T.RandomCrop(48, padding=a.crop_padding, padding_mode="reflect"),
            T.RandomHorizontalFlip(),
            T.RandomAffine(a.rotation_deg, scale=(1 - a.scale, 1 + a.scale)),
            T.ColorJitter(a.brightness, a.contrast),
            T.ToTensor(),
            T.Normalize([0.5], [0.25]),
            T.RandomErasing(a.erasing_p),
        ]
    )
    b = cfg.train.batch_size
    x, y = faces(b * (steps + warmup), seed=1)
    images = [Image.fromarray(img, mode="L") for img in x]

    class Faces(Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return tf(images[i]), int(y[i])

    loader = DataLoader(
        Faces(),
        batch_size=b,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    m = cfg.model
    model = build_model(cfg.archs[0], stem=m.stem, in_channels=1).to(device)
    opt = make_optimizer(model, cfg.train)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
    model.train()
    t0 = 0.0
    for i, (xb, yb) in enumerate(loader):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return {"img_per_s": b * steps / (time.perf_counter() - t0)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--config",
        default=None,
        help="the recipe whose augmentation and optimizer are timed (default: "
        "configs/scratch.toml on CUDA, configs/cpu.toml on a CPU)",
    )
    p.add_argument(
        "--archs",
        default=None,
        help="comma-separated (default: all three on CUDA, resnet18 on a CPU)",
    )
    p.add_argument(
        "--stems",
        default=None,
        help="comma-separated stems to time: imagenet, compact, cifar (default: the "
        "config's on CUDA; all three on a CPU)",
    )
    p.add_argument(
        "--precisions",
        default=None,
        help='comma-separated: fp32, bf16, auto (what train.amp = "auto" picks '
        "here). Default: the config's on CUDA; fp32,bf16 on a CPU",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    p.add_argument(
        "--side",
        type=int,
        default=None,
        help="time ours on faces resampled to this many pixels (16 up to the model's 48; "
        "default 48: a recipe's progressive resizing is off)",
    )
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 5 CPU, 50 GPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 2 / 10)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="baseline DataLoader workers (default: 2 on CPU, 8 on CUDA)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="time only ours (e.g. a second, compiled pass: the baseline is the same)",
    )
    p.add_argument("--json", default=None, metavar="PATH", help="also write results here")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    steps = args.steps or (50 if gpu else 5)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)
    workers = args.workers if args.workers is not None else (8 if gpu else 2)
    base = load_config(args.config or ROOT / "configs" / ("scratch.toml" if gpu else "cpu.toml"))
    archs = (args.archs or ("resnet18,resnet34,resnet50" if gpu else "resnet18")).split(",")
    stems = (args.stems or (base.model.stem if gpu else "imagenet,compact,cifar")).split(",")
    precisions = (args.precisions or (base.train.amp if gpu else "fp32,bf16")).split(",")
    amp = {"fp32": "off", "bf16": "bf16", "fp16": "fp16", "auto": "auto", "off": "off"}
    print(
        f"{cpu_model()}; native bf16: {cpu_has_native_bf16()}; torch threads "
        f"{torch.get_num_threads()}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    for arch in archs:
        for stem in stems:
            cfg = base.for_arch(arch)
            batch = args.batch_size or cfg.train.batch_size
            side = args.side or cfg.model.image_size
            if not 16 <= side <= cfg.model.image_size:
                raise SystemExit(f"--side {side}: use 16 up to the model's {cfg.model.image_size}")
            low_res = side if side != cfg.model.image_size else None
            cfg = cfg.replace(
                model={"stem": stem},
                train={
                    "batch_size": batch,
                    "compile": args.compile,
                    "device": device.type,
                    # every timed epoch at `side`: the recipe's first low-res epochs are not
                    # silently timed in place of full-size ones
                    "low_res_size": low_res,
                    "low_res_fraction": 0.99,
                    "epochs": 2,
                },
            )
            # the baseline (fp32, NCHW, DataLoader) once per model, in the same run as ours
            plain = (
                None if args.no_baseline else bench_baseline(cfg, device, steps, warmup, workers)
            )
            for precision in precisions:
                run = cfg.replace(train={"amp": amp[precision]})
                ours = bench_ours(run, device, steps, warmup)
                row = {
                    "arch": arch,
                    "stem": stem,
                    "precision": ours["precision"],
                    "device": str(device),
                    "batch_size": batch,
                    "side": side,
                    "steps": steps,
                    "ours_img_per_s": ours["img_per_s"],
                    "ours_warmup_seconds": ours["warmup_seconds"],
                    "compile": args.compile,
                }
                line = (
                    f"{arch:9s} {stem:8s} {side:2d}px {ours['precision']:5s} {device.type}  "
                    f"batch {batch:4d}  ours {row['ours_img_per_s']:9.1f} img/s"
                )
                if plain is not None:
                    row["baseline_img_per_s"] = plain["img_per_s"]
                    row["ratio"] = ours["img_per_s"] / plain["img_per_s"]
                    line += (
                        f"  baseline fp32 {row['baseline_img_per_s']:9.1f} img/s"
                        f"  ratio {row['ratio']:5.2f}x"
                    )
                rows.append(row)
                print(f"{line}  (warm-up {row['ours_warmup_seconds']:.1f}s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def cpu_model() -> str:
    """The CPU's model name (Linux), for the figures' caption."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
