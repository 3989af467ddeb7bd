"""The Live screen: terminal-only mode on a video, errors from the child, no display."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Footer, Input, Select, Static

from fer_tui.data.index import CLASSES
from fer_tui.live.config import LiveConfig
from fer_tui.tui.app import make_app
from fer_tui.tui.screens.live import LiveScreen
from fer_tui.tui.widgets.big_label import BigLabel, block_text
from fer_tui.tui.widgets.frame_preview import FramePreview, render_halfblocks
from fer_tui.tui.widgets.prob_bars import ProbBars, bar
from tests.helpers import make_face_video, make_tiny_checkpoint, until, wait_until
from tests.tui.screen_fixtures import live_face


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("live-screen")
    ckpts = root / "checkpoints"
    return {
        "video": make_face_video(root / "face.avi", frames=20),
        # played at 30 FPS by the screen: 20 s, long enough to stop it mid-way
        "long": make_face_video(
            root / "long.avi", frames=600, size=(320, 240), face_side=200, step=1
        ),
        "ckpt": make_tiny_checkpoint(ckpts / "resnet18.pt"),
        "ckpts": ckpts,
    }


@pytest.fixture
def no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fer_tui.live.display.sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _text(widget: Static) -> str:
    return str(widget.render())


@pytest.mark.slow
async def test_terminal_only_shows_label_bars_and_preview(assets, tmp_path, no_display) -> None:
    """With no display, a video source shows a big label, seven bars, FPS and the preview."""
    app = make_app(runs_dir=tmp_path, checkpoints_dir=assets["ckpts"])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        assert "No display" in _text(screen.query_one("#live-display", Static))
        assert screen.terminal_only
        # the shipped-checkpoint default was found in checkpoints_dir
        assert screen.query_one("#live-checkpoint", Input).value == str(assets["ckpt"])
        screen.query_one("#live-source", Input).value = str(assets["video"])
        await pilot.click("#live-start")
        await until(
            pilot, lambda: screen.last_record is not None and not screen.running, timeout=90
        )
        label = screen.query_one(BigLabel)
        assert label.word in CLASSES
        assert "█" in _text(label)
        bars = _text(screen.query_one(ProbBars))
        assert all(name in bars for name in CLASSES)
        assert bars.count("%") == 7
        stats = _text(screen.query_one("#live-stats", Static))
        assert "faces 1" in stats and "FPS" in stats and "classify" in stats
        preview = _text(screen.query_one(FramePreview))
        assert preview.count("▀") == 64 * 24
        assert not screen.query_one("#live-error").has_class("-shown")


@pytest.mark.slow
async def test_child_error_is_shown_and_screen_stays_usable(assets, tmp_path, no_display) -> None:
    """A bad source is reported on screen from the child's stderr; Start works again after."""
    app = make_app(runs_dir=tmp_path, checkpoints_dir=assets["ckpts"])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        screen.query_one("#live-source", Input).value = str(tmp_path / "missing.avi")
        await pilot.click("#live-start")
        await until(pilot, lambda: screen.query_one("#live-error").has_class("-shown"), timeout=90)
        assert "missing.avi" in _text(screen.query_one("#live-error", Static))
        assert not screen.running
        assert not screen.query_one("#live-start").disabled


@pytest.mark.slow
async def test_stop_and_app_exit_kill_the_child(assets, tmp_path, no_display) -> None:
    """Stop (x) ends a running pipeline; quitting the app mid-run leaves no child behind."""
    import psutil

    app = make_app(runs_dir=tmp_path, checkpoints_dir=assets["ckpts"])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        screen.query_one("#live-source", Input).value = str(assets["long"])
        await pilot.click("#live-start")
        await until(pilot, lambda: screen.last_record is not None, timeout=90)
        proc = screen.child
        assert proc is not None and proc.poll() is None
        await pilot.press("x")  # Stop has the focus since the start
        await until(pilot, lambda: not screen.running, timeout=20)
        assert proc.poll() is not None
        assert not screen.query_one("#live-error").has_class("-shown")

        screen.last_record = None
        await pilot.press("s")
        await until(pilot, lambda: screen.last_record is not None, timeout=90)
        pid = screen.child.pid

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, timeout=10, interval=0.1, what="the child to die with the app")


def test_widgets_render() -> None:
    """Block letters exist for every class name; bars fill proportionally; boxes are drawn."""
    for name in CLASSES:
        assert block_text(name) is not None and len(block_text(name).splitlines()) == 5
    assert bar(0.5, 10).startswith("█████") and bar(0.0, 4) == "    "
    text = render_halfblocks(4, 4, bytes(16), boxes=[(0, 0, 4, 4)])
    assert text.plain == "▀▀▀▀\n▀▀▀▀"
    assert any(
        "rgb(40,230,90)" in str(span.style) or "#28e65a" in str(span.style) for span in text.spans
    )


async def test_app_keys_still_switch_screens_from_live(tmp_path, no_display) -> None:
    """Opening Live must not trap the keyboard in a text field: 1 goes back to Dataset."""
    app = make_app(runs_dir=tmp_path, checkpoints_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        assert isinstance(app.screen, LiveScreen)
        await pilot.press("1")
        assert app.current_mode == "dataset"
        assert app.screen.__class__.__name__ == "DatasetScreen"


def _footer_says(app) -> list[str]:
    """The descriptions of the keys the footer shows."""
    return [key.description for key in app.screen.query_one(Footer).query("FooterKey")]


async def test_escape_leaves_the_source_field(tmp_path, no_display) -> None:
    """Digits typed in the source field go into it, with the footer offering "Leave field";
    escape leaves the field, and then 1 switches to the Dataset screen."""
    app = make_app(runs_dir=tmp_path, checkpoints_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        source = screen.query_one("#live-source", Input)
        assert "Leave field" not in _footer_says(app)
        await pilot.click("#live-source")
        assert app.focused is source
        await pilot.press("end", "1", "2", "t")
        assert source.value == "012t"  # typed, not taken as screen or mode keys
        assert app.current_mode == "live" and screen.terminal_only  # no display: on
        await pilot.pause()
        assert "Leave field" in _footer_says(app)
        await pilot.press("escape")
        assert app.focused is None and source.value == "012t"
        await pilot.pause()
        assert "Leave field" not in _footer_says(app)
        await pilot.press("1")
        assert app.current_mode == "dataset"
        assert app.screen.__class__.__name__ == "DatasetScreen"


async def test_start_hands_the_focus_to_stop(tmp_path, no_display, monkeypatch) -> None:
    """Starting disables Start and focuses Stop (not the source field), so x stops and t, 1-4
    still work; when the run ends the focus goes back to Start."""
    monkeypatch.setattr(LiveScreen, "run_pipeline", lambda self, argv: None)
    app = make_app(runs_dir=tmp_path, checkpoints_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        await pilot.press("s")
        assert screen.running
        assert app.focused is screen.query_one("#live-stop")
        before = screen.terminal_only
        await pilot.press("t")
        assert screen.terminal_only is not before
        assert screen.query_one("#live-source", Input).value == "0"
        screen.running = False  # as when the child ends
        await pilot.pause()
        assert app.focused is screen.query_one("#live-start")


async def test_every_face_is_listed_and_the_largest_is_shown_big(tmp_path, no_display) -> None:
    """A record with three faces: the list has one line per face (track id, label,
    confidence), largest first; the big label and the bars are the largest face's, even when
    the record lists it last; the detector's name is in the stats."""
    from fer_tui.tui.screens.live import RecordReceived

    record = {
        "frame": 7,
        "fps": 30.0,
        "detector": "yunet",
        "frame_size": [640, 480],
        "faces": [
            live_face(4, [20, 30, 60, 70], "sad", 0.61),
            live_face(2, [400, 40, 90, 100], "surprise", 0.55),
            live_face(9, [200, 100, 160, 180], "angry", 0.82),
        ],
        "timings_ms": {"capture": 1.0, "detect": 2.0, "classify": 6.0, "total": 9.0},
    }
    app = make_app(runs_dir=tmp_path, checkpoints_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        screen.post_message(RecordReceived(record))
        await until(pilot, lambda: screen.last_record is not None)
        await pilot.pause()
        assert screen.query_one(BigLabel).word == "angry"
        assert "82.0%" in _text(screen.query_one(ProbBars))
        lines = _text(screen.query_one("#live-faces", Static)).splitlines()
        assert len(lines) == 3
        for line, (track, label, pct) in zip(
            lines, [(9, "angry", "82%"), (2, "surprise", "55%"), (4, "sad", "61%")], strict=True
        ):
            assert f"#{track} " in line and label in line and pct in line
        assert lines[0].startswith("▶")
        stats = _text(screen.query_one("#live-stats", Static))
        assert "faces 3 (yunet)" in stats


async def test_the_detector_choice_reaches_the_child(tmp_path, no_display, monkeypatch) -> None:
    """The detector picked on the screen is passed to `fer-tui live --detector`."""
    started: list[list[str]] = []
    monkeypatch.setattr(LiveScreen, "run_pipeline", lambda self, argv: started.append(argv))
    app = make_app(runs_dir=tmp_path, checkpoints_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        select = screen.query_one("#live-detector", Select)
        await pilot.pause()
        assert select.value == LiveConfig.detector
        select.value = "yunet"
        await pilot.press("s")
        screen.running = False
        await pilot.pause()
        select.value = "haar"
        await pilot.press("s")
    (first, second) = started
    assert first[first.index("--detector") + 1] == "yunet"
    assert second[second.index("--detector") + 1] == "haar"
