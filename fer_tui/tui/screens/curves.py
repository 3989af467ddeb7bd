"""CurvesScreen: all models' curves on shared charts, like the paper's Figure 2.

Three charts, one line per model (and per split): loss, accuracy and seconds per epoch.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label
from textual_plotext import PlotextPlot

from fer_tui.run_tracker import RunView

#: A fixed colour per arch, so a model keeps its colour across the three charts.
COLOURS = {"resnet18": "blue", "resnet34": "green", "resnet50": "red"}
#: train lines are dotted, val lines solid (braille), as the legend says.
MARKERS = {"train": "dot", "val": "braille"}


class CurvesScreen(ModalScreen[None]):
    """A full-screen chart of the given runs; `p` or escape closes it."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("p", "dismiss", "Close"),
    ]

    DEFAULT_CSS = """
    CurvesScreen { align: center middle; }
    CurvesScreen > Vertical {
        width: 96%;
        height: 94%;
        border: round $primary;
        border-title-style: bold;
        background: $surface;
    }
    CurvesScreen Horizontal { height: 1fr; }
    CurvesScreen PlotextPlot { width: 1fr; height: 1fr; }
    CurvesScreen .curves-note { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, views: Iterable[RunView]) -> None:
        super().__init__()
        self.views = list(views)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Training curves (p or esc closes)"
            with Horizontal():
                yield PlotextPlot(id="plot-loss")
                yield PlotextPlot(id="plot-acc")
            yield PlotextPlot(id="plot-time")
            yield Label("", classes="curves-note")

    def on_mount(self) -> None:
        self.show(self.views)

    def show(self, views: Iterable[RunView]) -> None:
        """Redraw the charts for `views` (called again as runs progress)."""
        self.views = [v for v in views if v.val_acc or v.train_loss or v.seconds]
        note = self.query_one(".curves-note", Label)
        if not self.views:
            note.update("no completed epoch yet: curves appear after the first epoch")
        else:
            note.update(
                "dotted: train · solid: val · "
                + " · ".join(f"{v.arch}: {v.run_id}" for v in self.views)
            )
        self._chart("#plot-loss", "loss per epoch", [("train", "train_loss"), ("val", "val_loss")])
        self._chart(
            "#plot-acc",
            "accuracy per epoch (%)",
            [("train", "train_acc"), ("val", "val_acc")],
            scale=100.0,
        )
        self._chart("#plot-time", "seconds per epoch", [("", "seconds")])

    def _chart(
        self, selector: str, title: str, series: list[tuple[str, str]], scale: float = 1.0
    ) -> None:
        widget = self.query_one(selector, PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        plt.xlabel("epoch")
        last = max((len(v.seconds) or len(v.val_acc) for v in self.views), default=0)
        if last:
            step = max(1, -(-last // 8))  # whole epochs, at most ~8 ticks
            plt.xticks(list(range(1, last + 1, step)))
        for view in self.views:
            colour = COLOURS.get(view.arch, "white")
            for split, key in series:
                points = [
                    (i + 1, v * scale) for i, v in enumerate(getattr(view, key)) if v is not None
                ]
                if not points:
                    continue
                xs, ys = zip(*points, strict=True)
                label = f"{view.arch} {split}".strip()
                plt.plot(
                    list(xs),
                    list(ys),
                    label=label,
                    color=colour,
                    marker=MARKERS.get(split, "braille"),
                )
        widget.refresh()
