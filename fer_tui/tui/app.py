"""FerApp: four peer screens as Textual modes (dataset, training, evaluation, live)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from fer_tui.tui.screens.dataset import DatasetScreen
from fer_tui.tui.screens.evaluation import EvaluationScreen
from fer_tui.tui.screens.help import HelpScreen
from fer_tui.tui.screens.live import LiveScreen
from fer_tui.tui.screens.training import TrainingScreen
from fer_tui.tui.settings import Settings


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
    ]

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        s = self.settings
        self.add_mode("dataset", lambda: DatasetScreen(s))
        self.add_mode("training", lambda: TrainingScreen(s))
        self.add_mode("evaluation", lambda: EvaluationScreen(s))
        self.add_mode("live", lambda: LiveScreen(s))

    def on_mount(self) -> None:
        self.switch_mode("dataset")

    def action_help(self) -> None:
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
