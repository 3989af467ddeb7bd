"""RunPanel: one model's run at a glance: epoch progress, ETA, img/s, lr and sparklines."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Sparkline, Static

from fer_tui.progress import duration
from fer_tui.run_tracker import RunView
from fer_tui.runs import STATUSES
from fer_tui.tui.widgets.format import number, percent

#: (RunView field, label, formatter) for each sparkline row.
CURVES = (
    ("train_loss", "train loss", number),
    ("val_loss", "val loss", number),
    ("train_acc", "train acc", percent),
    ("val_acc", "val acc", percent),
)


class RunPanel(Vertical):
    """Shows one RunView (or an empty slot for an arch that has no run yet)."""

    DEFAULT_CSS = """
    RunPanel {
        height: 1fr;
        min-height: 12;
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 1;
        width: 1fr;
    }
    RunPanel.-running { border: round $success; }
    RunPanel.-finished { border: round $primary; }
    RunPanel.-failed { border: round $error; }
    RunPanel.-stopped, RunPanel.-crashed { border: round $warning; }
    RunPanel .run-status { text-style: bold; }
    RunPanel.-running .run-status { color: $success; }
    RunPanel.-failed .run-status, RunPanel.-crashed .run-status { color: $error; }
    RunPanel.-stopped .run-status { color: $warning; }
    RunPanel ProgressBar { width: 1fr; }
    RunPanel ProgressBar Bar { width: 1fr; }
    RunPanel .curve { height: 1fr; min-height: 1; max-height: 3; }
    RunPanel .curve-label { width: 11; color: $text-muted; }
    RunPanel .curve-value { width: 7; text-align: right; }
    RunPanel Sparkline { width: 1fr; height: 1fr; }
    RunPanel .run-message { color: $text-muted; height: auto; }
    RunPanel.-failed .run-message { color: $error; }
    RunPanel.-empty .run-info, RunPanel.-empty ProgressBar, RunPanel.-empty .curve,
    RunPanel.-pending .run-info, RunPanel.-pending .curve {
        display: none;
    }
    """

    def __init__(self, arch: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.arch = arch
        self.view: RunView | None = None
        self.border_title = arch
        self._composed = False

    def compose(self) -> ComposeResult:
        yield Label("no run yet", classes="run-status")
        yield ProgressBar(total=1, show_eta=False, show_percentage=True)
        yield Label("", classes="run-info", id="run-speed")
        yield Label("", classes="run-info", id="run-best")
        for key, label, _ in CURVES:
            with Horizontal(classes="curve", id=f"curve-{key.replace('_', '-')}"):
                yield Label(label, classes="curve-label")
                yield Sparkline([], summary_function=max)
                yield Label("-", classes="curve-value")
        yield Static("", classes="run-message")

    def on_mount(self) -> None:
        self._composed = True
        self.show(self.view)

    def show(self, view: RunView | None) -> None:
        """Render `view`; None shows the empty slot."""
        self.view = view
        if not self._composed:
            return
        for status in (*STATUSES, "empty"):
            self.remove_class(f"-{status}")
        message = self.query_one(".run-message", Static)
        status_label = self.query_one(".run-status", Label)
        if view is None:
            self.add_class("-empty")
            self.border_title = self.arch
            self.border_subtitle = ""
            status_label.update("no run yet")
            message.update("press s to start training")
            return
        self.add_class(f"-{view.status}")
        self.border_title = f"{view.arch} · {view.recipe}"
        self.border_subtitle = view.run_id
        # status and epoch first: a third of 120 columns cuts what does not fit at the end
        where = " ".join(x for x in (view.device, view.precision) if x)
        status_label.update(
            f"{view.status} · epoch {view.epochs_text}" + (f" · {where}" if where else "")
        )
        bar = self.query_one(ProgressBar)
        bar.update(total=max(view.epochs, 1), progress=view.progress)
        speed = [
            f"ETA {duration(view.eta_seconds)}"
            if view.status == "running"
            else f"took {duration(view.elapsed_seconds)}"
        ]
        if view.img_per_s:
            speed.append(f"{view.img_per_s:,.0f} img/s")
        self.query_one("#run-speed", Label).update(" · ".join(speed))
        best = [f"lr {number(view.lr)}"]
        if view.best_metric is not None:
            best.append(f"best {percent(view.best_metric)} (ep {view.best_epoch})")
        if view.val_acc_ema and view.val_acc_ema[-1] is not None:
            # the weights' moving average, which `fer-tui ship` may pick over the raw weights
            best.append(f"last EMA {percent(view.val_acc_ema[-1])}")
        self.query_one("#run-best", Label).update(" · ".join(best))
        for key, _, fmt in CURVES:
            row = self.query_one(f"#curve-{key.replace('_', '-')}", Horizontal)
            values = [v for v in getattr(view, key) if v is not None]
            # one point is no curve: Textual would fill the whole width with it, like a plateau
            row.query_one(Sparkline).data = values if len(values) > 1 else []
            row.query_one(".curve-value", Label).update(fmt(values[-1]) if values else "-")
        message.update(_message(view))


def _message(view: RunView) -> str:
    if view.status == "failed":
        return f"failed: {view.error}  (r resume)"
    if view.status == "stopped":
        if view.step_in_epoch:  # a stop saves where it was: the resume goes on from that step
            return (
                f"stopped in epoch {view.epoch + 1} at step {view.step_in_epoch}"
                f"/{view.steps_per_epoch}: r resumes it there"
            )
        return f"stopped after epoch {view.epoch}: r resumes it"
    if view.status == "crashed":
        # the trainer died without saving: the resume goes back to its last epoch's end
        if view.epoch == 0:
            return "crashed in epoch 1 (the trainer died): r starts it again"
        return (
            f"crashed in epoch {view.epoch + 1} (the trainer died): "
            f"r resumes it after epoch {view.epoch}"
        )
    if view.status == "pending":
        return "waiting for the trainer to start"
    if view.status == "finished":
        return "finished: e evaluates its final weights"
    return ""
