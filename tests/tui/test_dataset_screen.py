"""The Dataset screen: paints before the data, shows counts and faces, and errors on screen."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Label, ProgressBar, Static

from fer_tui.data import load
from fer_tui.data.index import CLASSES
from fer_tui.tui.app import make_app
from fer_tui.tui.screens.dataset import DatasetScreen
from fer_tui.tui.widgets.class_bars import ClassBars
from fer_tui.tui.widgets.faces import FaceGrid
from fer_tui.tui.widgets.problems import ProblemList
from tests.helpers import make_folder_dataset, until

SIZE = (120, 40)


async def _settled(pilot, timeout: float = 30.0) -> DatasetScreen:
    """Wait until the screen shows the data or an error (the worker starts after a frame)."""
    screen = pilot.app.screen
    assert isinstance(screen, DatasetScreen)
    await until(
        pilot,
        lambda: screen.has_class("-ready") or screen.has_class("-failed"),
        timeout=timeout,
        what="the Dataset screen to finish loading",
    )
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return screen


def _text(screen: DatasetScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_screen_shows_counts_per_split_and_class(tiny_data: Path, tmp_path: Path) -> None:
    """On start the Dataset screen shows the source, per-class counts, statistics and faces."""
    async with make_app(data=tiny_data, runs_dir=tmp_path).run_test(size=SIZE) as pilot:
        screen = await _settled(pilot)
        assert screen.has_class("-ready")
        assert "84 images" in _text(screen, "#dataset-source")
        counts = screen.query_one(ClassBars).counts
        assert counts["train"] == dict.fromkeys(CLASSES, 8)
        assert counts["test"]["angry"] == 4
        assert set(counts) == {"train", "test", "public_test", "private_test"}
        summary = _text(screen, "#dataset-summary")
        assert "Imbalance (train) 1.0x" in summary and "Pixels mean" in summary
        faces = screen.query_one(FaceGrid)
        assert [label for label, _ in faces.columns] == list(CLASSES)
        assert faces.rows == 2 and faces.size.height == 1 + 2 * 8 + 1  # 16 px faces at 120
        assert screen.query_one("#problems-title", Label).render().plain == "Problems (0)"


async def test_first_paint_does_not_wait_for_the_data(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While decoding, the screen is up with a progress bar that follows the loader."""
    release = threading.Event()
    real = load.load_dataset

    def slow_load(source, **kwargs):
        kwargs["progress"](5, 20)
        release.wait(10)
        return real(source, **kwargs)

    monkeypatch.setattr(load, "load_dataset", slow_load)
    async with make_app(data=tiny_data, runs_dir=tmp_path).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        bar = screen.query_one("#dataset-progress", ProgressBar)
        # the worker starts after the first frame
        await until(pilot, lambda: bar.total, timeout=10, what="the loader's first progress")
        assert screen.has_class("-loading")
        loading = screen.query_one("#dataset-loading")
        assert loading.display and bar.percentage == pytest.approx(0.25)
        assert str(tiny_data) in str(screen.query_one("#dataset-loading-label", Label).render())
        release.set()
        screen = await _settled(pilot)
        assert screen.has_class("-ready") and not loading.display


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "nowhere", "no dataset at"),
        (lambda p: (p / "flat").mkdir() or p / "flat", "does not look like FER-2013"),
    ],
    ids=["missing", "wrong-layout"],
)
async def test_bad_data_shows_an_error_panel(tmp_path: Path, make, expected: str) -> None:
    """A DataError is shown in the error panel with its fix, never as a crash."""
    data = make(tmp_path)
    async with make_app(data=data, runs_dir=tmp_path).run_test(size=SIZE) as pilot:
        screen = await _settled(pilot)
        assert screen.has_class("-failed") and not screen.has_class("-ready")
        panel = _text(screen, "#dataset-error")
        assert "Cannot load the dataset" in panel and expected in panel
        assert "press l to load again" in panel
        assert screen.query_one("#dataset-error").display


async def test_reload_after_fixing_the_data(tmp_path: Path) -> None:
    """After an error, putting the data in place and pressing l shows it."""
    root = tmp_path / "fer"
    root.mkdir()
    async with make_app(data=root, runs_dir=tmp_path).run_test(size=SIZE) as pilot:
        screen = await _settled(pilot)
        assert screen.has_class("-failed")
        make_folder_dataset(root, {"train": 2, "test": 1})
        await pilot.press("l")
        screen = await _settled(pilot)
        assert screen.has_class("-ready") and not screen.has_class("-failed")
        assert "21 images" in _text(screen, "#dataset-source")


async def test_problems_are_listed(tmp_path: Path) -> None:
    """A corrupt image and an empty class appear in the problems list; the rest is counted."""
    root = make_folder_dataset(tmp_path / "fer", {"train": 2, "test": 1})
    (root / "train" / "angry" / "Training_bad.jpg").write_bytes(b"garbage")
    for f in (root / "test" / "disgust").iterdir():
        f.unlink()
    async with make_app(data=root, runs_dir=tmp_path).run_test(size=SIZE) as pilot:
        screen = await _settled(pilot)
        kinds = [p["kind"] for p in screen.query_one(ProblemList).problems]
        assert kinds == ["unreadable", "empty_class"]
        assert screen.query_one("#problems-title", Label).render().plain == "Problems (2)"
        assert screen.query_one(ClassBars).counts["train"]["angry"] == 2


async def test_reshuffle_and_split_keys_change_the_faces(tiny_data: Path, tmp_path: Path) -> None:
    """r draws other sample faces; t switches the samples between train and test."""
    async with make_app(data=tiny_data, runs_dir=tmp_path).run_test(size=SIZE) as pilot:
        screen = await _settled(pilot)
        grid = screen.query_one(FaceGrid)
        before = [f.tobytes() for _, faces in grid.columns for f in faces]
        await pilot.press("r")
        assert screen.seed == 1
        assert [f.tobytes() for _, faces in grid.columns for f in faces] != before
        await pilot.press("t")
        title = screen.query_one("#faces-title", Label).render().plain
        assert title == "Sample faces (test, seed 1)"


async def test_small_terminal_shows_one_row_of_faces(tiny_data: Path, tmp_path: Path) -> None:
    """At 100x30 seven 12-13 px faces fit across in one row."""
    async with make_app(data=tiny_data, runs_dir=tmp_path).run_test(size=(100, 30)) as pilot:
        screen = await _settled(pilot)
        grid = screen.query_one(FaceGrid)
        assert grid.rows == 1
        assert grid.face_px(grid.size.width) >= 12
        assert grid.size.width >= 7 * grid.face_px(grid.size.width) + 6
