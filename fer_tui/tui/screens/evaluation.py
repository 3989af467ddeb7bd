"""The Evaluation screen (placeholder)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from fer_tui.tui.settings import Settings


class EvaluationScreen(Screen[None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Evaluation: Table 1 and Table 2 for any checkpoint, beside the paper's figures (coming soon).", classes="placeholder")  # noqa: E501
        yield Footer()
