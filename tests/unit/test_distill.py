"""`fer-tui train --teacher`: a student learns its teachers' probabilities; teachers that cannot
teach the recipe's student are refused before any run dir exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fer_tui.cli import main
from fer_tui.data.index import CLASSES
from fer_tui.data.load import load_dataset
from fer_tui.models import build_model, load_checkpoint, model_meta, predict_proba, save_checkpoint
from fer_tui.paths import cache_dir

STUDENT = """
name = "student"
archs = ["resnet18"]
[model]
stem = "imagenet"
[augment]
erasing_p = 0.0
[train]
epochs = 3
batch_size = 8
lr = 0.05
warmup_epochs = 0.0
device = "cpu"
log_every_steps = 1
[distill]
weight = {weight}
temperature = 1.0
tta = "none"
"""

HAPPY = CLASSES.index("happy")


def happy_teacher(path: Path, image_size: int = 48, classes: list[str] | None = None) -> Path:
    """A teacher that says 'happy' (p = 0.93) for every face, whatever its label."""
    model = build_model("resnet18", stem="imagenet", in_channels=1)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[HAPPY] = 5.0
    meta = model_meta("resnet18", image_size=image_size)
    meta["stem"] = "imagenet"
    if classes is not None:
        meta["classes"], meta["num_classes"] = classes, len(classes)
    save_checkpoint(path, model.eval(), meta)
    return path


def train(tmp_path: Path, data: Path, weight: float, *teachers: Path) -> Path:
    cfg = tmp_path / f"student-{weight}.toml"
    cfg.write_text(STUDENT.format(weight=weight))
    runs = tmp_path / f"runs-{weight}"
    argv = ["train", "--config", str(cfg), "--data", str(data), "--runs-dir", str(runs)]
    for t in teachers:
        argv += ["--teacher", str(t)]
    assert main(argv) == 0
    (run_dir,) = runs.iterdir()
    return run_dir


def share_happy(run_dir: Path, data: Path) -> float:
    model, meta = load_checkpoint(run_dir / "last.pt")
    test = load_dataset(data).splits["test"]
    return float((predict_proba(model, meta, test.images).argmax(1) == HAPPY).mean())


def test_the_student_follows_its_teacher_as_far_as_the_weight_says(
    tiny_data: Path, tmp_path: Path
) -> None:
    """With all the weight on the soft loss the student learns the teacher's answer ('happy'
    for one face in seven of each class), with none it learns the labels; the teacher predicts
    the train split once and a second student reads its probabilities from the cache."""
    teacher = happy_teacher(tmp_path / "teacher.pt")
    follower = train(tmp_path, tiny_data, 1.0, teacher)
    assert share_happy(follower, tiny_data) == 1.0
    cached = sorted((cache_dir() / "eval").glob("*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (8 * len(CLASSES), len(CLASSES))
    mtime = cached[0].stat().st_mtime_ns
    plain = train(tmp_path, tiny_data, 0.0, teacher)
    assert share_happy(plain, tiny_data) < 0.5
    assert cached[0].stat().st_mtime_ns == mtime  # read back, not predicted again
    config = (follower / "config.toml").read_text()
    assert "[distill]" in config and str(teacher) in config


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_text("not a checkpoint") or p, "teacher"),
        (lambda p: happy_teacher(p, classes=["a", "b"]), "classes"),
        (lambda p: happy_teacher(p, image_size=64), "64x64 faces, the student 48x48"),
        (lambda p: p.with_name("absent.pt"), "no such checkpoint"),
    ],
    ids=["not-a-checkpoint", "other-classes", "other-input-size", "missing"],
)
def test_a_teacher_that_cannot_teach_is_one_line_and_exit_2(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, make, expected: str
) -> None:
    teacher = make(tmp_path / "teacher.pt")
    cfg = tmp_path / "student.toml"
    cfg.write_text(STUDENT.format(weight=0.5))
    runs = tmp_path / "runs"
    argv = ["train", "--config", str(cfg), "--data", str(tiny_data), "--runs-dir", str(runs)]
    assert main([*argv, "--teacher", str(teacher)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir())
