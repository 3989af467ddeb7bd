"""The `?` help overlay."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# fer-tui

| key | does |
|-----|------|
| `1` | Dataset: class counts, imbalance, sample faces, problems |
| `2` | Training: start, watch, stop and resume runs |
| `3` | Evaluation: the paper's Tables 1 and 2 for picked checkpoints |
| `4` | Live: webcam or video, label and probabilities |
| `?` | this help |
| `q` | quit (training runs keep going in the background) |
| `esc` | leave a text field, which takes these keys as text |

On the Evaluation screen, tick **Ensemble of the picks** (with two or more checkpoints
picked) and press `e`: the mean of their probabilities is evaluated as one more model, in the
last row of Table 1, with its own Table 2, confusion matrix and ROC.

Every screen has a command-line twin: `fer-tui stats|train|evaluate|live|export --help`;
`fer-tui ship` turns a finished run into a checkpoint.

Press `Esc` to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; height: auto; max-height: 90%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
