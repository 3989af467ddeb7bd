"""The Evaluation screen: the paper's Table 1 and Table 2 for the checkpoints you pick.

Checkpoints on offer: the shipped ones (`settings.checkpoints_dir/*.pt`) and the final weights
(ema.pt or last.pt, as `fer-tui ship` would choose) of every finished run under
`settings.runs_dir`. `e` evaluates the picked ones on the test split in a thread worker
(fer_tui.evaluation, the same code as `fer-tui evaluate`); results are cached per (checkpoint,
data, split, TTA), and cached ones are shown as soon as the screen opens. With "Ensemble" ticked
and two or more picks, the mean of their probabilities is one more row of Table 1 (`fer-tui
evaluate --ensemble`), and its Table 2, confusion matrix and ROC are a row highlight away.
Other screens open a checkpoint here with `select_checkpoint(path)` after
`app.switch_mode("evaluation")`. Torch is only imported inside the worker.

This module is the layout and the checkpoint list; the worker and its progress line are in
evaluation_run.py (`EvaluationRun`), the tables and the export keys in evaluation_tables.py
(`EvaluationTables`), the screen's bases.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Checkbox,
    Footer,
    Header,
    Label,
    ProgressBar,
    Select,
    SelectionList,
    Static,
    TabbedContent,
    TabPane,
)

from fer_tui import launch
from fer_tui.backends import CHOICES
from fer_tui.checkpoints import default_picks, finished_run_checkpoints, shipped_checkpoints
from fer_tui.errors import FerError
from fer_tui.evaluation.cache import find_cached_report
from fer_tui.evaluation.paper import paper_note
from fer_tui.evaluation.runner import TTAS
from fer_tui.tui.screens.evaluation_run import EvaluationRun
from fer_tui.tui.settings import Settings
from fer_tui.tui.widgets.confusion import ConfusionTable
from fer_tui.tui.widgets.metric_table import ClassTableView, Table1View
from fer_tui.tui.widgets.roc_plot import RocPlot

PAPER_TABLE1 = (
    "Table 1 of the paper: weighted averages on the test split (7,178 images). Pick "
    "checkpoints and press e to see ours beside it."
)
PAPER_TABLE2 = "Table 2 of the paper: per class, the mean of its three models."


class CheckpointsFound(Message):
    """The checkpoint scan finished: what is on offer, and cached reports for the picks."""

    def __init__(
        self, found: list[tuple[str, Path]], picked: list[Path], cached: list[dict[str, Any]]
    ) -> None:
        super().__init__()
        self.found = found
        self.picked = picked
        self.cached = cached


class EvaluationScreen(EvaluationRun):
    """Pick checkpoints, evaluate, and compare with the paper's tables."""

    BINDINGS = [
        Binding("e", "evaluate", "Evaluate"),
        Binding("r", "rescan", "Rescan"),
        # short: at 120 columns the footer must still show the app's 1-4, ?, q
        Binding("m", "export('md')", "MD", tooltip="Write Tables 1 and 2 as Markdown"),
        Binding("c", "export('csv')", "CSV", tooltip="Write Tables 1 and 2 as CSV"),
        Binding("j", "export('json')", "JSON", tooltip="Write the reports as JSON"),
    ]

    DEFAULT_CSS = """
    EvaluationScreen #eval-side { width: 40; padding: 0 1; }
    EvaluationScreen #checkpoints { height: 1fr; min-height: 5; }
    EvaluationScreen #no-checkpoints { color: $text-muted; height: auto; padding: 0 1; }
    EvaluationScreen #no-checkpoints.-hidden { display: none; }
    EvaluationScreen #tta-row, EvaluationScreen #backend-row { height: auto; }
    EvaluationScreen #tta-row Label, EvaluationScreen #backend-row Label { padding: 1 1 0 0; }
    EvaluationScreen #tta, EvaluationScreen #backend { width: 1fr; }
    EvaluationScreen #ensemble { width: 1fr; }
    EvaluationScreen #eval-progress { height: 1; margin: 1 0 0 0; }
    EvaluationScreen #eval-status { height: auto; min-height: 2; color: $text-muted; }
    EvaluationScreen #eval-status.-error { color: $error; }
    EvaluationScreen #eval-tabs { width: 1fr; }
    EvaluationScreen .table-note { color: $text-muted; height: auto; padding: 0 1; }
    EvaluationScreen RocPlot { height: 1fr; min-height: 12; }
    """

    def __init__(
        self, settings: Settings, reports_dir: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.reports_dir = Path(reports_dir) if reports_dir else Path("reports")
        """Where the export keys write (relative to the working directory)."""
        self.reports: list[dict[str, Any]] = []
        self.ensemble: dict[str, Any] | None = None
        """The ensemble's report, when the last evaluation asked for one."""
        self.selected: int | str | None = None
        """Table 2's model: an index into `reports`, None for the mean, ENSEMBLE."""
        self._scanned = False
        self._wanted: list[Path] = []
        """Checkpoints asked for by select_checkpoint before the scan finished."""
        self._focus: Path | None = None
        self._data: Any = None
        """The loaded FerData, kept between evaluations (decoding it is the slow part)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="evaluation-body"):
            with Vertical(id="eval-side"):
                yield Static("Checkpoints", classes="section-title")
                yield SelectionList[str](id="checkpoints")
                yield Static(self._hint(), id="no-checkpoints", classes="-hidden")
                with Horizontal(id="tta-row"):
                    yield Label("TTA")
                    yield Select([(t, t) for t in TTAS], value="none", allow_blank=False, id="tta")
                with Horizontal(id="backend-row"):
                    yield Label("Run")
                    backend = Select(
                        [(b, b) for b in CHOICES], value="auto", allow_blank=False, id="backend"
                    )
                    backend.tooltip = (
                        "auto: onnxruntime on the CPU when installed (the faster there), else "
                        "torch; torch on a GPU"
                    )
                    yield backend
                ensemble = Checkbox("Ensemble of the picks", id="ensemble")
                ensemble.tooltip = (
                    "Also evaluate the mean of the picked models' probabilities (two or more)"
                )
                yield ensemble
                progress = ProgressBar(id="eval-progress", show_eta=True)
                progress.display = False  # while an evaluation runs
                yield progress
                yield Static("Looking for checkpoints...", id="eval-status")
            with TabbedContent(id="eval-tabs"):
                with TabPane("Table 1", id="tab-table1"):
                    with VerticalScroll():
                        # until a checkpoint is evaluated, the tables hold the paper's alone
                        yield Static(PAPER_TABLE1, id="table1-title", classes="table-note")
                        yield Table1View(id="table1")
                        yield Static(paper_note(), id="paper-note", classes="table-note")
                with TabPane("Table 2", id="tab-table2"):
                    with VerticalScroll():
                        yield Static(PAPER_TABLE2, id="table2-title", classes="table-note")
                        yield ClassTableView(id="table2")
                with TabPane("Confusion", id="tab-confusion"):
                    with VerticalScroll():
                        yield Static("", id="confusion-title", classes="table-note")
                        yield ConfusionTable(id="confusion")
                with TabPane("ROC", id="tab-roc"):
                    yield RocPlot(id="roc")
        yield Footer()

    def _hint(self) -> str:
        return (
            f"No checkpoints found. Put shipped ones (*.pt) in "
            f"{self.settings.checkpoints_dir}, or train one: `fer-tui train --config "
            f"configs/<recipe>.toml` (or the Training screen, key 2); finished runs in "
            f"{self.settings.runs_dir} appear here. Press r to look again."
        )

    def on_mount(self) -> None:
        self.scan_checkpoints()

    # --- checkpoints ------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan_checkpoints(self) -> None:
        """List checkpoints and look up cached reports for the default picks (no torch)."""
        shipped = shipped_checkpoints(self.settings.checkpoints_dir)
        runs = finished_run_checkpoints(self.settings.runs_dir)
        found = [(p.name, p) for p in shipped] + [(f"{p.parent.name}/{p.name}", p) for p in runs]
        # shipped ones side by side like the paper (without a GPU, the CPU-sized ones);
        # else the newest finished run
        picked = default_picks(shipped, gpu=launch.gpu_available()) or runs[-1:]
        cached = []
        for path in picked:
            # whichever backend made it: their probabilities agree to 1e-4
            report = find_cached_report(path, tta="none", source=self._source(), backend=None)
            if report is not None:
                cached.append(report)
        if len(cached) != len(picked):
            cached = []  # show all picks or none, never a partial Table 1
        self.post_message(CheckpointsFound(found, picked, cached))

    def _source(self) -> str | None:
        if self.settings.data:
            return self.settings.data
        try:
            from fer_tui.data.load import resolve_source

            return str(resolve_source(None))
        except FerError:
            return None

    @on(CheckpointsFound)
    def _show_checkpoints(self, message: CheckpointsFound) -> None:
        self._scanned = True
        picks = self.query_one("#checkpoints", SelectionList)
        current = set(picks.selected)
        picks.clear_options()
        wanted = [str(p) for p in self._wanted]
        paths = [str(p) for _, p in message.found]
        for label, path in message.found:
            chosen = str(path) in current or path in message.picked or str(path) in wanted
            picks.add_option((label, str(path), chosen))
        for path in self._wanted:
            if str(path) not in paths:
                picks.add_option((f"{path.parent.name}/{path.name}", str(path), True))
        hint = self.query_one("#no-checkpoints", Static)
        hint.set_class(picks.option_count > 0, "-hidden")
        if message.cached and not self._wanted:
            self._show_reports(message.cached)
            self._status(
                "Cached results (TTA none, from an earlier evaluation of these "
                "files); e evaluates again."
            )
        elif picks.option_count == 0:
            self._status("Nothing to evaluate yet.")
        else:
            self._status("Pick checkpoints (space) and press e to evaluate.")
        if self._wanted:
            self._wanted = []
            self.action_evaluate()

    def select_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Pick `path` (adding it to the list), evaluate, and show it in Table 2.

        For other screens: `app.switch_mode("evaluation")`, then call this on `app.screen`.
        """
        path = Path(path)
        self._focus = path
        if not self._scanned or not self.is_mounted:
            self._wanted.append(path)
            return
        picks = self.query_one("#checkpoints", SelectionList)
        values = [picks.get_option_at_index(i).value for i in range(picks.option_count)]
        if str(path) in values:
            picks.select(str(path))
        else:
            picks.add_option((f"{path.parent.name}/{path.name}", str(path), True))
        self.query_one("#no-checkpoints", Static).set_class(True, "-hidden")
        self.action_evaluate()

    def action_rescan(self) -> None:
        self._status("Looking for checkpoints...")
        self.scan_checkpoints()

    # --- evaluation -------------------------------------------------------------------

    def action_evaluate(self) -> None:
        picks = self.query_one("#checkpoints", SelectionList)
        chosen = [Path(v) for v in picks.selected]
        if not chosen:
            self.notify(
                "Pick at least one checkpoint (space in the list) first.", severity="warning"
            )
            return
        ensemble = self.query_one("#ensemble", Checkbox).value
        if ensemble and len(chosen) < 2:
            self.notify(
                "An ensemble averages several models: pick another checkpoint (space), or "
                "untick Ensemble.",
                severity="warning",
            )
            return
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        also = " and their ensemble" if ensemble else ""
        self._status(f"Evaluating {len(chosen)} checkpoint(s){also}, TTA {self.tta}...")
        self.run_evaluation(chosen, self.tta, self.backend, ensemble)
