"""The `?` help overlay."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# fer-tui

| key | does |
|-----|------|
| `1` | Dataset: class counts, imbalance, sample faces, problems |
| `2` | Training: start, watch, stop and resume runs |
| `3` | Evaluation: the paper's Table 1 and Table 2 for a checkpoint |
| `4` | Live: webcam or video, label and probabilities |
| `?` | this help |
| `q` | quit (training runs keep going in the background) |

Every screen has a command-line twin: `fer-tui stats|train|evaluate|live|export --help`.

Press `Esc` to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 80; height: auto; max-height: 90%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Markdown(HELP)
