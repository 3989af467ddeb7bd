"""`fer-tui train`: train ResNets from a TOML config into run directories.

    fer-tui train --config configs/scratch.toml --arch resnet18 --runs-dir runs
    torchrun --nproc_per_node 2 -m fer_tui train ...      (DistributedDataParallel)
    python -m fer_tui.train ...                           (the same command, older spelling)

The flags and their checks live here; the training itself in `fer_tui.training`, imported
inside `run()` so that `fer-tui --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fer_tui.errors import FerError, RunError

ARCH_CHOICES = ("resnet18", "resnet34", "resnet50", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The trainer's flags (`--data` and `--runs-dir` come from fer_tui.cli)."""
    parser.add_argument(
        "--config",
        default=None,
        help="run config TOML (default: configs/scratch.toml where an NVIDIA GPU is seen, "
        "configs/cpu.toml elsewhere or with --device cpu)",
    )
    parser.add_argument(
        "--arch",
        choices=ARCH_CHOICES,
        default=None,
        help="which model(s) to train (default: the config's `archs`)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=None,
        help="override train.device (auto = cuda when available)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="use only N images per split (smoke tests)"
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue a stopped or crashed run from its last.pt",
    )
    parser.add_argument(
        "--run-dir",
        default=None,
        metavar="DIR",
        help="train into this (new or pending) run dir instead of a fresh one",
    )
    parser.add_argument(
        "--teacher",
        action="append",
        default=None,
        metavar="CKPT",
        help="distil from this checkpoint (repeat for an ensemble of teachers): the student "
        "learns their mean probabilities beside the labels; replaces the recipe's "
        "distill.teachers (settings in its [distill] table)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")


def _cli_changes(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Config fields set by flags; they are written into the run's config.toml."""
    changes: dict[str, dict[str, Any]] = {"data": {}, "train": {}, "distill": {}}
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
    teachers = getattr(args, "teacher", None)
    if teachers:
        # absolute (shipped names stay as given): a resume from elsewhere finds the same files
        changes["distill"]["teachers"] = [_teacher_path(t) for t in teachers]
    data = getattr(args, "data", None)
    if data:
        # absolute, so a resume from another working directory finds the same data
        changes["data"]["path"] = str(Path(data).expanduser().absolute())
    return {k: v for k, v in changes.items() if v}


def _teacher_path(name: str) -> str:
    given = Path(name).expanduser()
    return str(given.absolute()) if given.exists() else name


def _config_path(args: argparse.Namespace) -> Path:
    """--config, else the recipe for where the run will train (`launch.default_recipe`)."""
    from fer_tui.launch import default_recipe
    from fer_tui.paths import configs_dir

    if args.config:
        return Path(args.config)
    return configs_dir() / default_recipe(getattr(args, "device", None))


def run(args: argparse.Namespace) -> int:
    """`fer-tui train`: train one arch here, or several archs in child processes."""
    from fer_tui.config import ARCHS, load_config
    from fer_tui.models import resolve_device
    from fer_tui.runs import CONFIG, LAST, new_run_dir, read_config
    from fer_tui.space import check_free_space, check_run_space, run_bytes_needed
    from fer_tui.training.distill import check_teachers
    from fer_tui.training.distributed import Dist
    from fer_tui.training.group import train_many
    from fer_tui.training.run import fit_run

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
        cfg = read_config(run_dir)
        if args.arch not in (None, cfg.archs[0]):
            raise FerError(f"{run_dir} trains {cfg.archs[0]}, not {args.arch}")
        cfg = cfg.replace(**changes)
        resolve_device(cfg.train.device)  # no GPU: say so without marking the run failed
        check_teachers(cfg)
        if Dist.from_env().is_main:
            check_free_space(run_dir, run_bytes_needed(cfg, run_dir), f"the rest of {run_dir}")
        return _report([fit_run(cfg, run_dir, resume=True)], args.json)
    config_path = _config_path(args)
    if not args.config:
        print(f"recipe: {config_path.name} (pick another with --config)", file=sys.stderr)
    cfg = load_config(config_path)
    archs = list(ARCHS) if args.arch == "all" else [args.arch] if args.arch else cfg.archs
    cfgs = [cfg.for_arch(a).replace(**changes) for a in archs]
    resolve_device(cfgs[0].train.device)  # `--device cuda` without a GPU: fail before any dir
    for c in cfgs:
        check_teachers(c)  # a teacher that cannot teach this student: before any run dir
    if len(cfgs) > 1:
        if Dist.from_env().enabled:
            raise FerError(
                "under torchrun, train one arch at a time: pass --arch resnet18 "
                "(or resnet34, resnet50)"
            )
        if args.run_dir:
            raise FerError("--run-dir names one run: pick one --arch, or drop --run-dir")
        check_run_space(cfgs, _runs_root(args))
        return train_many(cfgs, getattr(args, "runs_dir", None), as_json=args.json)
    dist = Dist.from_env()
    if dist.is_main:
        check_run_space(cfgs, Path(args.run_dir) if args.run_dir else _runs_root(args))
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
    return _report([fit_run(cfgs[0], run_dir, resume=False, dist=dist)], args.json)


def _runs_root(args: argparse.Namespace) -> Path:
    from fer_tui.paths import runs_dir

    return Path(runs_dir(getattr(args, "runs_dir", None)))


def _report(summaries: list[dict[str, Any]], as_json: bool) -> int:
    from fer_tui.training.distributed import Dist

    if as_json and Dist.from_env().is_main:
        print(json.dumps({"runs": summaries}, indent=2))
    stopped = any(s.get("status") == "stopped" and s.get("signal") == "SIGINT" for s in summaries)
    failed = any(s.get("status") not in ("finished", "stopped") for s in summaries)
    return 1 if failed else 130 if stopped else 0
