"""Ship a finished run: its LAST epoch as an fp16 checkpoint, and its curves as a PNG.

    python3 benchmarks/ship_run.py RUN_DIR [RUN_DIR ...] --name resnet18-cpu \
        [--checkpoints checkpoints] [--png docs/resnet18-cpu-curves.png]
    python3 benchmarks/ship_run.py out/runs/* --png docs/gpu-curves.png   # curves only

(after `benchmarks/gpu_train_all.sh`, whose run dirs come back without last.pt: it ships the
fp16 checkpoints itself)

- `<checkpoints>/<name>.pt`: the run's `last.pt` with fp16 weights and the checkpoint metadata,
  plus `selection = "last epoch"` (never the epoch that scored best on the test split). With
  several runs, each file is named `<name>-<arch>.pt`.
- the PNG: loss and accuracy per epoch, train and validation, one colour per run (the paper's
  Figure 2 layout). Needs matplotlib (`pip install matplotlib`); it is not a dependency of the
  app, which draws the same curves in the terminal with plotext.

Then evaluate the shipped file, e.g.
    fer-tui evaluate --checkpoint checkpoints/resnet18-cpu.pt --data ... --json eval.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_tui.errors import FerError  # noqa: E402
from fer_tui.models import read_checkpoint, save_checkpoint  # noqa: E402
from fer_tui.runs import RunState, read_config, read_run  # noqa: E402


def validated_on(run: Path) -> str:
    """What the run validated on: "test", or "holdout" (a slice of train)."""
    try:
        return read_config(run).data.val
    except FerError:
        return "test"


def ship(run: Path, out: Path) -> dict:
    ckpt = read_checkpoint(run / "last.pt")
    meta = {**ckpt["meta"], "selection": "last epoch", "source_run": run.name}
    save_checkpoint(out, ckpt["model"], meta, half=True)
    return meta


def plot(runs: dict[Path, RunState], png: Path) -> None:
    """`runs`: each run dir with its state (the curve: each epoch once, a resume's redone
    epoch replacing the first try)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for i, (run, state) in enumerate(runs.items()):
        ev = state.history
        if not ev:
            continue
        val = validated_on(run)
        x = [e["epoch"] for e in ev]
        colour = f"C{i}"
        arch = state.arch if state.arch != "?" else run.name
        label = f"{arch} {state.recipe if state.recipe != '?' else ''}".strip()
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(x, [e[f"train_{key}"] for e in ev], "-", color=colour, label=f"{label} train")
            ax.plot(
                x,
                [e[f"val_{key}"] for e in ev],
                "--",
                color=colour,
                label=f"{label} {'test' if val == 'test' else 'held-out'}",
            )
    ax_loss.set(xlabel="epoch", ylabel="loss (train loss has label smoothing)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument(
        "--name", default=None, help="ship the runs' last.pt under this name (without .pt)"
    )
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    ap.add_argument("--png", type=Path, default=None, help="curves PNG (default: none)")
    ap.add_argument(
        "--replace",
        action="store_true",
        help="overwrite a shipped file of the same name (only with a better model)",
    )
    ap.add_argument(
        "--unfinished", action="store_true", help="ship a run that stopped before its last epoch"
    )
    args = ap.parse_args(argv)
    if args.name is None and args.png is None:
        ap.error("nothing to do: give --name (ship) and/or --png (curves)")
    for run in args.runs:
        if not (run / "events.jsonl").is_file():
            print(f"ship_run: {run} has no events.jsonl: is it a run directory?", file=sys.stderr)
            return 2
    runs = {run: read_run(run) for run in args.runs}
    if args.name is not None:
        for run, state in runs.items():
            if not (run / "last.pt").is_file():
                print(f"ship_run: {run} has no last.pt: is it a run directory?", file=sys.stderr)
                return 2
            ev = state.history
            if not args.unfinished and (not ev or ev[-1]["epoch"] != ev[-1]["epochs"]):
                done = f"{ev[-1]['epoch']}/{ev[-1]['epochs']}" if ev else "0"
                print(
                    f"ship_run: {run} has finished epoch {done} only: let it end (or resume "
                    f"it: `fer-tui train --resume {run}`), or pass --unfinished",
                    file=sys.stderr,
                )
                return 2
        args.checkpoints.mkdir(parents=True, exist_ok=True)
        for run, state in runs.items():
            arch = state.arch if state.arch != "?" else run.name
            name = args.name if len(runs) == 1 else f"{args.name}-{arch}"
            out = args.checkpoints / f"{name}.pt"
            if out.exists() and not args.replace:
                print(
                    f"ship_run: {out} exists; pass --replace if this model is better",
                    file=sys.stderr,
                )
                return 2
            ship(run, out)
            last = (state.history or [{}])[-1]
            print(
                f"{out}: {arch} epoch {last.get('epoch')}/{last.get('epochs')}, "
                f"val acc {last.get('val_acc', float('nan')):.4f}, "
                f"{out.stat().st_size / 2**20:.1f} MiB"
            )
    if args.png:
        plot(runs, args.png)
        print(f"curves: {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
