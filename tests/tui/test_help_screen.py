"""The `?` help overlay."""

from __future__ import annotations

from pathlib import Path

from fer_tui.tui.app import make_app
from fer_tui.tui.screens.help import HelpScreen
from tests.tui.screen_fixtures import SIZE, screen_text


async def test_help_names_the_ensemble_checkbox_and_escape(tmp_path: Path) -> None:
    """At 120x40 the help shows every key, escape for leaving a text field, and how the
    Evaluation screen's "Ensemble of the picks" checkbox is used, down to how to close it."""
    app = make_app(data=tmp_path / "none", runs_dir=tmp_path, checkpoints_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(screen_text(app).split())
        assert "esc │ leave a text field" in text
        assert "tick Ensemble of the picks" in text and "press e" in text
        assert "Press Esc to close." in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
