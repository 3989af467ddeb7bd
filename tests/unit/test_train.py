"""`fer-tui train` and fer_tui.training: run dirs, events, checkpoints, resume after SIGKILL and
SIGTERM, the lock, errors.

Runs use a ResNet18 with the ImageNet stem at 16x16 on a few synthetic faces, so a step costs
milliseconds; the subprocess tests run with one thread so their floats match the in-process run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fer_tui import launch
from fer_tui.cli import main
from fer_tui.data.holdout import holdout_split
from fer_tui.models import load_checkpoint, read_checkpoint
from fer_tui.runs import LOCK, read_events, read_run
from fer_tui.training import group
from fer_tui.training.arrays import prepare_arrays
from fer_tui.training.optim import lr_lambda
from fer_tui.training.trainer import Trainer
from tests.helpers import wait_until

TINY = """
name = "tiny"
archs = ["resnet18"]
[model]
stem = "imagenet"
image_size = 16
[augment]
erasing_p = 0.5
[train]
epochs = {epochs}
batch_size = 4
lr = 0.05
warmup_epochs = 0.5
device = "cpu"
log_every_steps = 1
"""

KEYS = {
    "start": {
        "arch",
        "recipe",
        "epochs",
        "start_epoch",
        "steps_per_epoch",
        "resumed",
        "precision",
        "config",
        "env",
    },
    "step": {
        "epoch",
        "step",
        "step_in_epoch",
        "steps_per_epoch",
        "loss",
        "acc",
        "lr",
        "img_per_s",
    },
    "epoch": {
        "epoch",
        "epochs",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
        "train_seconds",
        "eval_seconds",
        "img_per_s",
        "eta_seconds",
        "best_metric",
        "best_epoch",
    },
    "end": {"epoch", "best_metric", "best_epoch", "seconds"},
    "stopped": {"epoch", "step_in_epoch", "reason"},
    "error": {"message", "traceback"},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(tmp_path: Path, epochs: int = 2) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(epochs=epochs))
    return path


def args(cfg: Path, data: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(cfg),
        "--data",
        str(data),
        "--runs-dir",
        str(runs),
        "--limit",
        "24",
        *extra,
    ]


def train_cli(argv: list[str]) -> int:
    """`fer-tui train ARGV` in this process: its exit code."""
    return main(["train", *argv])


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return run_dir


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fer_tui.train", *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_event(run_dir: Path, pred, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    def seen() -> bool:
        if run_dir.exists() and any(pred(e) for e in read_events(run_dir)):
            return True
        assert proc.poll() is None, "the trainer exited before the awaited event"
        return False

    wait_until(seen, timeout=timeout, what="the trainer's event")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"


@pytest.fixture(scope="module")
def reference(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-epoch run: the run dir every interrupted run is compared with."""
    return tiny_run_dir(tmp_path_factory.mktemp("ref"), tiny_data)


def tiny_run_dir(tmp: Path, data: Path) -> Path:
    """A finished 2-epoch run of the tiny config in `tmp/runs`, trained on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert train_cli(args(tiny_config(tmp), data, tmp / "runs")) == 0
    finally:
        torch.set_num_threads(before)
    return only_run(tmp / "runs")


def test_run_writes_config_events_and_loadable_checkpoints(reference: Path) -> None:
    """A run leaves the resolved config, schema-exact events, and last/best checkpoints."""
    assert "limit = 24" in (reference / "config.toml").read_text()
    events = read_events(reference)
    for e in events:
        assert set(e) - {"v", "t", "type"} == KEYS[e["type"]], e["type"]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
    assert events[0]["steps_per_epoch"] == 6  # 24 images / batch 4
    assert kinds.count("step") == 12
    model, meta = load_checkpoint(reference / "best.pt", arch="resnet18")
    assert not model.training and meta["stem"] == "imagenet" and meta["image_size"] == 16
    assert meta["recipe"] == "tiny" and meta["data_fingerprint"]
    assert read_checkpoint(reference / "last.pt")["epoch"] == 2
    assert not (reference / LOCK).exists()
    assert read_run(reference).status() == "finished"


def test_cli_json_summary(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--json` prints run_dir, best metric/epoch, epochs, seconds and the final val_acc; the
    log's epoch lines say how long the run has left, but the last one."""
    code = main(["train", *args(tiny_config(tmp_path, 2), tiny_data, tmp_path / "r"), "--json"])
    assert code == 0
    out, err = capsys.readouterr()
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "finished" and run["epochs"] == 2 and run["best_epoch"] in (1, 2)
    epoch_lines = [line for line in err.splitlines() if ": train loss" in line]
    assert len(epoch_lines) == 2
    assert "run ETA " in epoch_lines[0] and "run ETA" not in epoch_lines[1]
    assert run["val_acc"] == run["best_metric"] and run["seconds"] > 0
    assert Path(run["run_dir"]).parent == tmp_path / "r"


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(
    reference: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """kill -9 after epoch 1, then --resume: same epochs, no gap, bit-identical weights."""
    runs = tmp_path / "runs"
    proc = spawn(args(tiny_config(tmp_path), tiny_data, runs), tmp_path / "log")

    def run_dir_made() -> bool:
        if runs.exists() and any(runs.iterdir()):
            return True
        assert proc.poll() is None, "the trainer exited before making its run dir"
        return False

    wait_until(run_dir_made, timeout=120, what="the run dir")
    run_dir = only_run(runs)
    wait_event(run_dir, lambda e: e["type"] == "epoch", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_run(run_dir).status() == "crashed"
    assert train_cli(["--resume", str(run_dir)]) == 0
    events = read_events(run_dir)
    starts = [e for e in events if e["type"] == "start"]
    assert starts[-1]["resumed"] is True and starts[-1]["start_epoch"] in (1, 2)
    state = read_run(run_dir)
    assert [h["epoch"] for h in state.history] == [1, 2] and state.status() == "finished"
    ref_epochs = [e for e in read_events(reference) if e["type"] == "epoch"]
    assert state.history[-1]["train_loss"] == ref_epochs[-1]["train_loss"]
    assert_same_weights(run_dir / "last.pt", reference / "last.pt")


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_and_resume_is_exact(
    reference: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """SIGTERM mid-epoch: exit 0, `stopped`, last.pt with the step; resume ends identical."""
    run_dir = tmp_path / "run"
    proc = spawn(
        [*args(tiny_config(tmp_path), tiny_data, tmp_path), "--run-dir", str(run_dir)],
        tmp_path / "log",
    )
    wait_event(run_dir, lambda e: e["type"] == "step" and e["step"] == 1, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, (tmp_path / "log").read_text()
    events = read_events(run_dir)
    assert events[-1]["type"] == "stopped" and events[-1]["reason"] == "SIGTERM"
    ckpt = read_checkpoint(run_dir / "last.pt")
    assert ckpt["epoch"] == 0 and 1 <= ckpt["step_in_epoch"] < 6
    assert events[-1]["step_in_epoch"] == ckpt["step_in_epoch"]  # what the screens show
    assert not (run_dir / LOCK).exists()
    assert train_cli(["--resume", str(run_dir)]) == 0
    state = read_run(run_dir)
    assert [h["epoch"] for h in state.history] == [1, 2]
    ref = [e for e in read_events(reference) if e["type"] == "epoch"]
    assert [h["train_loss"] for h in state.history] == [e["train_loss"] for e in ref]
    assert_same_weights(run_dir / "last.pt", reference / "last.pt")


def test_second_trainer_refused_and_stale_lock_taken_over(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A live pid in run.lock refuses a second trainer; a dead pid's lock is taken over."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / LOCK).write_text(f"{sleeper.pid} host\n")
        argv = [*args(tiny_config(tmp_path, 1), tiny_data, tmp_path), "--run-dir", str(run_dir)]
        assert train_cli(argv) == 2
        assert f"pid {sleeper.pid}" in capsys.readouterr().err
        assert (run_dir / LOCK).read_text().startswith(str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert train_cli(argv) == 0  # the sleeper is dead now: its lock is stale
    assert read_run(run_dir).status() == "finished"


def test_error_event_for_offline_pretrained_weights(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A failure inside the run is an `error` event with message and traceback, exit 2."""
    import torchvision

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    cfg = tmp_path / "paper.toml"
    cfg.write_text(
        'name = "p"\narchs = ["resnet18"]\n[model]\nstem = "imagenet"\n'
        'in_channels = 3\nweights = "IMAGENET1K_V1"\n[train]\ndevice = "cpu"\n'
    )
    assert train_cli(args(cfg, tiny_data, tmp_path / "runs")) == 2
    err = capsys.readouterr().err
    assert "IMAGENET1K_V1" in err and "Traceback" not in err
    run_dir = only_run(tmp_path / "runs")
    last = read_events(run_dir)[-1]
    assert last["type"] == "error" and "IMAGENET1K_V1" in last["message"]
    assert "Traceback" in last["traceback"]
    assert read_run(run_dir).status() == "failed" and not (run_dir / LOCK).exists()


def test_init_from_starts_a_new_run_from_a_trained_models_weights(
    reference: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """model.init_from: the new run starts from the checkpoint's weights (with a learning rate
    too small to move them, its last.pt still holds them), not from new ones; a resume of that
    run continues from its own last.pt, even once the starting checkpoint is gone."""
    start = tmp_path / "start.pt"
    start.write_bytes((reference / "last.pt").read_bytes())
    cfg = tmp_path / "more.toml"
    cfg.write_text(
        TINY.format(epochs=2)
        .replace("[model]\n", f'[model]\ninit_from = "{start}"\n')
        .replace("lr = 0.05", "lr = 1e-9")
    )
    runs = tmp_path / "runs"
    assert train_cli([*args(cfg, tiny_data, runs), "--epochs", "1"]) == 0
    run_dir = only_run(runs)
    ours, theirs = weights(run_dir / "last.pt"), weights(start)
    for key in ("conv1.weight", "layer4.1.conv2.weight", "fc.weight"):
        assert torch.allclose(ours[key], theirs[key], atol=1e-6), key
    start.unlink()
    assert train_cli(["--resume", str(run_dir), "--epochs", "2"]) == 0
    assert [e["epoch"] for e in read_events(run_dir) if e["type"] == "epoch"] == [1, 2]


def test_init_from_a_different_model_is_a_clear_error(
    reference: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A checkpoint of another stem (or arch) is refused by name, with the fix; setting both
    model.weights and model.init_from is a configuration error."""
    cfg = tmp_path / "other.toml"
    cfg.write_text(
        TINY.format(epochs=1).replace(
            'stem = "imagenet"', f'stem = "compact"\ninit_from = "{reference / "last.pt"}"'
        )
    )
    assert train_cli(args(cfg, tiny_data, tmp_path / "runs")) == 2
    err = capsys.readouterr().err
    assert "model.init_from" in err and "imagenet stem" in err and "compact stem" in err
    assert "Traceback" not in err
    both = tmp_path / "both.toml"
    both.write_text(
        TINY.format(epochs=1).replace(
            "[model]\n", '[model]\nin_channels = 3\nweights = "DEFAULT"\ninit_from = "x.pt"\n'
        )
    )
    assert train_cli(args(both, tiny_data, tmp_path / "runs2")) == 2
    assert "leave model.weights unset" in capsys.readouterr().err


def test_init_from_a_missing_checkpoint_is_a_clear_error(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A model.init_from that names no file stops the run with the key, the path and the fix."""
    cfg = tmp_path / "missing.toml"
    cfg.write_text(
        TINY.format(epochs=1).replace("[model]\n", '[model]\ninit_from = "checkpoints/no.pt"\n')
    )
    assert train_cli(args(cfg, tiny_data, tmp_path / "runs")) == 2
    err = capsys.readouterr().err
    assert "model.init_from: no checkpoint at checkpoints/no.pt" in err
    assert "fer-tui ship" in err and "Traceback" not in err


def test_cuda_without_gpu_is_a_clear_error_and_creates_nothing(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`--device cuda` on a CPU-only machine says to use cpu, and leaves no run dir."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    runs = tmp_path / "runs"
    assert train_cli([*args(tiny_config(tmp_path), tiny_data, runs), "--device", "cuda"]) == 2
    assert "--device cpu" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())


def test_resume_of_a_finished_run_asks_for_more_epochs(reference: Path, capsys) -> None:
    """Resuming a finished run is refused with the fix (--epochs), and the lock is released."""
    assert train_cli(["--resume", str(reference)]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert not (reference / LOCK).exists()


CHILD = """
import sys, time, json
from pathlib import Path
run_dir = Path(sys.argv[sys.argv.index("--run-dir") + 1])
siblings = sorted(p.name for p in run_dir.parent.iterdir())
log = run_dir.parent / "children.jsonl"
with open(log, "a") as f:
    f.write(json.dumps({"run": run_dir.name, "t0": time.time(), "siblings": siblings}) + "\\n")
time.sleep(0.2)
with open(run_dir / "events.jsonl", "w") as f:
    f.write(json.dumps({"v": 1, "t": time.time(), "type": "start", "arch": run_dir.name[16:]}))
    f.write("\\n" + json.dumps({"v": 1, "t": time.time(), "type": "end"}) + "\\n")
with open(log, "a") as f:
    f.write(json.dumps({"run": run_dir.name, "t1": time.time()}) + "\\n")
sys.exit(3 if "resnet34" in run_dir.name else 0)
"""


def test_several_archs_pending_dirs_children_in_turn_and_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """All run dirs (with config) exist before the first child; on CPU one child at a time;
    a failed child makes the whole command fail, naming the run."""
    from fer_tui.config import load_config

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    monkeypatch.setattr(launch, "TRAINER", [sys.executable, str(script)])
    cfg = load_config(tiny_config(tmp_path))
    cfgs = [cfg.for_arch(a) for a in ("resnet18", "resnet34", "resnet50")]
    assert group.train_many(cfgs, str(tmp_path / "runs"), as_json=True) == 1
    out = capsys.readouterr()
    assert "resnet34" in out.err and "failed" in out.err
    log = [json.loads(line) for line in (tmp_path / "runs" / "children.jsonl").open()]
    starts = [e for e in log if "t0" in e]
    assert len(starts) == 3 and all(len(e["siblings"]) >= 3 for e in starts)
    times = [e.get("t0", e.get("t1")) for e in log]
    assert [("t0" in e) for e in log] == [True, False] * 3 and times == sorted(times)
    runs = json.loads(out.out)["runs"]
    assert [r["arch"] for r in runs] == ["resnet18", "resnet34", "resnet50"]
    for r in runs:
        text = Path(r["run_dir"], "config.toml").read_text()
        assert f'archs = ["{r["arch"]}"]' in text


SLEEPER = """
import signal, sys, time
from pathlib import Path
run_dir = Path(sys.argv[sys.argv.index("--run-dir") + 1])
def stop(signum, frame):
    (run_dir / "got-sigterm").write_text("1")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
(run_dir / "started").write_text("1")
time.sleep(60)
sys.exit(5)
"""


def test_sigterm_to_the_parent_reaches_the_child_and_stops_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM to `--arch all` is forwarded to the running child; later archs never start."""
    import threading

    from fer_tui.config import load_config

    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    monkeypatch.setattr(launch, "TRAINER", [sys.executable, str(script)])
    cfg = load_config(tiny_config(tmp_path))
    runs = tmp_path / "runs"

    def stop_when_started() -> None:
        try:
            wait_until(lambda: list(runs.glob("*/started")), timeout=60, what="the first child")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_started, daemon=True).start()
    cfgs = [cfg.for_arch(a) for a in ("resnet18", "resnet34")]
    before = signal.getsignal(signal.SIGTERM)
    assert group.train_many(cfgs, str(runs)) == 0
    assert [p.parent.name[16:] for p in runs.glob("*/got-sigterm")] == ["resnet18"]
    assert not list(runs.glob("*resnet34/started"))
    assert signal.getsignal(signal.SIGTERM) is before  # the forwarding handler is gone again


def test_frozen_layers_stay_put_in_a_paper_style_run(tiny_data: Path, tmp_path: Path) -> None:
    """With trainable = [layer4, fc] and RGB input, training moves only layer4 and fc."""
    from fer_tui.config import load_config

    paper = load_config(Path(__file__).resolve().parents[2] / "configs" / "paper.toml")
    cfg = paper.for_arch("resnet18").replace(
        model={"weights": None, "image_size": 32},
        train={"epochs": 1, "batch_size": 8, "device": "cpu", "lr": 0.01},
    )
    arrays = prepare_arrays(cfg.replace(data={"path": str(tiny_data), "limit": 16}))
    trainer = Trainer(cfg, None, arrays)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    moved = {
        k.split(".")[0]
        for k in before
        if k.endswith("weight") and not torch.equal(before[k], after[k])
    }
    assert moved == {"layer4", "fc"}
    assert trainer.model.conv1.in_channels == 3


def test_torn_last_line_does_not_swallow_the_next_event(tmp_path: Path) -> None:
    """After a kill -9 mid-write, the resume's `start` still reaches every reader."""
    from fer_tui.runs import EventWriter

    (tmp_path / "events.jsonl").write_text('{"v": 1, "type": "epoch", "epoch": 1}\n{"v": 1, "ty')
    with EventWriter(tmp_path) as events:
        events.write("start", arch="resnet18", start_epoch=2)
    assert [e["type"] for e in read_events(tmp_path)] == ["epoch", "start"]


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    """Warmup rises linearly to the peak lr; cosine ends at zero on the last step."""
    from fer_tui.config import TrainConfig

    f = lr_lambda(TrainConfig(epochs=10, warmup_epochs=1, schedule="cosine"), 10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(99) < 0.001
    assert all(f(i) >= f(i + 1) for i in range(10, 99))


def test_holdout_is_stratified_and_disjoint() -> None:
    """The held-out slice keeps each class's share and never overlaps training."""
    import numpy as np

    labels = np.repeat(np.arange(7), [100, 10, 50, 200, 80, 60, 40])
    keep, held = holdout_split(labels, 0.1, seed=0)
    assert not set(keep) & set(held) and len(keep) + len(held) == len(labels)
    assert np.bincount(labels[held]).tolist() == [10, 1, 5, 20, 8, 6, 4]


STOPPED_CHILD = """
import json, sys, time
from pathlib import Path
run_dir = Path(sys.argv[sys.argv.index("--run-dir") + 1])
with open(run_dir / "events.jsonl", "w") as f:
    f.write(json.dumps({"v": 1, "t": time.time(), "type": "start"}) + "\\n")
    f.write(json.dumps({"v": 1, "t": time.time(), "type": "stopped", "reason": "SIGINT"}) + "\\n")
sys.exit(130)
"""


def test_a_child_stopped_by_the_user_is_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Stopping one model of `--arch all` (the Training screen's `x`) is no error for the group."""
    from fer_tui.config import load_config

    script = tmp_path / "stopped.py"
    script.write_text(STOPPED_CHILD)
    monkeypatch.setattr(launch, "TRAINER", [sys.executable, str(script)])
    cfg = load_config(tiny_config(tmp_path))
    cfgs = [cfg.for_arch(a) for a in ("resnet18", "resnet34")]
    assert group.train_many(cfgs, str(tmp_path / "runs")) == 0
    assert "failed" not in capsys.readouterr().err
