"""The Training screen and a full disk: the start dialog shows the runs folder's free space and
refuses a launch that cannot fit; a run that the disk stopped shows why; two dashboards on one
runs folder both follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from fer_tui import launch, space
from fer_tui.tui.screens import start_dialog
from fer_tui.tui.screens.start_dialog import StartDialog
from fer_tui.tui.screens.training import TrainingScreen
from tests.helpers import until
from tests.tui.test_training_screen import (
    SMOKE,
    app_for,
    epoch,
    panel_text,
    start,
    statuses,
    write_run,
)

DISK_FULL = (
    "cannot write runs/20260101-120000-resnet18/last.pt: no space left on the device: free "
    "some space there (old runs, checkpoints, caches) or write to another disk, then try again"
)


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "smoke.toml").write_text(SMOKE)
    return configs


async def test_start_dialog_shows_free_space_and_refuses_what_cannot_fit(
    tmp_path: Path, configs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(space, "free_bytes", lambda path: 50 << 20)
    monkeypatch.setattr(start_dialog, "free_bytes", space.free_bytes)
    started: list[list[str]] = []
    monkeypatch.setattr(launch, "_spawn", lambda argv, log, on_exit: started.append(argv) or 1)
    app = app_for(runs, configs_dir=configs)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("training")
        await until(
            pilot,
            lambda: isinstance(app.screen, TrainingScreen) and app.screen.is_mounted,
            timeout=60,
        )
        await pilot.press("s")
        await until(
            pilot, lambda: isinstance(app.screen, StartDialog), what="the start dialog", timeout=60
        )
        dialog = app.screen
        shown = str(dialog.query_one("#start-space", Static).render())
        assert shown == f"runs go to {runs} (50.0 MiB free)"
        await pilot.click("#start-go")
        error = str(dialog.query_one("#start-error", Static).render())
        assert "not enough space for runs of resnet18, resnet34, resnet50" in error
        assert "50.0 MiB free" in error
        assert app.screen is dialog and started == []


async def test_a_run_the_disk_stopped_shows_why(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(
        runs,
        "20260101-120000-resnet18",
        [start("resnet18"), epoch(1), {"type": "error", "message": DISK_FULL}],
    )
    app = app_for(runs)
    async with app.run_test(size=(160, 40)) as pilot:
        await app.switch_mode("training")
        await until(
            pilot, lambda: statuses(app) == {"20260101-120000-resnet18": "failed"}, timeout=60
        )
        await until(pilot, lambda: "no space left" in panel_text(app, "resnet18"), timeout=60)
        assert f"failed: {DISK_FULL}" in panel_text(app, "resnet18")


async def test_two_dashboards_on_one_runs_folder(tmp_path: Path) -> None:
    """Two apps follow the same runs folder at once: both list every run, and both see a new
    one appear."""
    runs = tmp_path / "runs"
    write_run(runs, "20260101-120000-resnet18", [start("resnet18"), epoch(1)])
    first, second = app_for(runs), app_for(runs)
    async with first.run_test(size=(120, 40)) as p1, second.run_test(size=(120, 40)) as p2:
        for app in (first, second):
            await app.switch_mode("training")
        want = {"20260101-120000-resnet18": "crashed"}
        await until(p1, lambda: statuses(first) == want, timeout=60)
        await until(p2, lambda: statuses(second) == want, timeout=60)
        write_run(runs, "20260101-130000-resnet34", [start("resnet34")])
        want["20260101-130000-resnet34"] = "crashed"
        await until(p1, lambda: statuses(first) == want, timeout=60)
        await until(p2, lambda: statuses(second) == want, timeout=60)
