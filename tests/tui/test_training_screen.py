"""The Training screen: run list, live panels, start/stop/resume, errors on screen."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import types
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Select, Sparkline, Static

from fer_tui import launch
from fer_tui.runs import running_pid
from fer_tui.tui.app import make_app
from fer_tui.tui.screens.curves import CurvesScreen
from fer_tui.tui.screens.start_dialog import StartDialog
from fer_tui.tui.screens.training import TrainingScreen
from fer_tui.tui.widgets.run_list import RunList
from fer_tui.tui.widgets.run_panel import RunPanel
from tests.helpers import until

FAKE = Path(__file__).resolve().parents[1] / "data" / "runs" / "fake_trainer.py"
SMOKE = 'name = "smoke"\narchs = ["resnet18"]\n[train]\nepochs = 3\ndevice = "cpu"\n'


def write_run(runs: Path, name: str, events: list[dict], lock_pid: int | None = None) -> Path:
    """A hand-written run dir: config.toml, events.jsonl and maybe a run.lock."""
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text(SMOKE)
    with open(run / "events.jsonl", "w") as f:
        for e in events:
            f.write(json.dumps({"v": 1, "t": 1000.0, **e}) + "\n")
    if lock_pid is not None:
        (run / "run.lock").write_text(f"{lock_pid} host\n")
    return run


def start(arch: str, epochs: int = 3) -> dict:
    return {
        "type": "start",
        "arch": arch,
        "recipe": "scratch",
        "epochs": epochs,
        "start_epoch": 1,
        "steps_per_epoch": 10,
        "env": {"device": "cpu"},
    }


def epoch(e: int, epochs: int = 3) -> dict:
    return {
        "type": "epoch",
        "epoch": e,
        "epochs": epochs,
        "train_loss": 2.0 / e,
        "train_acc": 0.3 + 0.1 * e,
        "val_loss": 2.2 / e,
        "val_acc": 0.25 + 0.1 * e,
        "lr": 0.1,
        "seconds": 30.0,
        "img_per_s": 900.0,
        "eta_seconds": 30.0 * (epochs - e),
        "best_metric": 0.25 + 0.1 * e,
        "best_epoch": e,
    }


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Four runs of the group 20260101-120000 in every ended state, plus one live run."""
    runs = tmp_path / "runs"
    write_run(
        runs,
        "20260101-120000-resnet18",
        [
            start("resnet18"),
            epoch(1),
            epoch(2),
            epoch(3),
            {"type": "end", "best_metric": 0.55, "best_epoch": 3},
        ],
    )
    write_run(
        runs,
        "20260101-120000-resnet34",
        [
            start("resnet34"),
            epoch(1),
            {
                "type": "error",
                "message": "CUDA out of memory. Tried to allocate 2.00 GiB",
                "traceback": "Traceback (most recent call last): ...",
            },
        ],
    )
    write_run(
        runs,
        "20260101-120000-resnet50",
        [start("resnet50"), epoch(1), {"type": "stopped", "epoch": 1, "reason": "SIGTERM"}],
    )
    write_run(runs, "20260101-110000-resnet50", [start("resnet50"), epoch(1)])  # crashed
    return runs


def app_for(runs: Path, **kwargs):
    kwargs.setdefault("configs_dir", runs.parent / "configs")
    return make_app(runs_dir=runs, poll_interval=0.05, rescan_interval=0.1, **kwargs)


def statuses(app) -> dict[str, str]:
    return {run_id: v.status for run_id, v in app.screen.query_one(RunList).views.items()}


def panel_text(app, arch: str) -> str:
    panel = app.screen.query_one(f"#panel-{arch}", RunPanel)
    texts = [str(w.render()) for w in panel.query("Label, Static")]
    return " | ".join([panel.border_title or "", panel.border_subtitle or "", *texts])


async def test_lists_runs_with_their_statuses(runs: Path) -> None:
    """Every run dir is listed with the status its events (and lock) imply."""
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(pilot, lambda: len(statuses(app)) == 4)
        assert statuses(app) == {
            "20260101-120000-resnet18": "finished",
            "20260101-120000-resnet34": "failed",
            "20260101-120000-resnet50": "stopped",
            "20260101-110000-resnet50": "crashed",
        }
        table = app.screen.query_one(RunList)
        row = table.get_row("20260101-120000-resnet18")
        assert [str(c) for c in row[:6]] == [
            "finished",
            "20260101-120000-resnet18",
            "resnet18",
            "scratch",
            "3/3",
            "55.0%",
        ]
        assert table.coordinate_to_cell_key((0, 0)).row_key.value == "20260101-120000-resnet50"


async def test_failed_run_shows_its_error_and_stopped_offers_resume(runs: Path) -> None:
    """A failed run's panel shows the trainer's error; a stopped one says r resumes it."""
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(pilot, lambda: "CUDA out of memory" in panel_text(app, "resnet34"))
        assert "failed" in panel_text(app, "resnet34")
        # the newest resnet50 run (stopped) is shown, not the older crashed one
        assert "stopped after epoch 1: r resumes it" in panel_text(app, "resnet50")
        assert "20260101-120000-resnet50" in app.screen.query_one("#panel-resnet50").border_subtitle


async def test_interrupted_runs_say_where_a_resume_goes_on(tmp_path: Path) -> None:
    """A stop mid-epoch names the step a resume continues from; a crash, the epoch it goes
    back to, or that it starts again when the trainer died before its first epoch ended."""
    runs = tmp_path / "runs"
    stop = {"type": "stopped", "epoch": 1, "step_in_epoch": 7, "reason": "SIGTERM"}
    write_run(runs, "20260101-120000-resnet18", [start("resnet18", 5), epoch(1, 5), stop])
    write_run(runs, "20260101-120000-resnet34", [start("resnet34", 5), epoch(1, 5), epoch(2, 5)])
    write_run(runs, "20260101-120000-resnet50", [start("resnet50", 5)])
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(pilot, lambda: len(statuses(app)) == 3)
        assert "stopped in epoch 2 at step 7/10: r resumes it there" in panel_text(app, "resnet18")
        assert "crashed in epoch 3 (the trainer died): r resumes it after epoch 2" in panel_text(
            app, "resnet34"
        )
        assert "crashed in epoch 1 (the trainer died): r starts it again" in panel_text(
            app, "resnet50"
        )


async def test_appended_epoch_shows_up_live(tmp_path: Path) -> None:
    """Appending an epoch line to a running run's events moves its panel to the new epoch."""
    runs = tmp_path / "runs"
    run = write_run(
        runs, "20260101-130000-resnet18", [start("resnet18", 5), epoch(1, 5)], lock_pid=os.getpid()
    )
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(pilot, lambda: "epoch 1/5" in panel_text(app, "resnet18"))
        assert statuses(app) == {run.name: "running"}
        sparklines = app.screen.query_one("#panel-resnet18", RunPanel).query(Sparkline)
        # one epoch is a number beside an empty curve, not a full-width bar
        assert sparklines and all(not s.data for s in sparklines)
        assert "35.0%" in panel_text(app, "resnet18")
        with open(run / "events.jsonl", "a") as f:
            f.write(json.dumps({"v": 1, "t": time.time(), **epoch(2, 5)}) + "\n")
            f.write('{"v": 1, "t": 1, "type": "st')  # a torn line must not break anything
        await until(pilot, lambda: "epoch 2/5" in panel_text(app, "resnet18"))
        panel = app.screen.query_one("#panel-resnet18", RunPanel)
        assert panel.view.val_acc == pytest.approx((0.35, 0.45))
        assert all(len(s.data) == 2 for s in sparklines)
        assert panel.has_class("-running")
        assert "ETA" in panel_text(app, "resnet18") and "900 img/s" in panel_text(app, "resnet18")
        with open(run / "events.jsonl", "a") as f:
            f.write('\n{"v": 1, "t": 1, "type": "end", "best_metric": 0.45, "best_epoch": 2}\n')
        await until(pilot, lambda: statuses(app) == {run.name: "finished"})
        # the status column grows from "running" to "finished" instead of cutting it short
        assert app.screen.query_one(RunList).columns["status"].content_width >= len("finished")


async def test_new_run_dir_appears_after_a_rescan(runs: Path) -> None:
    """A run started elsewhere appears in the list by itself; a deleted one disappears."""
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(pilot, lambda: len(statuses(app)) == 4)
        write_run(runs, "20260102-090000-resnet18", [start("resnet18")])
        await until(pilot, lambda: "20260102-090000-resnet18" in statuses(app))
        assert "20260102-090000-resnet18" in panel_text(app, "resnet18")
        shutil.rmtree(runs / "20260102-090000-resnet18")  # deleted by hand: the row goes
        await until(pilot, lambda: "20260102-090000-resnet18" not in statuses(app))
        assert "20260101-120000-resnet18" in panel_text(app, "resnet18")


async def test_curves_chart_opens_with_all_models(runs: Path) -> None:
    """`p` opens the chart with one entry per model shown in the panels."""
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(pilot, lambda: len(statuses(app)) == 4)
        await pilot.press("p")
        assert isinstance(app.screen, CurvesScreen)
        assert sorted(v.arch for v in app.screen.views) == ["resnet18", "resnet34", "resnet50"]
        await pilot.press("escape")
        assert isinstance(app.screen, TrainingScreen)


async def test_evaluate_opens_the_final_weights(runs: Path, monkeypatch) -> None:
    """e switches to the Evaluation screen and hands it the selected run's final weights (here
    a stopped run's last.pt, never its best.pt); a run without weights says so and stays."""
    from fer_tui.tui.screens.evaluation import EvaluationScreen

    picked: list[Path] = []
    monkeypatch.setattr(EvaluationScreen, "select_checkpoint", lambda self, p: picked.append(p))
    run = runs / "20260101-120000-resnet50"
    (run / "best.pt").write_bytes(b"")
    last = run / "last.pt"
    last.write_bytes(b"")
    app = app_for(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(pilot, lambda: len(statuses(app)) == 4)
        assert app.screen.query_one(RunList).selected.run_id == run.name  # newest
        await pilot.press("down")  # the failed run has no weights: says so, stays here
        await pilot.press("e")
        assert isinstance(app.screen, TrainingScreen)
        assert any("has no weights to evaluate" in n.message for n in app.notifications)
        await pilot.press("up", "e")
        await until(pilot, lambda: isinstance(app.screen, EvaluationScreen))
        assert picked == [last]


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "smoke.toml").write_text(SMOKE)
    (configs / "broken.toml").write_text("[train]\nepochz = 3\n")
    return configs


async def test_start_dialog_shows_a_config_error(tmp_path: Path, configs: Path) -> None:
    """Starting from a config with a typo keeps the dialog open with the key named."""
    app = app_for(tmp_path / "runs", configs_dir=configs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, StartDialog)
        dialog.query_one("#start-config", Select).value = str(configs / "broken.toml")
        await pilot.click("#start-go")
        error = str(dialog.query_one("#start-error", Static).render())
        assert "epochz" in error and "did you mean 'epochs'" in error
        assert app.screen is dialog


@pytest.mark.parametrize(("gpu", "offered"), [(True, "scratch.toml"), (False, "cpu.toml")])
async def test_start_dialog_offers_the_recipe_for_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpu: bool, offered: str
) -> None:
    """The dialog's config is the GPU recipe where a GPU is seen, the CPU recipe elsewhere."""
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("cpu.toml", "scratch.toml", "smoke.toml"):
        (configs / name).write_text(SMOKE)
    monkeypatch.setattr(launch, "gpu_available", lambda: gpu)
    app = app_for(tmp_path / "runs", configs_dir=configs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await pilot.press("s")
        assert isinstance(app.screen, StartDialog)
        assert app.screen.query_one("#start-config", Select).value == str(configs / offered)


async def test_cuda_without_gpu_offers_cpu(tmp_path, configs, monkeypatch) -> None:
    """Asking for cuda with no GPU says so and a 'Start on CPU' button starts on the CPU."""
    monkeypatch.setattr(launch, "gpu_available", lambda: False)
    started: list[str] = []
    monkeypatch.setattr(launch, "_spawn", lambda argv, log, on_exit: started.append(argv) or 4242)
    app = app_for(tmp_path / "runs", configs_dir=configs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await pilot.press("s")
        dialog = app.screen
        dialog.query_one("#start-device", Select).value = "cuda"
        await pilot.click("#start-go")
        assert "no GPU found" in str(dialog.query_one("#start-error", Static).render())
        assert dialog.query_one("#start-cpu", Button).display
        await pilot.click("#start-cpu")
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)
        assert started and started[0][started[0].index("--device") + 1] == "cpu"


async def test_bad_epochs_and_unwritable_runs_dir(tmp_path: Path, configs: Path) -> None:
    """A non-numeric epoch count and a runs dir that cannot be created are shown inline."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    app = app_for(blocker / "runs", configs_dir=configs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await pilot.press("s")
        dialog = app.screen
        dialog.query_one("#start-epochs", Input).value = "0"
        await pilot.click("#start-go")
        assert "epochs must be at least 1" in str(dialog.query_one("#start-error").render())
        dialog.query_one("#start-epochs", Input).value = "2"
        await pilot.click("#start-go")
        error = str(dialog.query_one("#start-error").render())
        assert "not writable" in error or "cannot create the runs directory" in error


@pytest.fixture
def fake_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "TRAINER", [sys.executable, str(FAKE)])
    monkeypatch.setenv("FAKE_STEP_S", "0.1")


@pytest.mark.slow
async def test_start_stop_resume_with_the_fake_trainer(tmp_path, configs, fake_trainer) -> None:
    """s starts a run that appears and advances; x stops it (SIGTERM); r resumes it."""
    runs = tmp_path / "runs"
    app = app_for(runs, configs_dir=configs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await pilot.press("s")
        dialog = app.screen
        dialog.query_one("#start-config", Select).value = str(configs / "smoke.toml")
        dialog.query_one("#start-arch", Select).value = "resnet18"
        dialog.query_one("#start-epochs", Input).value = "200"  # 80 s: outlasts the test
        await pilot.click("#start-go")
        await until(pilot, lambda: "running" in statuses(app).values(), timeout=15)
        # an epoch of the fake lasts 0.4 s: on a busy machine the first repaint may already
        # show a later one, so any epoch will do
        await until(
            pilot, lambda: re.search(r"epoch \d+/200", panel_text(app, "resnet18")), timeout=15
        )
        (run_id,) = statuses(app)
        await pilot.press("x")
        await until(pilot, lambda: statuses(app)[run_id] == "stopped", timeout=15)
        assert "r resumes it" in panel_text(app, "resnet18")
        await until(pilot, lambda: running_pid(runs / run_id) is None, timeout=15)
        await pilot.press("r")
        await until(pilot, lambda: statuses(app)[run_id] == "running", timeout=15)
        await pilot.press("r")  # a second start of the same run is refused
        await pilot.pause()
        assert any("already running" in n.message for n in app.notifications)
        await pilot.press("x")
        await until(pilot, lambda: statuses(app)[run_id] == "stopped", timeout=15)


async def test_tail_worker_error_is_a_notification(tmp_path: Path, monkeypatch) -> None:
    """A failing poll (e.g. an unreadable runs dir) is said once, not a traceback or a flood."""
    from fer_tui.run_tracker import RunTracker

    def broken(self, now=None):
        raise PermissionError("runs dir unreadable")

    monkeypatch.setattr(RunTracker, "poll", broken)
    app = app_for(tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await pilot.pause(0.5)  # ~10 failed polls
        errors = [n for n in app.notifications if n.severity == "error"]
        assert len(errors) == 1 and "runs dir unreadable" in errors[0].message
        assert isinstance(app.screen, TrainingScreen)


async def test_trainer_death_is_reported_but_a_stop_is_not(tmp_path: Path) -> None:
    """A trainer dying early shows its last words; exiting after a stop (130) is no error."""
    from fer_tui.tui.messages import TrainerExited

    log = tmp_path / "launch.log"
    app = app_for(tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        app.screen.post_message(TrainerExited(41, 130, log, ""))
        app.screen.post_message(TrainerExited(42, 2, log, "fer-tui: error: no dataset found"))
        await pilot.pause()
        errors = [n.message for n in app.notifications if n.severity == "error"]
        assert len(errors) == 1
        assert "pid 42 exited with code 2" in errors[0] and "no dataset found" in errors[0]


def fake_nvidia_smi(folder: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """An `nvidia-smi` on PATH that runs `script` (sh), with nvidia-ml-py absent."""
    from fer_tui.tui.widgets import system

    fake = folder / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py absent
    monkeypatch.setattr(system, "_nvml_state", None, raising=False)


def test_system_line_reads_nvidia_smi(tmp_path: Path, monkeypatch) -> None:
    """With nvidia-smi on PATH the system line shows GPU use and memory; without, CPU and RAM."""
    from fer_tui.tui.widgets import system

    assert system.cpu_summary().startswith("CPU ")
    fake_nvidia_smi(tmp_path, monkeypatch, "echo 'NVIDIA H200, 87, 12595, 143771'")
    assert system.gpu_summary() == "GPU0 NVIDIA H200 87% · 12.3/140.4 GiB"


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        ("NVIDIA H200, [N/A], 12595, 143771", "GPU0 NVIDIA H200 N/A · 12.3/140.4 GiB"),
        ("NVIDIA H200, 87, [Not Supported], [Not Supported]", "GPU0 NVIDIA H200 87% · memory N/A"),
    ],
)
def test_system_line_shows_na_for_an_odd_nvidia_smi_field(
    tmp_path: Path, monkeypatch, row: str, shown: str
) -> None:
    """A field nvidia-smi cannot report (`[N/A]`, `[Not Supported]`) reads N/A; the others
    still show."""
    from fer_tui.tui.widgets import system

    fake_nvidia_smi(tmp_path, monkeypatch, f"echo '{row}'")
    assert system.gpu_summary() == shown


@pytest.mark.parametrize(
    "script",
    [
        "echo 'No devices were found'; exit 6",
        "echo 'NVIDIA H200, [N/A], [N/A], [N/A]'",
        "echo 'Failed to initialize NVML: Driver/library version mismatch'",
        "exec sleep 5",
    ],
    ids=["no-devices", "all-na", "garbled", "hangs"],
)
def test_system_line_falls_back_to_cpu_when_nvidia_smi_fails(
    tmp_path: Path, monkeypatch, script: str
) -> None:
    """An nvidia-smi that exits nonzero, has no figures, prints junk or hangs past the timeout
    gives the CPU and RAM line, promptly, instead of an error."""
    from fer_tui.tui.widgets import system

    fake_nvidia_smi(tmp_path, monkeypatch, script)
    monkeypatch.setattr(system, "SMI_TIMEOUT_S", 0.3, raising=False)
    t0 = time.monotonic()
    assert system.gpu_summary() is None
    assert system.system_summary().startswith("CPU ")
    assert time.monotonic() - t0 < 3


async def test_system_line_on_screen_with_a_broken_nvidia_smi(tmp_path: Path, monkeypatch) -> None:
    """On the Training screen, nvidia-smi's "No devices were found" leaves the CPU and RAM
    figures on the system line, not "system figures unavailable"."""
    fake_nvidia_smi(tmp_path, monkeypatch, "echo 'No devices were found'; exit 6")
    app = app_for(tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        line = app.screen.query_one("#system", Static)
        await until(pilot, lambda: str(line.render()).strip() != "")
        assert str(line.render()).startswith("CPU "), str(line.render())


class FakeNvml(types.ModuleType):
    """A stand-in for nvidia-ml-py with one H200, counting init and shutdown calls."""

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.inits = self.shutdowns = 0
        self.util_supported = True

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA H200"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> types.SimpleNamespace:
        if not self.util_supported:
            raise RuntimeError("NVMLError_NotSupported")
        return types.SimpleNamespace(gpu=87)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(used=12595 * 2**20, total=143771 * 2**20)


def test_nvml_is_initialised_once_per_process(monkeypatch) -> None:
    """Polling the GPU line three times initialises NVML once and never shuts it down; a
    figure NVML does not support reads N/A."""
    from fer_tui.tui.widgets import system

    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(system, "_nvml_state", None, raising=False)
    for _ in range(3):
        assert system.gpu_summary() == "GPU0 NVIDIA H200 87% · 12.3/140.4 GiB"
    assert (nvml.inits, nvml.shutdowns) == (1, 0)
    nvml.util_supported = False
    assert system.gpu_summary() == "GPU0 NVIDIA H200 N/A · 12.3/140.4 GiB"


async def test_actions_without_runs_warn(tmp_path: Path) -> None:
    """x, r and e with no run say there is nothing selected instead of failing."""
    app = app_for(tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        for key in "xre":
            await pilot.press(key)
        await pilot.pause()
        assert [n.message for n in app.notifications].count(
            "no run selected: start one with s"
        ) == 3
        assert "No runs in" in str(app.screen.query_one("#runs-hint").render())
