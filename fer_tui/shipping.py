"""Shipping a run: its final weights as an fp16 checkpoint, and its curves as a PNG.

A shipped file is the chosen checkpoint of the run (last.pt or ema.pt) with fp16 weights and the
run's metadata, plus `selection`, a sentence saying exactly how the weights were chosen, and
`source_run`, the run directory's name. Which weights, with `weights="auto"`:

- the EMA (ema.pt) when the run kept one (train.ema_decay > 0), validated on a holdout from
  train (data.val = "holdout") and the EMA's accuracy there beat the raw weights' at the last
  epoch;
- else the last epoch (last.pt). A run that validated on the test split never has its weights
  picked by it: the test split is for reporting, so the last epoch is shipped.

Only a run that finished its schedule ships, unless asked for (`unfinished`), and the selection
then says where it stopped.

With `adjust_logits`, a post-hoc logit adjustment for the rare classes is tuned on the run's
holdout from train (see `fer_tui.logit_adjustment`) and folded into the final layer's bias; a run
that validated on the test split cannot have one. Nothing here imports torch until a checkpoint
is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_tui.config import RunConfig
from fer_tui.errors import FerError, RunError, disk_error
from fer_tui.files import atomic_write, lock_target, sweep_temp_files
from fer_tui.runs import (
    CONFIG,
    EMA,
    EVENTS,
    LAST,
    RunState,
    read_config,
    read_run,
    running_pid,
)
from fer_tui.space import check_free_space

if TYPE_CHECKING:  # numpy comes with it: finding a run's weights needs none
    from fer_tui.logit_adjustment import Adjustment

#: --weights: "auto" (the EMA when it won on a holdout, else last), "last" or "ema".
WEIGHTS = ("auto", "last", "ema")


@dataclass(frozen=True)
class Shipped:
    """One shipped checkpoint."""

    path: Path
    arch: str
    selection: str
    size_bytes: int
    run_dir: Path


@dataclass(frozen=True)
class Choice:
    """Which file of a run to ship, and why."""

    path: Path
    selection: str


def _require_run(run_dir: Path, *, config: bool) -> None:
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is not a directory: give a run directory (runs/<run>)")
    needed = (EVENTS, CONFIG) if config else (EVENTS,)
    for name in needed:
        if not (run_dir / name).is_file():
            raise RunError(
                f"{run_dir} has no {name}: it is not a run directory (give one that "
                f"`fer-tui train` wrote, runs/<run>)"
            )


def _progress(state: RunState) -> tuple[int, int]:
    """(last completed epoch, epochs of the schedule as the run last said)."""
    last = state.history[-1] if state.history else {}
    done = int(last.get("epoch") or 0)
    total = int(state.epochs or last.get("epochs") or 0)
    return done, total


def choose_weights(
    run_dir: str | os.PathLike[str],
    state: RunState,
    cfg: RunConfig,
    weights: str = "auto",
    *,
    unfinished: bool = False,
) -> Choice:
    """Which file of the run to ship (see the module docstring), with the `selection` text.

    Raises RunError for a run that did not finish its schedule (unless `unfinished`), a missing
    last.pt, or `weights="ema"` without an ema.pt.
    """
    run_dir = Path(run_dir)
    if weights not in WEIGHTS:
        raise FerError(f"--weights {weights!r}: choose one of {', '.join(WEIGHTS)}")
    done, total = _progress(state)
    finished = done > 0 and done == total
    pid = None if finished else running_pid(run_dir)
    if not finished and not unfinished:
        where = f"finished epoch {done} of {total} only" if done else "finished no epoch"
        if pid is not None:
            what = (
                f"let it end, or pass --unfinished to ship its weights after epoch {done}"
                if done
                else "there is nothing to ship before its first epoch ends"
            )
            raise RunError(f"{run_dir} is still training (pid {pid}) and has {where}: {what}")
        raise RunError(
            f"{run_dir} {where}: let it end or resume it (`fer-tui train --resume {run_dir}`), "
            f"or pass --unfinished to ship it as it is"
        )
    if not (run_dir / LAST).is_file():
        raise RunError(
            f"{run_dir} has no {LAST}: the run never completed an epoch here, or its "
            f"checkpoints were not copied with it"
        )
    decay = cfg.train.ema_decay
    has_ema = decay > 0 and (run_dir / EMA).is_file()
    last_event = state.history[-1] if state.history else {}
    acc, acc_ema = last_event.get("val_acc"), last_event.get("val_acc_ema")
    halt = "still training" if pid is not None else "stopped"
    stopped = "" if finished else f"; {halt} after epoch {done} of {total}"
    ema_text = f"EMA of the weights after epoch {done} (decay {decay:g})"
    last_text = (
        f"last epoch ({done})" if finished else f"last.pt, {halt} after epoch {done} of {total}"
    )

    if weights == "ema":
        if not has_ema:
            why = (
                f"it kept no moving average (train.ema_decay = {decay:g})"
                if decay <= 0
                else f"{EMA} is missing"
            )
            raise RunError(
                f"{run_dir} has no {EMA}: {why}; ship its last epoch with --weights last"
            )
        return Choice(run_dir / EMA, f"{ema_text}, as asked (--weights ema){stopped}")
    if weights == "last" or not finished:
        return Choice(run_dir / LAST, last_text)
    # auto, on a finished run
    if not has_ema:
        return Choice(run_dir / LAST, last_text)
    if cfg.data.val != "holdout":
        return Choice(
            run_dir / LAST,
            f"{last_text}; its EMA was not considered: the run validated on the test split, "
            f"which is never used to choose weights",
        )
    if acc is None or acc_ema is None:
        return Choice(run_dir / LAST, f"{last_text}; its EMA has no holdout score to be chosen by")
    if acc_ema > acc:
        return Choice(
            run_dir / EMA, f"{ema_text}, chosen on the holdout: {acc_ema:.3f} vs {acc:.3f}"
        )
    return Choice(
        run_dir / LAST,
        f"{last_text}, chosen on the holdout over its EMA (decay {decay:g}): "
        f"{acc:.3f} vs {acc_ema:.3f}",
    )


def final_weights(
    run_dir: str | os.PathLike[str], state: RunState | None = None, *, unfinished: bool = False
) -> Path | None:
    """The file of a run that stands for it: what `fer-tui ship --weights auto` would ship
    (ema.pt when it won on a holdout, else last.pt), never best.pt, which a run validating on
    the test split chose by the test split. With `unfinished`, a run still training or stopped
    gives its last.pt. None when there is no such file (or the run did not finish)."""
    run_dir = Path(run_dir)
    try:
        state = state if state is not None else read_run(run_dir)
        cfg = read_config(run_dir)
        return choose_weights(run_dir, state, cfg, "auto", unfinished=unfinished).path
    except FerError:
        return None


def ship_run(
    run_dir: str | os.PathLike[str],
    name: str,
    *,
    checkpoints_dir: str | os.PathLike[str] | None = None,
    weights: str = "auto",
    replace: bool = False,
    unfinished: bool = False,
    adjust_logits: bool = False,
    data: str | os.PathLike[str] | None = None,
    on_wait: Callable[[int | None], object] | None = None,
) -> Shipped:
    """Write the run's chosen weights as `<checkpoints_dir>/<name>.pt` in fp16.

    The file is written whole or not at all, under a lock beside it (`.<name>.pt.lock`): a
    second ship to the same name waits for the first (`on_wait(its pid)` is called once), then
    refuses unless `replace`. What killed ships left there is removed first, and the disk's
    free space checked.

    Args:
        run_dir: a run directory (events.jsonl, config.toml, last.pt; ema.pt when kept).
        name: the file name, without `.pt`.
        checkpoints_dir: where to write (default: `fer_tui.paths.ship_dir()`).
        weights: "auto", "last" or "ema" (see `choose_weights`).
        replace: overwrite an existing file of that name.
        unfinished: ship a run that stopped before the end of its schedule.
        adjust_logits: tune a logit adjustment on the run's holdout and fold it into the
            weights (it stays off when it does not help there).
        data: the dataset, when it is no longer where the run's config says (for
            `adjust_logits`, which reads the holdout).
        on_wait: called with the pid of another ship writing the same file, before waiting.

    Returns:
        What was written. Raises a FerError (RunError, CheckpointError) for anything the
        user can fix, before writing anything.
    """
    from fer_tui import paths

    run_dir = Path(run_dir)
    name = name.removesuffix(".pt")
    if not name or Path(name).name != name:
        raise FerError(f"--name {name!r}: give a file name, without folders (use --checkpoints)")
    out_dir = Path(checkpoints_dir) if checkpoints_dir is not None else paths.ship_dir()
    out = out_dir / f"{name}.pt"
    _require_run(run_dir, config=True)
    state = read_run(run_dir)
    cfg = read_config(run_dir)
    choice = choose_weights(run_dir, state, cfg, weights, unfinished=unfinished)
    if out.exists() and not replace:
        raise RunError(f"{out} exists: pass --replace to overwrite it (with a better model only)")
    if adjust_logits and cfg.data.val != "holdout":
        raise RunError(
            f"{run_dir} validated on the test split, so it has no holdout to tune a logit "
            f"adjustment on (the test split never chooses anything): ship it without "
            f'--adjust-logits, or train with data.val = "holdout"'
        )

    from fer_tui.models import read_checkpoint, save_checkpoint  # deferred: imports torch

    ckpt = read_checkpoint(choice.path)
    selection = choice.selection
    done, _ = _progress(state)
    if choice.path.name == EMA and int(ckpt["meta"].get("epoch") or 0) != done:
        raise RunError(
            f"{choice.path} holds the EMA after epoch {ckpt['meta'].get('epoch')}, not after "
            f"the last epoch ({done}): ship --weights last"
        )
    step = int(ckpt.get("step_in_epoch") or 0)
    if choice.path.name == LAST and step:  # saved by a stop in the middle of an epoch
        selection += f", and {step} steps into epoch {int(ckpt.get('epoch') or 0) + 1}"
    weights_sd = ckpt["model"]
    meta = dict(ckpt["meta"])
    if adjust_logits:
        adjustment = tune_on_holdout(choice.path, cfg, data)
        weights_sd = fold_bias(weights_sd, adjustment.bias)
        meta["logit_adjustment"] = adjustment.as_meta(list(meta["classes"]))
        selection += f"; {adjustment.describe()}"
    meta.update(selection=selection, source_run=run_dir.name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        sweep_temp_files(out_dir, [out.name])
        with lock_target(out, on_wait=on_wait):
            if out.exists() and not replace:
                raise RunError(
                    f"{out} exists (another ship wrote it just now): pass --replace to overwrite it"
                )
            check_free_space(out_dir, _fp16_bytes(weights_sd), str(out))
            save_checkpoint(out, weights_sd, meta, half=True)
            size = out.stat().st_size
    except OSError as exc:
        raise disk_error(exc, out) from None
    arch = str(meta.get("arch") or state.arch)
    return Shipped(out, arch, selection, size, run_dir)


def _fp16_bytes(state_dict: dict[str, Any]) -> int:
    """About the size of `state_dict` saved with fp16 floats."""
    from fer_tui.space import OVERHEAD

    return OVERHEAD + sum(
        v.numel() * (2 if v.is_floating_point() else v.element_size()) for v in state_dict.values()
    )


# --- logit adjustment ---------------------------------------------------------------------


def tune_on_holdout(
    checkpoint: Path, cfg: RunConfig, data: str | os.PathLike[str] | None = None
) -> Adjustment:
    """Tune the logit adjustment of `checkpoint` on the holdout its run validated on: the same
    faces (the config's dataset, limit and holdout fraction, cut the same way), and the class
    prior of the faces it trained on."""
    from fer_tui.data.load import load_dataset
    from fer_tui.logit_adjustment import class_prior, tune
    from fer_tui.models import load_checkpoint, predict_proba
    from fer_tui.training.arrays import prepare_arrays

    source = data if data is not None else cfg.data.path
    if source is None:
        raise RunError(
            "the run's config does not say where its dataset is: give it with --data "
            "(the holdout is cut from its train split)"
        )
    arrays = prepare_arrays(cfg, load_dataset(source))  # cut as the run cut it (limit, fraction)
    model, meta = load_checkpoint(checkpoint)
    probs = predict_proba(model, meta, arrays.val_x)
    prior = class_prior(arrays.train_y, int(meta["num_classes"]))
    return tune(probs, arrays.val_y, prior)


def fold_bias(state_dict: dict[str, Any], bias: Any) -> dict[str, Any]:
    """A copy of `state_dict` with `bias` added to the final layer's bias (`fc.bias`, or
    `fc.1.bias` behind dropout)."""
    import torch

    key = "fc.bias" if "fc.bias" in state_dict else "fc.1.bias"
    if key not in state_dict:
        raise RunError("the checkpoint has no final-layer bias (fc.bias) to fold the adjustment in")
    old = state_dict[key]
    new = old.float() + torch.as_tensor(bias, dtype=torch.float32, device=old.device)
    return {**state_dict, key: new.to(old.dtype)}


# --- curves -------------------------------------------------------------------------------


def import_pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; a FerError naming the install when it is missing
    (matplotlib is not a dependency: the app draws its curves in the terminal)."""
    try:
        import matplotlib
    except ImportError:
        raise FerError(
            "drawing curves into a PNG needs matplotlib, which fer-tui does not install: "
            "pip install matplotlib"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _validated_on(run_dir: Path) -> str:
    """ "test" or "holdout"; "test" when the config cannot be read (the cautious label)."""
    try:
        return read_config(run_dir).data.val
    except FerError:
        return "test"


def plot_curves(run_dirs: Sequence[str | os.PathLike[str]], png: str | os.PathLike[str]) -> Path:
    """Draw loss and accuracy per epoch, train and validation, one colour per run, side by
    side (the paper's Figure 2 layout), into `png`. Each epoch appears once: a resume's redone
    epoch replaces the first try. Needs matplotlib."""
    plt = import_pyplot()
    runs = [Path(r) for r in run_dirs]
    for run_dir in runs:
        _require_run(run_dir, config=False)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for i, run_dir in enumerate(runs):
        state = read_run(run_dir)
        history = state.history
        if not history:
            continue
        x = [e["epoch"] for e in history]
        colour = f"C{i}"
        arch = state.arch if state.arch != "?" else run_dir.name
        label = f"{arch} {state.recipe if state.recipe != '?' else ''}".strip()
        val_label = "test" if _validated_on(run_dir) == "test" else "held-out"
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(x, state.series(f"train_{key}"), "-", color=colour, label=f"{label} train")
            ax.plot(x, state.series(f"val_{key}"), "--", color=colour, label=f"{label} {val_label}")
    ax_loss.set(xlabel="epoch", ylabel="loss (train loss has label smoothing)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    png = Path(png)
    try:
        png.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(png, lambda f: fig.savefig(f, format="png"))
    except OSError as exc:
        raise disk_error(exc, png) from None
    finally:
        plt.close(fig)
    return png
