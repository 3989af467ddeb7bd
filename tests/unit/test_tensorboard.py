"""TensorBoard scalars made from a run's events: written as the trainer goes, or afterwards by
`fer-tui tensorboard`, and read back with tensorboard's own reader."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fer_tui.cli import main
from fer_tui.runs import EventWriter, read_events
from fer_tui.tensorboard import LOGDIR, ScalarWriter, replay, scalars
from tests.unit.test_train import tiny_run_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] as TensorBoard reads RUN/tensorboard/."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / LOGDIR), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch run of 6 steps each, logging every step, with tensorboard installed."""
    pytest.importorskip("tensorboard")
    return tiny_run_dir(tmp_path_factory.mktemp("tb"), tiny_data)


def expected(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(run_dir):
        for tag, value, step in scalars(event):
            out.setdefault(tag, []).append((step, value))
    return out


def assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for tag in want:
        assert [s for s, _ in got[tag]] == [s for s, _ in want[tag]], tag
        for (_, a), (_, b) in zip(got[tag], want[tag], strict=True):
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7), (tag, a, b)


def test_a_run_writes_its_scalars_as_it_trains(tiny_run: Path) -> None:
    """Each logging window's loss, accuracy, learning rate and images/s at its optimizer step;
    each epoch's losses, accuracies, learning rate, images/s and time at the epoch."""
    got = read_scalars(tiny_run)
    assert [s for s, _ in got["train/loss"]] == list(range(1, 13))  # 2 epochs x 6 steps
    for tag in ("train/acc", "train/lr", "train/img_per_s"):
        assert [s for s, _ in got[tag]] == list(range(1, 13)), tag
    for tag in ("epoch/train_loss", "epoch/train_acc", "epoch/val_loss", "epoch/val_acc"):
        assert [s for s, _ in got[tag]] == [1, 2], tag
    for tag in ("epoch/lr", "epoch/img_per_s", "epoch/seconds"):
        assert [s for s, _ in got[tag]] == [1, 2], tag
    assert all(0.0 <= v <= 1.0 for _, v in got["train/acc"] + got["epoch/val_acc"])
    epochs = [e for e in read_events(tiny_run) if e["type"] == "epoch"]
    assert [v for _, v in got["epoch/val_acc"]] == pytest.approx([e["val_acc"] for e in epochs])
    assert_same(got, expected(tiny_run))


def test_fer_tui_tensorboard_writes_them_again_from_the_events(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A run made without tensorboard gets the same scalars afterwards, from its events alone;
    doing it twice replaces the file rather than doubling the points."""
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(tiny_run, old)
    shutil.rmtree(old / LOGDIR)
    assert main(["tensorboard", str(old)]) == 0
    assert main(["tensorboard", str(old)]) == 0
    assert f"scalars in {old / LOGDIR}" in capsys.readouterr().out
    assert len(list((old / LOGDIR).iterdir())) == 1
    assert_same(read_scalars(old), expected(tiny_run))


def test_every_run_under_the_runs_dir_by_default(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / tiny_run.name)
    shutil.rmtree(runs / tiny_run.name / LOGDIR)
    assert main(["--runs-dir", str(runs), "tensorboard"]) == 0
    assert read_scalars(runs / tiny_run.name)["epoch/val_acc"]


def test_a_resume_drops_what_the_stopped_session_logged_after_its_last_epoch() -> None:
    events = [
        {"type": "start", "start_epoch": 1},
        {"type": "step", "epoch": 1, "step": 1, "loss": 2.0},
        {"type": "epoch", "epoch": 1, "val_acc": 0.3},
        {"type": "step", "epoch": 2, "step": 2, "loss": 1.9},  # then a kill, mid-epoch 2
        {"type": "start", "start_epoch": 2, "resumed": True},
        {"type": "step", "epoch": 2, "step": 2, "loss": 1.8},
        {"type": "epoch", "epoch": 2, "val_acc": 0.4},
    ]
    kept = replay(events)
    assert [(e["type"], e.get("loss")) for e in kept] == [
        ("step", 2.0),
        ("epoch", None),
        ("step", 1.8),
        ("epoch", None),
    ]


def test_scalars_of_events_and_the_ones_without_curves() -> None:
    step = {"type": "step", "epoch": 1, "step": 7, "loss": 1.5, "acc": 0.25, "lr": 0.1}
    assert scalars(step) == [("train/loss", 1.5, 7), ("train/acc", 0.25, 7), ("train/lr", 0.1, 7)]
    epoch = {"type": "epoch", "epoch": 3, "val_acc": 0.6, "val_acc_ema": 0.62, "lr": None}
    assert scalars(epoch) == [("epoch/val_acc", 0.6, 3), ("epoch/val_acc_ema", 0.62, 3)]
    assert scalars({"type": "start", "epoch": 1}) == []
    assert scalars({"type": "step", "loss": 1.0}) == []  # no step: nowhere to put it


def test_a_failing_scalar_writer_never_stops_the_events(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """RUN/tensorboard cannot be made (here a file is in its way): one warning, no exception,
    and every event still reaches events.jsonl."""
    pytest.importorskip("tensorboard")
    (tmp_path / LOGDIR).write_text("in the way")
    with EventWriter(tmp_path) as events:
        assert isinstance(events.scalars, ScalarWriter)
        for i in range(1, 4):
            events.write("step", epoch=1, step=i, loss=1.0, lr=0.1, img_per_s=10.0)
        events.write("epoch", epoch=1, val_acc=0.5)
    assert [e["type"] for e in read_events(tmp_path)] == ["step"] * 3 + ["epoch"]
    err = capsys.readouterr().err
    assert err.count("TensorBoard scalars stop here") == 1


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FER_TUI_TENSORBOARD", "0")
    with EventWriter(tmp_path) as events:
        events.write("epoch", epoch=1, val_acc=0.5)
    assert not (tmp_path / LOGDIR).exists()
