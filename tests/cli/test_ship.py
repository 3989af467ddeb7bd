"""`fer-tui ship` on tiny real runs: which weights it ships and says it shipped, what it
refuses, and the curves PNG.

The runs are a ResNet18 with the ImageNet stem at 16x16 trained here for two epochs on a few
synthetic faces, keeping an EMA of the weights; one validates on a holdout from train, the other
on the test split. Tests that need the EMA to win or lose rewrite the last epoch event of a copy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_tui.cli import main
from fer_tui.models import load_checkpoint, read_checkpoint
from fer_tui.runs import EMA, EVENTS, LAST, LOCK

TINY = """
name = "tiny"
archs = ["resnet18"]
[data]
val = "{val}"
[model]
stem = "imagenet"
image_size = 16
[train]
epochs = 2
batch_size = 4
lr = 0.05
warmup_epochs = 0.5
device = "cpu"
log_every_steps = 1
ema_decay = 0.9
"""


def _train(tmp: Path, data: Path, val: str) -> Path:
    config = tmp / f"{val}.toml"
    config.write_text(TINY.format(val=val))
    runs = tmp / f"runs-{val}"
    argv = ["train", "--config", str(config), "--data", str(data), "--runs-dir", str(runs)]
    assert main([*argv, "--limit", "24"]) == 0
    (run,) = runs.iterdir()
    return run


@pytest.fixture(scope="module")
def runs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two finished 2-epoch runs with ema.pt: "holdout" and "test" (what they validated on)."""
    tmp = tmp_path_factory.mktemp("ship-runs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {val: _train(tmp, tiny_data, val) for val in ("holdout", "test")}
    finally:
        torch.set_num_threads(before)


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of `run` named like it; the checkpoints are hard links (they are only read)."""
    target = dest / run.name
    target.mkdir(parents=True)
    for f in run.iterdir():
        if f.suffix == ".pt":
            os.link(f, target / f.name)
        elif f.is_file():
            shutil.copy2(f, target / f.name)
    return target


def events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / EVENTS).read_text().splitlines()]


def write_events(run: Path, evs: list[dict]) -> None:
    (run / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in evs))


def set_last_epoch(run: Path, **fields: float) -> None:
    evs = events(run)
    last = max(i for i, e in enumerate(evs) if e["type"] == "epoch")
    evs[last].update(fields)
    write_events(run, evs)


def ship(run: Path, out: Path, *extra: str) -> int:
    return main(["ship", str(run), "--name", "model", "--checkpoints", str(out), *extra])


def shipped_meta(out: Path) -> dict:
    return read_checkpoint(out / "model.pt")["meta"]


def same_weights(shipped: Path, source: Path) -> bool:
    a, b = read_checkpoint(shipped)["model"], read_checkpoint(source)["model"]
    return a.keys() == b.keys() and all(
        torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-3) for k in a
    )


def test_ships_an_fp16_checkpoint_that_loads(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The shipped file is fp16 on disk, loads as a model, keeps the run's metadata, says how
    the weights were chosen and from which run, goes to ./checkpoints by default, and one
    line reports it."""
    run = runs["holdout"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    assert main(["ship", str(run), "--name", "tiny18.pt", "--weights", "last"]) == 0
    path = Path("checkpoints") / "tiny18.pt"
    raw = read_checkpoint(path)
    floats = [v for v in raw["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert path.stat().st_size < 0.6 * (run / "best.pt").stat().st_size
    model, meta = load_checkpoint(path)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert meta["arch"] == "resnet18" and meta["recipe"] == "tiny" and meta["epoch"] == 2
    assert meta["selection"] == "last epoch (2)" and meta["source_run"] == run.name
    assert same_weights(path, run / LAST)
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{path}: resnet18, last epoch (2), ") and out.endswith(" MiB")


def test_auto_takes_the_ema_only_when_it_won_on_the_holdout(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """On a holdout run, auto ships ema.pt when the EMA's accuracy beat the raw weights' at
    the last epoch, and last.pt when it did not; the selection gives both scores."""
    run = copy_run(runs["holdout"], tmp_path / "runs")
    out = tmp_path / "ckpts"
    set_last_epoch(run, val_acc=0.5, val_acc_ema=0.625)
    assert ship(run, out) == 0
    assert shipped_meta(out)["selection"] == (
        "EMA of the weights after epoch 2 (decay 0.9), chosen on the holdout: 0.625 vs 0.500"
    )
    assert shipped_meta(out)["weights"] == "ema"
    assert same_weights(out / "model.pt", run / EMA)
    assert not same_weights(out / "model.pt", run / LAST)

    set_last_epoch(run, val_acc=0.625, val_acc_ema=0.5)
    assert ship(run, out, "--replace") == 0
    assert shipped_meta(out)["selection"] == (
        "last epoch (2), chosen on the holdout over its EMA (decay 0.9): 0.625 vs 0.500"
    )
    assert same_weights(out / "model.pt", run / LAST)


def test_auto_never_chooses_by_the_test_split(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run that validated on the test split ships its last epoch even when the EMA scored
    higher there, and says why; --weights ema still ships the EMA when asked."""
    run = copy_run(runs["test"], tmp_path / "runs")
    out = tmp_path / "ckpts"
    set_last_epoch(run, val_acc=0.5, val_acc_ema=0.9)
    assert ship(run, out) == 0
    selection = shipped_meta(out)["selection"]
    assert selection.startswith("last epoch (2); its EMA was not considered")
    assert "test split" in selection
    assert same_weights(out / "model.pt", run / LAST)

    assert ship(run, out, "--replace", "--weights", "ema") == 0
    assert shipped_meta(out)["selection"] == (
        "EMA of the weights after epoch 2 (decay 0.9), as asked (--weights ema)"
    )
    assert same_weights(out / "model.pt", run / EMA)


def test_weights_ema_without_an_ema_names_the_fix(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """--weights ema on a run without ema.pt is a one-line error naming --weights last; auto
    then ships the last epoch."""
    run = copy_run(runs["holdout"], tmp_path / "runs")
    (run / EMA).unlink()
    out = tmp_path / "ckpts"
    assert ship(run, out, "--weights", "ema") == 2
    err = capsys.readouterr().err
    assert "has no ema.pt" in err and "--weights last" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert ship(run, out) == 0
    assert shipped_meta(out)["selection"] == "last epoch (2)"


def test_an_unfinished_run_is_refused_unless_asked_for(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """A run whose last epoch event is not the schedule's last is refused with the resume
    command and --unfinished; with --unfinished it ships last.pt, labelled where it stopped.
    A run that never finished an epoch is refused too."""
    run = copy_run(runs["holdout"], tmp_path / "runs")
    out = tmp_path / "ckpts"
    evs = events(run)
    first = next(i for i, e in enumerate(evs) if e["type"] == "epoch" and e["epoch"] == 1)
    write_events(run, evs[: first + 1])
    assert ship(run, out) == 2
    err = capsys.readouterr().err
    assert "finished epoch 1 of 2 only" in err
    assert f"fer-tui train --resume {run}" in err and "--unfinished" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()

    assert ship(run, out, "--unfinished") == 0
    assert shipped_meta(out)["selection"] == "last.pt, stopped after epoch 1 of 2"
    assert same_weights(out / "model.pt", run / LAST)

    write_events(run, evs[:1])  # the start event only
    assert ship(run, out, "--replace") == 2
    assert "finished no epoch" in capsys.readouterr().err


def test_a_run_still_training_is_not_told_to_resume(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """While a trainer holds the run, the refusal says it is still training (not "resume it"),
    and --unfinished labels the weights as taken mid-run, not as stopped."""
    run = copy_run(runs["holdout"], tmp_path / "runs")
    out = tmp_path / "ckpts"
    evs = events(run)
    first = next(i for i, e in enumerate(evs) if e["type"] == "epoch" and e["epoch"] == 1)
    write_events(run, evs[: first + 1])
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK).write_text(f"{trainer.pid} host\n")
        assert ship(run, out) == 2
        err = capsys.readouterr().err
        assert f"still training (pid {trainer.pid})" in err and "--unfinished" in err
        assert "--resume" not in err and len(err.strip().splitlines()) == 1
        assert ship(run, out, "--unfinished") == 0
        assert shipped_meta(out)["selection"] == "last.pt, still training after epoch 1 of 2"
    finally:
        trainer.kill()
        trainer.wait()


def test_an_existing_file_is_kept_unless_replace(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """NAME.pt is never overwritten silently: refused (file untouched), then --replace."""
    out = tmp_path / "ckpts"
    out.mkdir()
    (out / "model.pt").write_bytes(b"an older model")
    assert ship(runs["holdout"], out) == 2
    assert "--replace" in capsys.readouterr().err
    assert (out / "model.pt").read_bytes() == b"an older model"
    assert ship(runs["holdout"], out, "--replace") == 0
    assert load_checkpoint(out / "model.pt")[1]["source_run"] == runs["holdout"].name


def test_not_a_run_directory_is_a_one_line_error(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """No events.jsonl, no config.toml or no last.pt: exit 2 with one line naming the file;
    so are a missing folder and several runs with --name."""
    empty = tmp_path / "empty"
    empty.mkdir()
    no_config = copy_run(runs["holdout"], tmp_path / "a")
    (no_config / "config.toml").unlink()
    no_last = copy_run(runs["holdout"], tmp_path / "b")
    (no_last / LAST).unlink()
    cases = [
        ([str(empty)], "has no events.jsonl"),
        ([str(no_config)], "has no config.toml"),
        ([str(no_last)], "has no last.pt"),
        ([str(tmp_path / "missing")], "is not a directory"),
        ([str(runs["holdout"]), str(runs["test"])], "--name ships one run, not 2"),
    ]
    for dirs, message in cases:
        code = main(["ship", *dirs, "--name", "m", "--checkpoints", str(tmp_path / "c")])
        err = capsys.readouterr().err
        assert code == 2, message
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c").exists()


def test_png_draws_the_curves_of_several_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    """--png without --name draws the curves of every run given into one PNG, shipping
    nothing; with --name it ships and draws."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "figs" / "curves.png"
    assert main(["ship", str(runs["holdout"]), str(runs["test"]), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png2, out = tmp_path / "one.png", tmp_path / "ckpts"
    assert ship(runs["holdout"], out, "--png", str(png2)) == 0
    assert png2.is_file() and (out / "model.pt").is_file()


def test_png_without_matplotlib_names_the_install(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """matplotlib is not a dependency: without it --png is a one-line error naming
    `pip install matplotlib`, exit 2, before anything is shipped."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    out = tmp_path / "ckpts"
    assert ship(runs["holdout"], out, "--png", str(tmp_path / "c.png")) == 2
    err = capsys.readouterr().err
    assert "pip install matplotlib" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "c.png").exists()


def test_nothing_to_do_is_an_error(runs: dict[str, Path], capsys) -> None:
    """Neither --name nor --png: exit 2, saying which to give."""
    assert main(["ship", str(runs["holdout"])]) == 2
    assert "--name" in capsys.readouterr().err


def test_adjust_logits_tunes_on_the_holdout_and_folds_into_the_bias(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """--adjust-logits records what it tuned on the run's holdout, says so in the selection,
    and the shipped final-layer bias is the run's plus the recorded adjustment."""
    run, out = runs["holdout"], tmp_path / "ckpts"
    assert ship(run, out, "--weights", "last", "--adjust-logits") == 0
    meta = shipped_meta(out)
    adj = meta["logit_adjustment"]
    assert adj["holdout_size"] > 0 and 0 <= adj["tau"] <= 1.5
    assert list(adj["bias"]) == meta["classes"]
    assert meta["selection"].startswith("last epoch (2); ")
    assert ("logit adjustment tau" in meta["selection"]) == (adj["tau"] > 0)
    shipped = read_checkpoint(out / "model.pt")["model"]["fc.bias"].float()
    source = read_checkpoint(run / LAST)["model"]["fc.bias"].float()
    expected = source + torch.tensor(list(adj["bias"].values()))
    assert torch.allclose(shipped, expected, atol=2e-3)
    assert "adjustment" in capsys.readouterr().out
    # evaluate's JSON says how the weights were chosen
    report = tmp_path / "eval.json"
    data = Path(read_checkpoint(run / LAST)["meta"]["config"]["data"]["path"])
    argv = ["evaluate", "--checkpoint", str(out / "model.pt"), "--data", str(data)]
    assert main([*argv, "--json", str(report)]) == 0
    model = json.loads(report.read_text())["model"]
    assert model["selection"] == meta["selection"]
    assert model["logit_adjustment_tau"] == adj["tau"]


def test_an_applied_adjustment_is_folded_into_the_shipped_bias(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When tuning keeps a tau (forced to 0.5 here: a tiny run gains nothing real), the shipped
    final-layer bias moves by -tau * log(prior) of the run's training faces, and the selection
    names it."""
    from fer_tui import logit_adjustment

    real_tune = logit_adjustment.tune

    def tau_half(probs, labels, prior):
        tuned = real_tune(probs, labels, prior)
        return dataclasses.replace(tuned, tau=0.5, bias=-0.5 * np.log(prior))

    monkeypatch.setattr(logit_adjustment, "tune", tau_half)
    run, out = runs["holdout"], tmp_path / "ckpts"
    assert ship(run, out, "--weights", "last", "--adjust-logits") == 0
    meta = shipped_meta(out)
    bias = torch.tensor(list(meta["logit_adjustment"]["bias"].values()))
    assert meta["logit_adjustment"]["tau"] == 0.5 and bias.abs().min() > 0.5
    assert "; logit adjustment tau 0.5 tuned on the" in meta["selection"]
    shipped = read_checkpoint(out / "model.pt")["model"]["fc.bias"].float()
    source = read_checkpoint(run / LAST)["model"]["fc.bias"].float()
    assert torch.allclose(shipped, source + bias, atol=2e-3)


def test_adjust_logits_refuses_a_run_without_a_holdout(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "ckpts"
    assert ship(runs["test"], out, "--adjust-logits") == 2
    err = capsys.readouterr().err
    assert "validated on the test split" in err and "without --adjust-logits" in err
    assert not out.exists()


def test_adjust_logits_with_a_moved_dataset_names_the_flag(
    runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "ckpts"
    assert ship(runs["holdout"], out, "--adjust-logits", "--data", str(tmp_path / "gone")) == 2
    assert "gone" in capsys.readouterr().err
    assert not (out / "model.pt").exists()
