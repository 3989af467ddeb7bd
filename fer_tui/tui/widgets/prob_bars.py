"""ProbBars: the seven class probabilities as horizontal bars, in CLASSES order."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from fer_tui.data.index import CLASSES

_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int) -> str:
    """A bar `width` cells wide filled to `fraction`, with eighth-cell resolution."""
    cells = max(0.0, min(1.0, fraction)) * width
    full = int(cells)
    part = _EIGHTHS[int((cells - full) * 8)] if full < width else ""
    return ("█" * full + part).ljust(width)


class ProbBars(Static):
    """One row per class: name, bar, percentage; the shown label is highlighted."""

    DEFAULT_CSS = """
    ProbBars { height: auto; padding: 0 1; }
    """

    def __init__(self, bar_width: int = 32, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bar_width = bar_width
        self.show_probs(None)

    def show_probs(self, probs: Mapping[str, float] | None, label: str | None = None) -> None:
        """Render `probs` (class -> probability); None shows empty bars."""
        text = Text()
        for i, name in enumerate(CLASSES):
            p = float(probs.get(name, 0.0)) if probs else 0.0
            top = name == label
            text.append(f"{name:>8} ", style="bold" if top else "")
            colour = "bold green" if top else "cyan"
            text.append(bar(p, self.bar_width), style=f"{colour} on grey15")
            text.append(f" {p:6.1%}" if probs else "     --", style="bold" if top else "")
            if i < len(CLASSES) - 1:
                text.append("\n")
        self.update(text)
