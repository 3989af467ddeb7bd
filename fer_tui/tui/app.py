"""FerApp: four peer screens as Textual modes (dataset, training, evaluation, live)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.notifications import Notification
from textual.screen import Screen

from fer_tui.tui.settings import Settings

#: mode -> (module, class). Screens are imported when first shown: the Evaluation and Live
#: screens pull in numpy/plotext, which would add ~0.3 s before the first (Dataset) paint.
SCREENS: dict[str, tuple[str, str]] = {
    "dataset": ("fer_tui.tui.screens.dataset", "DatasetScreen"),
    "training": ("fer_tui.tui.screens.training", "TrainingScreen"),
    "evaluation": ("fer_tui.tui.screens.evaluation", "EvaluationScreen"),
    "live": ("fer_tui.tui.screens.live", "LiveScreen"),
}


def _screen_factory(mode: str, settings: Settings) -> Callable[[], Screen]:
    def build() -> Screen:
        module, name = SCREENS[mode]
        return getattr(importlib.import_module(module), name)(settings)

    return build


class FerApp(App[int]):
    """The fer-tui dashboard."""

    TITLE = "fer-tui"
    SUB_TITLE = "facial-expression recognition on FER-2013"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("1", "switch_mode('dataset')", "Dataset"),
        Binding("2", "switch_mode('training')", "Training"),
        Binding("3", "switch_mode('evaluation')", "Evaluation"),
        Binding("4", "switch_mode('live')", "Live"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        # shown (and bound) only while a text field has the focus: see check_action
        Binding("escape", "leave_field", "Leave field", key_display="esc"),
    ]

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        for mode in SCREENS:
            self.add_mode(mode, _screen_factory(mode, self.settings))

    def on_mount(self) -> None:
        self.switch_mode("dataset")

    @property
    def notifications(self) -> tuple[Notification, ...]:
        """The notifications on screen now, oldest first (what the user can read)."""
        return tuple(self._notifications)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            # a field that takes 1-4 and q as text hides those keys from the footer: offer the
            # way out, and only then (elsewhere escape belongs to whoever binds it)
            focused = self.focused
            return focused is not None and focused.check_consume_key("1", "1")
        return True

    def action_leave_field(self) -> None:
        """Take the focus out of a text field, so that the screen and app keys work again."""
        self.screen.set_focus(None)

    def action_help(self) -> None:
        from fer_tui.tui.screens.help import HelpScreen  # Markdown costs ~0.1 s at start-up

        self.push_screen(HelpScreen())


def make_app(
    data: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    checkpoints_dir: str | os.PathLike[str] | None = None,
    configs_dir: str | os.PathLike[str] | None = None,
    poll_interval: float = 0.5,
    rescan_interval: float = 3.0,
) -> FerApp:
    """Build the App for the CLI and for tests."""
    from fer_tui import paths

    return FerApp(
        Settings(
            data=str(data) if data else None,
            runs_dir=paths.runs_dir(runs_dir),
            checkpoints_dir=Path(checkpoints_dir) if checkpoints_dir else paths.checkpoints_dir(),
            configs_dir=Path(configs_dir) if configs_dir else paths.configs_dir(),
            poll_interval=poll_interval,
            rescan_interval=rescan_interval,
        )
    )
